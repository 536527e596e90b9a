"""Which caller numbers have an open order (R-FIRST-OWNER), kept in memory.

Loaded once, then kept current by LISTEN cti_orders (db/021: a trigger notifies the customer's
number on every order insert or status change). The route handler queries the database only for a
number in this set; a caller who has never ordered (most callers during a TV-ad peak) costs no
query. While the listening connection is down the set is not trusted and every caller is looked up.
Entries are never removed between reloads: a stale one costs one query, never a wrong route.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog

from cti.routing.inbound import CLOSED_ORDER_STATUSES

log = structlog.get_logger(__name__)

_LOAD = """
SELECT DISTINCT c.number FROM customers c JOIN orders o ON o.customer_id = c.id
WHERE o.status <> ALL($1::text[])
"""


class OpenOrderNumbers:
    def __init__(self, dsn: str, *, reload_s: float = 3600.0, retry_s: float = 5.0) -> None:
        self.dsn = dsn
        self.reload_s = reload_s
        self.retry_s = retry_s
        self.numbers: set[str] = set()
        self.ready = False
        self._conn: Any = None
        self._task: asyncio.Task[None] | None = None

    def may_have_orders(self, number: str) -> bool:
        """False only when we know the number has no open order."""
        return not self.ready or number in self.numbers

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="open-order-numbers")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._disconnect()

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.numbers.add(payload)

    def _on_lost(self, _conn: Any) -> None:
        self.ready = False

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        self.ready = False
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)

    async def _run(self) -> None:
        import asyncpg

        while True:
            try:
                self._conn = await asyncpg.connect(self.dsn)
                self._conn.add_termination_listener(self._on_lost)
                # listen first, then load: an order committed in between is in one or the other
                await self._conn.add_listener("cti_orders", self._on_notify)
                rows = await self._conn.fetch(_LOAD, sorted(CLOSED_ORDER_STATUSES))
                self.numbers = {r["number"] for r in rows}
                self.ready = True
                log.info("open-order numbers loaded", count=len(self.numbers))
                waited = 0.0
                while self.ready and waited < self.reload_s:
                    await asyncio.sleep(self.retry_s)
                    waited += self.retry_s
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("open-order numbers unavailable; looking every caller up", error=str(e))
            await self._disconnect()
            await asyncio.sleep(self.retry_s)

"""What Asterisk's cdr_pgsql does for the simulated PBX: one row per finished inbound call in the `cdr`
table (db/034), with the fields Asterisk 22 writes for the queue flow (captures 01 and 03: the IVR's
Answer() makes every CDR ANSWERED; dstchannel is the agent leg only when a person answered). Rows are
written in small batches by a background task, like the module's own connection."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any

import asyncpg

COLUMNS = ("calldate", "clid", "src", "dst", "dcontext", "channel", "dstchannel", "lastapp", "lastdata",
           "duration", "billsec", "disposition", "amaflags", "uniqueid", "linkedid")  # fmt: skip


def cdr_row(rec: dict[str, Any]) -> tuple[Any, ...]:
    duration = max(0, int(rec["ended"] - rec["started"]))
    name = rec.get("name") or ""
    clid = f'"{name}" <{rec["number"]}>' if name else rec["number"]
    return (
        datetime.fromtimestamp(rec["started"], UTC), clid[:80], rec["number"][:80], rec["did"][:80],
        "from-trunk", rec["channel"], rec["agent_channel"], "Queue", "sales,,,,60", duration, duration,
        "ANSWERED", 3, rec["uniqueid"], rec["uniqueid"],
    )  # fmt: skip


class CdrWriter:
    def __init__(self, dsn: str, interval_s: float = 0.2) -> None:
        self.dsn = dsn
        self.interval_s = interval_s
        self._rows: list[tuple[Any, ...]] = []
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self.written = 0

    def record(self, rec: dict[str, Any]) -> None:
        """Engine hook (synchronous): the call ended."""
        self._rows.append(cdr_row(rec))

    async def start(self) -> None:
        self._conn = await asyncpg.connect(self.dsn)
        self._task = asyncio.create_task(self._loop(), name="sim-cdr-writer")

    async def _flush(self) -> None:
        rows, self._rows = self._rows, []
        if rows and self._conn is not None:
            await self._conn.copy_records_to_table("cdr", records=rows, columns=COLUMNS)
            self.written += len(rows)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self._flush()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._flush()
        if self._conn is not None:
            await self._conn.close()

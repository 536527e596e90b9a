"""The callers' orders (R-FIRST-OWNER), one query for all the calls that ask at about the same time.

A query is sent as soon as one is asked for and none is in flight, so a lone call waits no longer
than before; the numbers asked for while a query is in flight go together in the next one. Under a
peak that is one PostgreSQL round trip for several calls instead of one each (bench/agi.py,
docs/decisions/0301-route-hot-path.md). Read-only: nothing is committed on the call's path.
"""

from __future__ import annotations

import asyncio
from typing import Any

from cti.db.rows import from_row
from cti.routing.inbound import Order

_COLUMNS = "o.id, o.owner_agent, o.status, o.created_at, o.parent_order_id, o.duplicate_of"

# One caller (a quiet line, and most queries even in a peak). LIMIT: a customer with thousands of
# orders is not a reason to stall a call.
_ORDERS_ONE = f"""
SELECT {_COLUMNS}
FROM customers c JOIN orders o ON o.customer_id = c.id
WHERE c.number = $1
ORDER BY o.created_at, o.id
LIMIT 200
"""

# Several callers at once, the same rows per caller. A separate statement rather than this one for
# every query: PostgreSQL plans an array parameter afresh on every execution (a custom plan), which
# cost more than the query itself (0.24 ms against 0.14 ms a round trip, measured).
_ORDERS_MANY = f"""
SELECT c.number, {_COLUMNS}
FROM customers c
CROSS JOIN LATERAL (
    SELECT * FROM orders o WHERE o.customer_id = c.id ORDER BY o.created_at, o.id LIMIT 200
) o
WHERE c.number = ANY($1::text[])
ORDER BY c.number, o.created_at, o.id
"""

MAX_NUMBERS = 500  # per query; more wait for the next one


class OrderLookup:
    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self._asked: dict[str, list[asyncio.Future[tuple[Order, ...]]]] = {}
        self._task: asyncio.Task[None] | None = None
        self.queries = 0

    def request(self, number: str) -> asyncio.Future[tuple[Order, ...]]:
        """A future for the number's orders (a task per call would cost more than it saves).
        Fails with the query's exception; cancelling it leaves the others alone."""
        fut: asyncio.Future[tuple[Order, ...]] = asyncio.get_running_loop().create_future()
        self._asked.setdefault(number, []).append(fut)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="agi-order-lookup")
        return fut

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        try:
            while self._asked:
                numbers = list(self._asked)[:MAX_NUMBERS]
                batch = {n: self._asked.pop(n) for n in numbers}
                try:
                    self.queries += 1
                    if len(numbers) == 1:
                        rows = await self.pool.fetch(_ORDERS_ONE, numbers[0])
                        found = {numbers[0]: [_order(r) for r in rows]}
                    else:
                        found = {}
                        for r in await self.pool.fetch(_ORDERS_MANY, numbers):
                            found.setdefault(r["number"], []).append(_order(r))
                except Exception as e:
                    for futs in batch.values():
                        for f in futs:
                            if not f.done():
                                f.set_exception(e)
                    continue
                for n, futs in batch.items():
                    orders = tuple(found.get(n, ()))
                    for f in futs:
                        if not f.done():
                            f.set_result(orders)
        finally:
            self._task = None
            for futs in self._asked.values():  # cancelled (server closing): nobody is left hanging
                for f in futs:
                    f.cancel()
            self._asked.clear()


def _order(r: Any) -> Order:
    return from_row(Order, r)

"""The two PostgreSQL helpers of the route path: order lookups shared by concurrent calls, and
recording rows written as one statement per batch."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from cti.agi.orders import OrderLookup
from cti.agi.recordings import RecordingWriter


class CountingPool:
    def __init__(self, pool: asyncpg.Pool, fail: bool = False) -> None:
        self.pool = pool
        self.fail = fail
        self.fetches: list[Any] = []

    async def fetch(self, query: str, *args: Any) -> Any:
        self.fetches.append(args[0])
        if self.fail:
            raise OSError("database away")
        return await self.pool.fetch(query, *args)


async def _customer(pool: asyncpg.Pool, number: str, *orders: tuple[str, str]) -> None:
    cust = await pool.fetchval(
        "INSERT INTO customers (number) VALUES ($1)"
        " ON CONFLICT (number) DO UPDATE SET number = $1 RETURNING id",
        number,
    )
    for owner, status in orders:
        await pool.execute(
            "INSERT INTO orders (customer_id, owner_agent, status) VALUES ($1, $2, $3)", cust, owner, status
        )


async def test_calls_asking_together_share_one_query_and_each_gets_its_own_orders(pool) -> None:  # type: ignore[no-untyped-def]
    await _customer(pool, "13812345678", ("agent1", "received"), ("agent2", "new"))
    await _customer(pool, "13900000001", ("agent3", "new"))
    counting = CountingPool(pool)
    lookup = OrderLookup(counting)
    a, b, c, a2 = (lookup.request(n) for n in ("13812345678", "13900000001", "13700000000", "13812345678"))
    got_a, got_b, got_c, got_a2 = await asyncio.gather(a, b, c, a2)
    assert counting.fetches == [["13812345678", "13900000001", "13700000000"]]  # one query, 3 numbers
    assert [(o.owner_agent, o.status) for o in got_a] == [("agent1", "received"), ("agent2", "new")]
    assert got_a2 == got_a
    assert [o.owner_agent for o in got_b] == ["agent3"] and got_c == ()
    await lookup.close()


async def test_a_lone_call_is_looked_up_at_once_with_the_one_number_statement(pool) -> None:  # type: ignore[no-untyped-def]
    await _customer(pool, "13812345678", ("agent1", "new"))
    counting = CountingPool(pool)
    lookup = OrderLookup(counting)
    (order,) = await lookup.request("13812345678")
    assert order.owner_agent == "agent1" and counting.fetches == ["13812345678"]
    (order,) = await lookup.request("13812345678")  # the next call: a new query, nothing cached
    assert len(counting.fetches) == 2 and lookup.queries == 2
    await lookup.close()


async def test_a_failed_query_fails_every_call_that_waited_for_it_and_the_next_one_retries(pool) -> None:  # type: ignore[no-untyped-def]
    counting = CountingPool(pool, fail=True)
    lookup = OrderLookup(counting)
    a, b = lookup.request("13812345678"), lookup.request("13900000001")
    for fut in (a, b):
        with pytest.raises(OSError):
            await fut
    counting.fail = False
    assert await lookup.request("13812345678") == ()
    await lookup.close()


async def test_a_call_that_gives_up_does_not_disturb_the_others(pool) -> None:  # type: ignore[no-untyped-def]
    await _customer(pool, "13900000001", ("agent3", "new"))
    lookup = OrderLookup(pool)
    a, b = lookup.request("13812345678"), lookup.request("13900000001")
    a.cancel()
    assert [o.owner_agent for o in await b] == ["agent3"]
    await lookup.close()


async def test_recording_rows_of_a_batch_go_in_one_statement_and_a_repeated_call_once(pool) -> None:  # type: ignore[no-untyped-def]
    writer = RecordingWriter(pool, max_delay_s=0.01)
    now = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    for i in range(3):
        writer.add((f"L{i}", f"U{i}", f"/rec/{i}.wav", "13812345678", "4008001234", "sales", now))
    writer.add(("L1", "U1b", "/rec/1b.wav", None, None, None, now))  # same call routed again
    await writer.flush()
    rows = await pool.fetch("SELECT linkedid, uniqueid, path, number, did FROM recordings ORDER BY linkedid")
    assert [tuple(r) for r in rows] == [
        ("L0", "U0", "/rec/0.wav", "13812345678", "4008001234"),
        ("L1", "U1", "/rec/1.wav", "13812345678", "4008001234"),
        ("L2", "U2", "/rec/2.wav", "13812345678", "4008001234"),
    ]
    assert writer.written == 4
    await writer.close()


async def test_flush_waits_for_the_batch_already_being_written() -> None:
    """The writer takes a batch off its queue before the INSERT returns: a flush (or a close) in that
    moment must wait for it, not return with the row still on its way (or cancel it mid-write)."""
    import asyncio

    class SlowPool:
        def __init__(self) -> None:
            self.go, self.started, self.rows = asyncio.Event(), asyncio.Event(), 0

        async def execute(self, _sql: str, *cols: list) -> None:  # type: ignore[type-arg]
            self.started.set()
            await self.go.wait()
            self.rows += len(cols[0])

    pool = SlowPool()
    writer = RecordingWriter(pool, max_delay_s=0.0)
    writer.add(("L9", "U9", "/rec/9.wav", None, None, None, datetime(2026, 11, 23, tzinfo=UTC)))
    await pool.started.wait()  # the batch is in flight: nothing pending any more
    flushed = asyncio.create_task(writer.flush())
    await asyncio.sleep(0.05)
    assert not flushed.done()  # still on its way
    pool.go.set()
    await flushed
    assert pool.rows == 1
    await writer.close()

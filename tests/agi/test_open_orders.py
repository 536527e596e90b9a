"""The in-memory set of numbers with open orders: loaded, kept current by NOTIFY, trusted only while
listening; the route handler skips the query for anyone else."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from cti.agi.open_orders import OpenOrderNumbers
from tests.agi.conftest import make_ctx
from tests.agi.fake_asterisk import FakeChannel, env_lines, run_call


async def _until(pred: Any, timeout: float = 5.0) -> None:
    """Poll a condition set by another connection's NOTIFY (no event to wait on)."""
    async with asyncio.timeout(timeout):
        while not pred():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


class CountingPool:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.fetches = 0

    async def fetch(self, *a: Any) -> Any:
        self.fetches += 1
        return await self.pool.fetch(*a)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pool, name)


async def test_loaded_then_kept_current_by_notify(db_url: str, pool: asyncpg.Pool) -> None:
    cust = await pool.fetchval("SELECT id FROM customers WHERE number = '13812345678'")
    await pool.execute(
        "INSERT INTO orders (customer_id, owner_agent, status) VALUES ($1, 'agent1', 'received')", cust
    )
    nums = OpenOrderNumbers(db_url, retry_s=0.05)
    await nums.start()
    try:
        await _until(lambda: nums.ready)
        assert not nums.may_have_orders("13812345678")  # only a received order
        assert nums.may_have_orders("13812345678") is False and nums.numbers == set()
        await pool.execute("INSERT INTO orders (customer_id, owner_agent) VALUES ($1, 'agent2')", cust)
        await _until(lambda: nums.may_have_orders("13812345678"))
    finally:
        await nums.close()
    assert not nums.ready and nums.may_have_orders("19900000000")  # not listening: trust nothing


async def test_route_skips_the_query_for_numbers_without_orders(start_server, db_url, pool) -> None:  # type: ignore[no-untyped-def]
    counting = CountingPool(pool)
    nums = OpenOrderNumbers(db_url, retry_s=0.05)
    await nums.start()
    ctx = make_ctx(pool=counting, open_orders=nums)
    server = await start_server(ctx)
    await _until(lambda: nums.ready)
    await ctx.directory.refresh()
    counting.fetches = 0
    await run_call(server.port, FakeChannel(), env_lines(agi_callerid="13900001111"))
    assert counting.fetches == 0
    cust = await pool.fetchval("SELECT id FROM customers WHERE number = '13812345678'")
    await pool.execute("INSERT INTO orders (customer_id, owner_agent) VALUES ($1, 'agent3')", cust)
    await _until(lambda: "13812345678" in nums.numbers)
    ch = await run_call(server.port, FakeChannel())
    assert counting.fetches == 1 and ch.vars["CTI_PREFERRED"] == "agent3"

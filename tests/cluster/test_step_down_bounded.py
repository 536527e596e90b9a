"""Stepping down is bounded (issue 16's PostgreSQL drill, after decision 0110): a leader whose database
is blackholed stops its run-once parts in seconds, and a shutdown arriving meanwhile ends it."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from cti.cluster.leader import LEADER_LOCK_KEY, Leadership
from cti.db.connect import close_bounded
from cti.drill.proxy import TcpProxy
from cti.facts.updater import FactsUpdater
from cti.policy import load_policy


class SlowToStop(FactsUpdater):
    """A facts updater whose run is slow to end when cancelled (closing a connection whose server
    is gone takes its time): the window in which the shutdown arrived in the drill."""

    async def run_once(self) -> dict[str, int]:
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(1.0)
        return {}


async def test_a_shutdown_while_stepping_down_ends_the_leadership(db_url: str, db: asyncpg.Connection):
    facts = SlowToStop(db_url, load_policy().ring, interval_s=3600)
    stopping = asyncio.Event()

    async def elected(token: int) -> None:
        facts.start()

    async def lost() -> None:
        stopping.set()
        await facts.close()

    lead = Leadership(db_url, process="a", on_elected=elected, on_lost=lost, poll_s=0.1)
    task = asyncio.create_task(lead.run())
    try:
        await asyncio.wait_for(lead.elected.wait(), 5)
        await asyncio.sleep(0.1)  # the facts run has begun
        await db.execute(  # the leader's session dies: it steps down and stops its parts
            """SELECT pg_terminate_backend(pid) FROM pg_locks
               WHERE locktype = 'advisory' AND classid::bigint = $1 AND objid::bigint = $2""",
            LEADER_LOCK_KEY >> 32,
            LEADER_LOCK_KEY & 0xFFFFFFFF,
        )
        await asyncio.wait_for(stopping.wait(), 5)
        task.cancel()  # the process shuts down while the facts updater is still stopping
        done, _ = await asyncio.wait([task], timeout=5)
        assert task in done and task.cancelled()  # it did not campaign on, nor hold up the close
        assert not lead.is_leader
    finally:
        task.cancel()
        await asyncio.wait([task], timeout=5)


async def test_closing_a_connection_whose_server_went_silent_is_bounded(db_url: str):
    proxy, url = await TcpProxy.for_postgres(db_url)
    try:
        conn = await asyncpg.connect(url)
        query = asyncio.create_task(conn.fetchval("SELECT pg_sleep(30)"))
        await asyncio.sleep(0.2)
        proxy.blackhole()  # accepted, never answered: also the connection asyncpg cancels over
        query.cancel()
        with pytest.raises(asyncio.CancelledError):
            await query
        t0 = time.monotonic()
        await asyncio.wait_for(close_bounded(conn, 1.0), 10)
        assert time.monotonic() - t0 < 5 and conn.is_closed()
    finally:
        await proxy.close()

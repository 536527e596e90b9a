"""Issue 16's PostgreSQL drill: an AMI handler whose database write fails because PostgreSQL is away
(restarting) used to raise, and what it had decided from the frame was gone: a caller without a
callback, a pause during peak left standing and unrecorded. Now the work that does not need the
database is done at once and the write is retried until PostgreSQL is back (cti.db.later)."""

from __future__ import annotations

import asyncio

import asyncpg

from cti.callbacks.missed import MissedCallWatcher
from cti.clock import ManualClock
from cti.peak.guard import PeakPauseGuard
from tests.callbacks.test_missed import POLICY, T0, feed, frames
from tests.fakes import ListSink
from tests.netcut import NetCut
from tests.peak.test_guard import LUNCH


async def wait_for(db: asyncpg.Connection, sql: str, timeout: float = 15.0) -> object:
    async with asyncio.timeout(timeout):
        while (v := await db.fetchval(sql)) in (None, 0):  # noqa: ASYNC110  (polling the database)
            await asyncio.sleep(0.1)
    return v


async def test_a_caller_missed_while_postgres_restarts_still_gets_a_callback(db_url, db):
    cut = NetCut(db_url)
    await cut.start()
    pool = await asyncpg.create_pool(cut.url, min_size=1, max_size=2, timeout=1)
    try:
        w = MissedCallWatcher(pool, policy=POLICY, clock=ManualClock(T0), events=ListSink())
        await cut.cut()
        await feed(w, frames("1795430796.1", "13812345678"))  # abandoned while the database is away
        assert await db.fetchval("SELECT count(*) FROM callbacks") == 0
        await cut.restore()
        assert await wait_for(db, "SELECT number FROM callbacks") == "13812345678"
        assert await db.fetchval("SELECT reason FROM missed_calls") == "callback"
    finally:
        await pool.close()
        await cut.close()


async def test_a_peak_pause_is_undone_while_postgres_is_away_and_recorded_when_it_is_back(db_url, db):
    cut = NetCut(db_url)
    await cut.start()
    pool = await asyncpg.create_pool(cut.url, min_size=1, max_size=2, timeout=1)
    sent: list[str] = []

    async def ami_action(name, headers):  # type: ignore[no-untyped-def]
        sent.append(name)
        return {"Response": "Success"}

    try:
        guard = PeakPauseGuard(pool, policy=POLICY, clock=ManualClock(T0), events=ListSink(),
                               in_peak=lambda at: True, ami_action=ami_action)  # fmt: skip
        await cut.cut()
        assert (await guard.handle_ami(LUNCH)).action == "undo_pause"
        assert sent == ["QueuePause"], "the agent is back on the phones without waiting for the database"
        await cut.restore()
        done = "SELECT undo_status FROM peak_violations WHERE undo_status <> 'pending'"
        assert await wait_for(db, done) == "undone"
        assert sent == ["QueuePause"], "recording it late does not unpause twice"
    finally:
        await pool.close()
        await cut.close()

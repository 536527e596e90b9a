"""Facts written when a call ends (LiveFacts), driven by the simulator over AMI on its manual clock:
a call has no row while it is live and has one as soon as its hangup is written (no sweep runs); the
rows equal what `cti facts rebuild` derives from the same events; the hourly rollups equal the
aggregates of call_facts; a process restarted mid-call still writes that call whole."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg

from cti.ami.client import AMIClient
from cti.ami.listener import AMIListener
from cti.facts.live import LiveFacts
from cti.facts.repo import rebuild
from cti.policy import load_policy
from cti.sim import Simulator
from cti.sim.scenario import QueueConfig, Scenario
from cti.state.live import LiveState
from cti.store.events import EventStore
from tests.sim.helpers import FastAgiServer

RING = load_policy().ring
TABLES = {
    "call_facts": "SELECT * FROM call_facts ORDER BY linkedid",
    "call_rings": "SELECT * FROM call_rings ORDER BY linkedid, agent_uniqueid",
    "agent_ring_no_answer": "SELECT * FROM agent_ring_no_answer ORDER BY linkedid, at",
    "facts_hourly": "SELECT * FROM facts_hourly ORDER BY hour, queue, agent, did",
}


async def _route(env: dict[str, str], cmd) -> None:  # type: ignore[no-untyped-def]
    await cmd('SET VARIABLE CTI_ROUTE "queue"')


async def _snapshot(db: asyncpg.Connection) -> dict[str, list[tuple[Any, ...]]]:
    return {t: [tuple(r) for r in await db.fetch(q)] for t, q in TABLES.items()}


class Floor:
    """The simulator, an AMI listener storing events, and a LiveFacts fed by the store."""

    def __init__(self, db_url: str, pool: asyncpg.Pool, spool: Path) -> None:
        self.agi = FastAgiServer({"route": _route})
        self.db_url, self.pool, self.spool = db_url, pool, spool
        self.live = LiveFacts(pool, RING)
        self.feed: Callable[[tuple[Any, ...]], None] = lambda row: self.live.on_row(row)

    async def start(self) -> None:
        port = await self.agi.start()
        self.sim = Simulator(
            Scenario(queues=(QueueConfig(timeout=10.0, retry=2.0),)), agi_url=f"agi://127.0.0.1:{port}"
        )
        self.sim.add_agent("agent1", "Agent One")
        self.sim.add_agent("agent2", "Agent Two")
        await self.sim.start()
        self.store = EventStore(self.db_url, self.spool)
        await self.store.start()
        self.store.on_append(lambda row: self.feed(row))
        client = AMIClient("127.0.0.1", self.sim.ami_port, "cti", "cti", ping_interval=0)
        self.listener = AMIListener(client, LiveState(), self.store)
        self.live.start()
        await self.listener.start()

    async def settle(self) -> None:
        """Until the listener has read everything the simulator did, and the writer wrote it."""
        for _ in range(300):
            if len(self.sim.channels()) == self.listener.live.summary()["channels"]:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        await self.live.drain()

    async def close(self) -> None:
        await self.listener.close()
        await self.live.close()
        await self.store.close()
        await self.sim.close()
        await self.agi.close()


async def test_call_facts_at_hangup_equal_a_rebuild(
    db_url: str, db: asyncpg.Connection, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    f = Floor(db_url, pool, tmp_path / "spool")
    await f.start()
    sim = f.sim
    try:
        sim.login("agent1", penalty=0)
        sim.login("agent2", penalty=1)
        sim.set_answer("agent1", "never")
        sim.set_answer("agent2", "auto", delay=3.0)
        sim.place_call("13812345678", "4008001234", behaviour={"talk_time": 12, "hangup_first": "caller"})
        await sim.advance(20)  # rang agent1 10 s, retry 2 s, agent2 answered after 3 s: talking
        await f.settle()
        assert await db.fetchval("SELECT count(*) FROM call_facts") == 0  # live: not yet
        await sim.advance(20)  # caller hung up after 12 s of talk
        await f.settle()
        row = await db.fetchrow("SELECT * FROM call_facts")
        assert row["outcome"] == "answered" and row["answered_by"] == "agent2"
        assert row["hung_up_first"] == "caller" and row["talk_s"] == Decimal("12.000")
        assert row["caller_masked"] == "138****5678" and row["did"] == "4008001234"
        rings = await db.fetch("SELECT agent, outcome FROM call_rings ORDER BY started_at")
        assert [tuple(r) for r in rings] == [("agent1", "no_answer"), ("agent2", "answered")]
        assert await db.fetchval("SELECT ring_ms FROM agent_ring_no_answer") == 10000

        sim.place_call("13987654321", "4008001234", behaviour={"talk_time": 5, "hangup_first": "agent"})
        await sim.advance(20)
        sim.set_answer("agent2", "never")
        sim.place_call("13700000001", "4008005678", behaviour={"patience": 8})
        await sim.advance(20)
        await f.settle()
    finally:
        await f.close()

    live = await _snapshot(db)
    assert len(live["call_facts"]) == 3
    assert [r["outcome"] for r in await db.fetch("SELECT outcome FROM call_facts ORDER BY started_at")] == [
        "answered",
        "answered",
        "abandoned",
    ]
    # the hourly rollups are the aggregates of call_facts, one row per hour x queue x agent x DID
    expected = await db.fetch(
        """SELECT date_trunc('hour', started_at, 'UTC') AS hour, coalesce(queue, '-') AS queue,
                  coalesce(answered_by, '-') AS agent, coalesce(did, '-') AS did, count(*)::int AS calls,
                  count(*) FILTER (WHERE outcome = 'answered')::int AS answered,
                  count(*) FILTER (WHERE outcome = 'abandoned')::int AS abandoned,
                  coalesce(sum(talk_s), 0) AS talk_s
           FROM call_facts GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"""
    )
    got = await db.fetch(
        "SELECT hour, queue, agent, did, calls, answered, abandoned, talk_s FROM facts_hourly"
        " ORDER BY hour, queue, agent, did"
    )
    assert [tuple(r) for r in got] == [tuple(r) for r in expected]
    agent2 = [r for r in got if r["agent"] == "agent2"]
    assert [(r["calls"], r["answered"], r["talk_s"]) for r in agent2] == [(2, 2, Decimal("17.000"))]

    # the live server's sweep re-derives a window that starts after the agents logged in: it keeps the
    # calls the live writer finished (a window-only derivation would count 0 agents logged in)
    third = await db.fetchval("SELECT max(started_at) FROM call_facts")
    await rebuild(db, third, RING, keep_ended=True)
    assert await _snapshot(db) == live
    await rebuild(db, third, RING)  # what replacing them would have done
    assert await db.fetchval("SELECT agents_logged_in FROM call_facts WHERE started_at = $1", third) == 0
    assert next(r for r in live["call_facts"] if r[1] == third)[17] == 2  # agents_logged_in, live

    # `cti facts rebuild` from the event log gives the very same rows, rollups included
    await rebuild(db, datetime(2000, 1, 1, tzinfo=UTC), RING)
    assert await _snapshot(db) == live
    # a second process that heard the same calls writes them again: nothing changes
    again = LiveFacts(pool, RING)
    again.start()
    for r in await db.fetch("SELECT ts, type, payload FROM events WHERE source = 'ami' ORDER BY seq"):
        again.feed(r["ts"], r["type"], json.loads(r["payload"]))
    await again.drain()
    await again.close()
    assert again.written == 3
    assert await _snapshot(db) == live


async def test_restart_mid_call_still_writes_the_whole_call(
    db_url: str, db: asyncpg.Connection, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    f = Floor(db_url, pool, tmp_path / "spool")
    await f.start()
    sim = f.sim
    try:
        sim.login("agent1", penalty=0)
        sim.login("agent2", penalty=1)
        sim.set_answer("agent1", "never")
        sim.set_answer("agent2", "auto", delay=3.0)
        sim.place_call("13812345678", "4008001234", behaviour={"talk_time": 30, "hangup_first": "agent"})
        await sim.advance(20)  # answered by agent2 after a ring-no-answer of agent1; still talking
        await f.settle()
        await f.store.flush()
        # the process stops (its deriver is lost) and a new one starts: it warms from the events table
        await f.live.close()
        f.feed = lambda row: None  # the gap between the two processes: nothing is derived
        restarted = LiveFacts(pool, RING)
        assert await restarted.warm(datetime(2000, 1, 1, tzinfo=UTC)) > 0
        assert await db.fetchval("SELECT count(*) FROM call_facts") == 0
        f.live = restarted
        f.feed = restarted.on_row
        restarted.start()
        await sim.advance(30)
        await f.settle()
    finally:
        await f.close()
    live = await _snapshot(db)
    assert len(live["call_facts"]) == 1
    c = await db.fetchrow("SELECT * FROM call_facts")
    assert c["answered_by"] == "agent2" and c["hung_up_first"] == "agent" and c["talk_s"] == Decimal("30.000")
    assert c["rings_to_answer"] == 1 and c["hold_s"] is not None
    assert len(live["call_rings"]) == 2
    await rebuild(db, datetime(2000, 1, 1, tzinfo=UTC), RING)
    assert await _snapshot(db) == live

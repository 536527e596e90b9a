"""One agent claim for everything that rings an agent (decision 0110): N dispatchers with their own
pools racing for few agents, the callback dispatcher racing the outbound dialer, a dead process's
claims expiring with its lease."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping, Set
from datetime import UTC, datetime
from typing import Any

import asyncpg

from cti.callbacks.dispatcher import Dispatcher
from cti.callbacks.offer import open_callback
from cti.callbacks.originate import OriginateRequest
from cti.clock import ManualClock
from cti.cluster import claims
from cti.outbound.eligibility import rule_set_id, try_claim
from cti.outbound.outcomes import record_end
from cti.policy import load_policy
from tests.fakes import ListSink
from tests.outbound.conftest import add_contact, rules_for
from tests.outbound.conftest import make_campaign as make_campaign  # the fixture

POLICY = load_policy()
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # 20:00 in Shanghai, within service hours
DID = "4008001234"
AGENTS = ["agent1", "agent2"]


class RacyFloor:
    """A live view that does not know what the other processes just claimed (it sees an agent free
    until AMI says otherwise): the worst case for a check-then-act."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def free_agent(self, busy: Set[str]) -> str:
        return self.rng.choice(AGENTS)

    def waiting_inbound(self) -> int:
        return 0

    def inbound_answered(self) -> None:
        return None


async def _live_attempts_per_agent(pool: asyncpg.Pool) -> dict[str, int]:
    rows = await pool.fetch(
        "SELECT agent, count(*) AS n FROM callback_attempts WHERE state <> 'resolved' GROUP BY agent"
    )
    return {r["agent"]: r["n"] for r in rows}


async def test_n_dispatchers_racing_for_two_agents_never_ring_one_twice(db_url: str, db: asyncpg.Connection):
    for i in range(40):
        await open_callback(
            db, number=f"1381234{i:04d}", did=DID, kind="peak", now=T0, policy=POLICY.callbacks
        )
    n = 6  # six processes' worth of pools and dispatchers
    pools = [await asyncpg.create_pool(db_url, min_size=1, max_size=3) for _ in range(n)]
    clock = ManualClock(T0)
    rung: list[tuple[str, str]] = []
    double: list[dict[str, int]] = []
    watch = await asyncpg.create_pool(db_url, min_size=1, max_size=n)

    def make(i: int) -> Dispatcher:
        async def originate(req: OriginateRequest) -> Mapping[str, Any]:
            agent = req.channel.removeprefix("PJSIP/")
            rung.append((agent, req.channel_id))
            live = await _live_attempts_per_agent(watch)
            if any(c > 1 for c in live.values()):
                double.append(live)
            await asyncio.sleep(0.005)  # the phone rings a moment before the outcome comes back
            return {"Response": "Success", "ActionID": f"a-{req.channel_id}"}

        floor = RacyFloor(random.Random(i))
        return Dispatcher(pools[i], policy=POLICY, clock=clock, events=ListSink(), live=floor,
                          originate=originate, default_did=DID, worker_id=f"proc{i}")  # fmt: skip

    dispatchers = [make(i) for i in range(n)]

    async def worker(d: Dispatcher) -> int:
        done = 0
        for _ in range(30):
            r = await d.dispatch_once()
            if r.status == "dispatched":
                done += 1
                assert r.channel_id is not None
                # the attempt resolves (customer reached): the agent is free for the next one
                await d._resolve(r.channel_id, "reached", {"dial_status": "ANSWER"})
            await asyncio.sleep(0.002)
        return done

    try:
        dispatched = await asyncio.gather(*(worker(d) for d in dispatchers))
    finally:
        await watch.close()
        for p in pools:
            await p.close()
    assert sum(dispatched) >= 10, dispatched  # they did race (and shared the work)
    assert sum(1 for x in dispatched if x) >= 2
    assert double == []  # never two live attempts to one agent, as seen at every Originate
    assert await db.fetchval("SELECT count(*) FROM agent_claims") == 0  # every claim released


async def test_callback_and_dialer_racing_for_one_agent_ring_it_once(
    db_url: str, db: asyncpg.Connection, make_campaign: Any
):
    """The dispatcher and a progressive dial both pick agent1 at the same moment: one gets it."""
    rules = rules_for()
    k = await make_campaign()
    rs = await rule_set_id(db, rules)
    wins = {"callback": 0, "outbound": 0}
    for round_ in range(8):
        number = f"1390000{round_:04d}"
        await open_callback(db, number=number, did=DID, kind="peak", now=T0, policy=POLICY.callbacks)
        contact = await add_contact(db, f"+86137000{round_:05d}", [k])
        sent: list[str] = []

        async def originate(req: OriginateRequest, sent: list[str] = sent) -> Mapping[str, Any]:
            sent.append(req.channel_id)
            return {"Response": "Success", "ActionID": "x"}

        pool = await asyncpg.create_pool(db_url, min_size=1, max_size=2)
        dial_conn = await asyncpg.connect(db_url)
        try:
            d = Dispatcher(pool, policy=POLICY, clock=ManualClock(T0), events=ListSink(),
                           live=RacyFloor(random.Random(0)), originate=originate, default_did=DID,
                           worker_id="cb-proc")  # fmt: skip
            d._live = _Only("agent1")  # type: ignore[assignment]
            r, dial = await asyncio.gather(
                d.dispatch_once(),
                try_claim(dial_conn, campaign_id=k, contact_id=contact, now=T0, rules=rules, rule_set=rs,
                          process="ob-proc", agent="agent1"),
            )  # fmt: skip
        finally:
            await dial_conn.close()
            await pool.close()
        got = (r.status == "dispatched") + (dial is not None)
        assert got == 1, (r, dial)  # exactly one of them rings agent1
        owner = await db.fetchrow("SELECT kind, ref FROM agent_claims WHERE agent = 'agent1'")
        if r.status == "dispatched":
            wins["callback"] += 1
            assert owner["ref"] == r.channel_id and sent == [r.channel_id]
            await db.execute(
                "UPDATE callback_attempts SET state = 'resolved', outcome = 'reached' WHERE channel_id = $1",
                r.channel_id,
            )
            await claims.release(db, r.channel_id)
        else:
            wins["outbound"] += 1
            assert owner["ref"] == dial.channel_id and sent == []
            # the callback went back to the queue untouched: no attempt row was written for it
            assert await db.fetchval("SELECT count(*) FROM callback_attempts WHERE state <> 'resolved'") == 0
            await record_end(db, dial.dial_id, "answered", T0)
        assert await db.fetchval("SELECT count(*) FROM agent_claims") == 0  # released with the attempt
    assert wins["callback"] + wins["outbound"] == 8


class _Only:
    def __init__(self, agent: str) -> None:
        self.agent = agent

    def free_agent(self, busy: Set[str]) -> str:
        return self.agent

    def waiting_inbound(self) -> int:
        return 0

    def inbound_answered(self) -> None:
        return None


async def test_a_dead_process_claim_expires_with_its_lease_a_live_one_holds(db: asyncpg.Connection):
    async with db.transaction():
        assert await claims.claim_agent(db, "agent1", kind="desk", ref="cti-desk-1", process="dead")
    async with db.transaction():
        assert await claims.claim_agent(db, "agent2", kind="desk", ref="cti-desk-2", process="alive")
    # "dead" stops renewing (SIGKILL): its lease lapses; "alive" keeps renewing
    await db.execute("UPDATE process_leases SET expires_at = now() - interval '1 s' WHERE process = 'dead'")
    assert await claims.claimed_agents(db) == {"agent2"}
    async with db.transaction():
        assert not await claims.claim_agent(db, "agent2", kind="callback", ref="cti-cb-1-1", process="other")
        assert await claims.claim_agent(db, "agent1", kind="callback", ref="cti-cb-2-1", process="other")
    rows = await db.fetch("SELECT agent, ref FROM agent_claims ORDER BY agent")
    assert [tuple(r) for r in rows] == [("agent1", "cti-cb-2-1"), ("agent2", "cti-desk-2")]

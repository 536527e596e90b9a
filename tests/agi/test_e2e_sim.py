"""End to end against the simulated PBX (cti/sim): it runs the dialplan as data and is a real FastAGI
client of our server, so these are the calls a customer would make."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import pytest

from cti.agi.context import AgiContext
from cti.agi.registry import Registry, default_registry
from cti.agi.server import FastAgiServer
from cti.agi.session import AgiSession
from cti.clock import ManualClock
from cti.config import Settings
from cti.sim import Simulator
from cti.sim.scenario import QueueConfig, Scenario
from tests.agi.conftest import DAY, NIGHT, make_ctx

CALLER = "13812345678"
MASKED = "138****5678"


def _scenario() -> Scenario:
    return Scenario(
        queues=(QueueConfig(name="sales", strategy="rrmemory", timeout=10, retry=2, autopause=True),)
    )


class Rig:
    def __init__(self, ctx: AgiContext, server: FastAgiServer | None, sim: Simulator) -> None:
        self.ctx, self.server, self.sim = ctx, server, sim

    def events(self, name: str, **match: str) -> list[dict[str, str]]:
        out = []
        for ev in self.sim.events:
            if ev.name != name:
                continue
            d = dict(ev.pairs)
            if all(d.get(k) == v for k, v in match.items()):
                out.append(d | {"_ts": str(ev.ts)})
        return out


@pytest.fixture
async def rig(pool: asyncpg.Pool, tmp_path: Path) -> AsyncIterator[Callable[..., object]]:
    made: list[Rig] = []

    async def make(now=DAY, registry: Registry | None = None, agi_up: bool = True) -> Rig:  # type: ignore[no-untyped-def]
        settings = Settings(
            agi={"port": 0, "session_timeout_s": 2.0},
            recording={"path_pattern": str(tmp_path / "rec" / "%Y%m%d" / "{linkedid}.wav")},
        )
        ctx = make_ctx(settings=settings, pool=pool, clock=ManualClock(now))
        server = None
        if agi_up:
            server = FastAgiServer(ctx, registry or default_registry(), host="127.0.0.1", port=0)
            await server.start()
            port = server.port
        else:  # a port nobody listens on: the CTI process is dead (capture 08b)
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
        sim = Simulator(_scenario(), agi_url=f"agi://127.0.0.1:{port}", record_events=True)
        for a in ("agent1", "agent2"):
            sim.add_agent(a, a.capitalize())
        await sim.start()
        for a in ("agent1", "agent2"):
            sim.login(a)
        r = Rig(ctx, server, sim)
        made.append(r)
        return r

    yield make
    for r in made:
        await r.ctx.aclose()
        await r.sim.close()
        if r.server is not None:
            await r.server.close()


def _call(sim: Simulator, did: str = "4008001234", **behaviour: object) -> None:
    b = {"patience": 200, "talk_time": 5, "hangup_first": "caller"} | behaviour
    sim.place_call(caller=CALLER, did=did, name="张三", behaviour=b)


async def _order_for(pool: asyncpg.Pool, owner: str) -> None:
    cust = await pool.fetchval("SELECT id FROM customers WHERE number = $1", CALLER)
    await pool.execute("INSERT INTO orders (customer_id, owner_agent) VALUES ($1, $2)", cust, owner)


async def test_order_owner_rung_first_then_the_queue_after_two_rings(rig, pool) -> None:  # type: ignore[no-untyped-def]
    await _order_for(pool, "agent1")
    r = await rig()
    r.sim.set_answer("agent1", "never")
    r.sim.set_answer("agent2", "auto", delay=2.0)
    _call(r.sim)
    await r.sim.advance(60)
    begins = r.events("DialBegin")
    assert begins[0]["DestChannel"].startswith("PJSIP/agent1-")
    (noanswer,) = [
        e for e in r.events("DialEnd", DialStatus="NOANSWER") if e["DestChannel"] == begins[0]["DestChannel"]
    ]
    assert float(noanswer["_ts"]) - float(begins[0]["_ts"]) == pytest.approx(10.0)  # 2 rings × 5 s
    assert r.events("QueueCallerJoin")  # then the queue
    (connect,) = r.events("AgentConnect")
    assert connect["MemberName"] == "agent2"


async def test_a_caller_who_dials_an_agents_did_gets_that_agent(rig) -> None:  # type: ignore[no-untyped-def]
    r = await rig()
    r.sim.set_answer("agent2", "auto", delay=1.0)
    _call(r.sim, did="4008001002")
    await r.sim.advance(30)
    assert r.events("DialBegin")[0]["DestChannel"].startswith("PJSIP/agent2-")
    assert r.events("DialEnd", DialStatus="ANSWER")
    assert not r.events("QueueCallerJoin")  # answered before any queue


async def test_agent_leg_sees_only_the_masked_number_and_every_answered_call_is_recorded(rig, pool) -> None:  # type: ignore[no-untyped-def]
    r = await rig()
    r.sim.set_answer("agent1", "auto", delay=2.0)
    r.sim.set_answer("agent2", "auto", delay=2.0)
    _call(r.sim)
    await r.sim.advance(40)
    assert r.events("AgentConnect")
    agent_frames = [
        dict(ev.pairs)
        for ev in r.sim.events
        if any(v.startswith("PJSIP/agent") for k, v in ev.pairs if k == "Channel")
    ]
    assert agent_frames and all(CALLER not in v for f in agent_frames for v in f.values())
    assert any(f.get("ConnectedLineNum") == MASKED for f in agent_frames)
    # ... while the caller's channel and our database keep the real number
    assert r.events("Newchannel", Channel="PJSIP/trunk-00000000")[0]["CallerIDNum"] == CALLER
    await r.ctx.recordings.flush()
    rec = await pool.fetchrow("SELECT * FROM recordings")
    assert rec["number"] == CALLER
    (start,) = r.events("MixMonitorStart")
    assert start["Linkedid"] == rec["linkedid"]
    assert await asyncio.to_thread(
        Path(rec["path"]).is_file
    )  # the simulated MixMonitor wrote where the handler said
    (route,) = r.ctx.events.of_type("route")  # type: ignore[attr-defined]
    assert route.payload["number"] == CALLER and route.payload["record"] == rec["path"]


async def test_night_calls_become_callbacks(rig, pool) -> None:  # type: ignore[no-untyped-def]
    r = await rig(now=NIGHT)
    _call(r.sim, dtmf=["1"])
    await r.sim.advance(60)
    row = await pool.fetchrow("SELECT number, kind, did, due_by FROM callbacks")
    assert (row["number"], row["kind"], row["did"]) == (CALLER, "night", "4008001234")
    assert not r.events("QueueCallerJoin") and not r.events("DialBegin")


async def test_a_crashing_handler_still_ends_in_the_queue_with_the_fact_stored(rig) -> None:  # type: ignore[no-untyped-def]
    reg = Registry()

    async def crash(session: AgiSession, _ctx: AgiContext) -> None:
        await session.get_variable("CTI_DNIS")
        raise KeyError("bug")

    reg.register("route", crash)
    r = await rig(registry=reg)
    r.sim.set_answer("agent1", "auto", delay=2.0)
    _call(r.sim)
    await r.sim.advance(40)
    assert r.events("QueueCallerJoin", CallerIDName=MASKED)
    assert r.events("AgentConnect")
    (fact,) = r.ctx.events.of_type("agi_fallback")  # type: ignore[attr-defined]
    assert fact.payload["reason"] == "error" and fact.payload["number"] == CALLER


async def test_a_dead_cti_process_still_ends_in_the_queue(rig) -> None:  # type: ignore[no-untyped-def]
    r = await rig(agi_up=False)
    r.sim.set_answer("agent1", "auto", delay=2.0)
    _call(r.sim)
    await r.sim.advance(40)
    assert [e["Value"] for e in r.events("VarSet", Variable="AGISTATUS")] == ["FAILURE"]
    assert r.events("AgentConnect")
    # (the simulator does not run the degraded pyst2 script; tests/agi/test_degraded.py shows it
    # masks and spools the call, and that the spool reaches PostgreSQL)

"""The dispatcher through the real AMI client against the simulated Asterisk (captures 06a-06d
behaviour): the Originate contract, outcomes from the event stream, retries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from cti.ami.client import AMIClient
from cti.callbacks.ami_adapter import ami_originate
from cti.callbacks.dispatcher import Dispatcher
from cti.callbacks.offer import open_callback
from cti.clock import ManualClock
from cti.policy import load_policy
from cti.sim.scenario import Scenario
from cti.sim.simulator import Simulator
from tests.fakes import ListSink, StaticLiveAgents

POLICY = load_policy()
DID = "4008001234"
NUMBER = "13812345678"


@pytest.fixture
async def rig(db_url) -> AsyncIterator[tuple[Simulator, AMIClient, asyncpg.Pool]]:
    sim = Simulator(Scenario(ami_users={"cti": ("cti", "all")}))
    sim.add_agent("agent1", "Agent One")
    await sim.start()
    client = AMIClient("127.0.0.1", sim.ami_port, "cti", "cti", action_timeout=5)
    await client.start()
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=3)
    yield sim, client, pool
    await pool.close()
    await client.close()
    await sim.close()


async def settle(cond, tries: int = 200) -> None:
    for _ in range(tries):
        if await cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def run_one(rig, customer: str, agent_mode: str = "auto"):
    sim, client, pool = rig
    clock = ManualClock(sim.now_dt())
    sink = ListSink()
    d = Dispatcher(
        pool, policy=POLICY, clock=clock, events=sink, live=StaticLiveAgents(["agent1"]),
        originate=ami_originate(client), default_did=DID,
    )  # fmt: skip
    client.subscribe(d.handle_ami)
    sim.set_answer("agent1", agent_mode, delay=2.0)
    sim.set_customer(NUMBER, customer, delay=3.0)
    async with pool.acquire() as c:
        ref = await open_callback(
            c, number=NUMBER, did=DID, kind="peak", now=clock.now(), policy=POLICY.callbacks
        )
    r = await d.dispatch_once()
    assert r.status == "dispatched"
    await sim.advance(60)

    async def resolved() -> bool:
        async with pool.acquire() as c:
            return await c.fetchval("SELECT state FROM callback_attempts") == "resolved"

    await settle(resolved)
    async with pool.acquire() as c:
        att = await c.fetchrow("SELECT * FROM callback_attempts")
        cb = await c.fetchrow("SELECT * FROM callbacks WHERE id = $1", ref.id)
    return att, cb, sink


async def test_reached_through_the_simulator(rig):
    att, cb, sink = await run_one(rig, "answer")
    assert att["outcome"] == "reached" and att["originate_reason"] == "4" and att["action_id"]
    assert (cb["status"], cb["outcome"]) == ("done", "reached")
    assert [e.type for e in sink.events][:3] == [
        "callback_attempt",
        "callback_originate_sent",
        "callback_agent_answered",
    ]


async def test_customer_busy_is_retried_later(rig):
    att, cb, _ = await run_one(rig, "busy")
    assert att["outcome"] == "busy" and att["dial_status"] == "BUSY"
    assert cb["status"] == "open" and cb["attempts"] == 1


async def test_agent_not_answering_is_matched_by_action_id(rig):
    att, cb, _ = await run_one(rig, "answer", agent_mode="never")
    assert att["outcome"] == "agent_no_answer" and att["originate_reason"] == "3"
    assert cb["status"] == "open"


async def test_trunk_down_through_the_simulator_is_nobodys_attempt(rig):
    """Issue 10 item 10 (capture 18 replayed by the simulator): the agent answers, the customer leg is
    CHANUNAVAIL; the attempt is trunk_unavailable, the callback stays open and the alarm is raised.
    Item 17c: while it rang, the agent's phone showed `回拨 138****5678`, never the full number."""
    sim, client, _ = rig
    frames: list[dict] = []
    client.subscribe(lambda f: frames.append(dict(f)))
    sim.set_trunk(False)
    att, cb, sink = await run_one(rig, "answer")
    assert att["outcome"] == "trunk_unavailable" and att["originate_reason"] == "4"
    assert cb["status"] == "open" and cb["outcome"] is None
    assert [e.payload["state"] for e in sink.of_type("trunk_alarm")] == ["down"]
    agent_ids = [
        f for f in frames if f.get("Event") == "NewCallerid" and f.get("Uniqueid") == att["channel_id"]
    ]
    assert agent_ids and agent_ids[0]["CallerIDName"] == "回拨 138****5678"
    assert agent_ids[0]["CallerIDNum"] == DID

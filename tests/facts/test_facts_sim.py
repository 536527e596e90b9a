"""Against the simulator over AMI: ring-no-answer then answer, agent hangs up first, abandon. The
behaviour is set in seconds (answer delays, talk times, patience, queue timeout), so the facts are
checked against those figures."""

from __future__ import annotations

import asyncio

import pytest

from cti.ami.client import AMIClient
from cti.ami.codec import Message
from cti.ami.listener import AMIListener
from cti.facts.derive import derive
from cti.policy import load_policy
from cti.sim import Simulator
from cti.sim.scenario import QueueConfig, Scenario
from cti.state.live import LiveState
from tests.sim.helpers import FastAgiServer


async def _route(env: dict[str, str], cmd) -> None:  # type: ignore[no-untyped-def]
    await cmd('SET VARIABLE CTI_ROUTE "queue"')
    await cmd('SET VARIABLE CTI_RECORD "/var/spool/asterisk/monitor/call.wav"')


async def test_sim_calls_facts_to_the_second() -> None:
    agi = FastAgiServer({"route": _route})
    port = await agi.start()
    sim = Simulator(
        Scenario(queues=(QueueConfig(timeout=10.0, retry=2.0),)), agi_url=f"agi://127.0.0.1:{port}"
    )
    sim.add_agent("agent1", "Agent One")
    sim.add_agent("agent2", "Agent Two")
    await sim.start()
    got: list[tuple[float, str, Message]] = []
    client = AMIClient("127.0.0.1", sim.ami_port, "cti", "cti", ping_interval=0)
    listener = AMIListener(client, LiveState())
    listener.on_event(lambda m, ts: got.append((ts, m.name, m)))
    try:
        await listener.start()
        sim.login("agent1", penalty=0)
        sim.login("agent2", penalty=1)
        sim.set_answer("agent1", "never")
        sim.set_answer("agent2", "auto", delay=3.0)
        sim.place_call(
            "13812345678", "4008001234", "张三", behaviour={"talk_time": 12, "hangup_first": "caller"}
        )
        await sim.advance(40)
        sim.place_call(
            "13987654321", "4008001234", "李四", behaviour={"talk_time": 5, "hangup_first": "agent"}
        )
        await sim.advance(20)
        sim.set_answer("agent2", "never")
        sim.place_call("13700000001", "4008001234", behaviour={"patience": 8})
        await sim.advance(20)
        for _ in range(200):
            if sim.channels() == [] and listener.live.summary()["channels"] == 0:
                break
            await asyncio.sleep(0.01)
        assert sim.channels() == [] and listener.live.summary()["channels"] == 0
    finally:
        await listener.close()
        await sim.close()
        await agi.close()

    facts = derive(got, load_policy().ring)
    c1, c2, c3 = sorted(facts.calls.values(), key=lambda c: c.started_at)
    # call 1: agent1 rings the queue timeout (10 s) unanswered, retry 2 s, agent2 answers after 3 s
    r1 = [r for r in facts.rings if r.linkedid == c1.linkedid]
    assert [(r.agent, r.outcome) for r in r1] == [("agent1", "no_answer"), ("agent2", "answered")]
    assert r1[0].ended_at - r1[0].started_at == pytest.approx(10.0, abs=0.01)
    assert r1[1].ended_at - r1[1].started_at == pytest.approx(3.0, abs=0.01)
    assert r1[1].started_at - r1[0].ended_at == pytest.approx(2.0, abs=0.01)
    assert c1.answered_by == "agent2" and c1.rings_to_answer == 1
    assert c1.hold_s == pytest.approx(15.0, abs=0.05)
    assert c1.talk_s == pytest.approx(12.0, abs=0.01) and c1.hung_up_first == "caller"
    assert c1.caller_num == "13812345678" and c1.caller_masked == "138****5678" and c1.did == "4008001234"
    assert c1.recording_file == "/var/spool/asterisk/monitor/call.wav"
    (rna,) = [r for r in facts.ring_no_answer if r.linkedid == c1.linkedid]
    assert (rna.agent, rna.ring_ms) == ("agent1", 10000)
    auto = [p for p in facts.pauses if p.agent == "agent1"]
    assert auto and auto[0].reason == "Auto-Pause" and auto[0].started_at == pytest.approx(rna.at, abs=0.01)
    # call 2: agent1 is auto-paused, agent2 answers after 3 s and hangs up first after 5 s
    assert c2.answered_by == "agent2" and c2.hung_up_first == "agent"
    assert c2.talk_s == pytest.approx(5.0, abs=0.01) and c2.hold_s == pytest.approx(3.0, abs=0.05)
    # call 3: nobody answers; the caller gives up after 8 s of patience
    assert c3.abandoned and c3.answered_by is None
    assert c3.abandon_wait_s == pytest.approx(c3.asterisk["abandon_HoldTime"], abs=1.0)
    assert c3.ended_at - c3.started_at == pytest.approx(8.0, abs=0.6)
    assert c3.agents_logged_in == 2

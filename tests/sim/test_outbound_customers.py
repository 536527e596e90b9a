"""Outbound customers in the simulator (issue 14): what the dialer's Originate into [cti-outbound]
gets back, replayed against capture 06c where one exists, and how the scenario's customers behave."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime

import pytest

from cti.sim import Simulator
from cti.sim.outbound_customers import contact_rows
from cti.sim.scenario import OutboundConfig, QueueConfig, Scenario, ScenarioError, parse_scenario
from tests.sim.helpers import RawAmi, capture_frames, d, per_channel, started

SKIP = {"VarSet", "RTCPSent", "Cdr", "ChallengeSent", "SuccessfulAuth", "DeviceStateChange"}
NUMBER = "13812345678"


def originate(aid: str, dial_id: int, preferred: str = "", trunk: str = "pstn", timeout_ms: int = 8000):  # type: ignore[no-untyped-def]
    """The frame cti.outbound.dialer.OutboundOriginate sends (the trunk of 06c by default)."""
    return (
        ("Action", "Originate"),
        ("ActionID", aid),
        ("Channel", f"PJSIP/{NUMBER}@{trunk}"),
        ("Context", "cti-outbound"),
        ("Exten", "s"),
        ("Priority", "1"),
        ("CallerID", "4008001234"),
        ("Timeout", str(timeout_ms)),
        (
            "Variable",
            f"CTI_DIAL_ID={dial_id},CTI_QUEUE=sales,CTI_PREFERRED={preferred},"
            "CTI_MASKED=138****5678,CTI_CONNECT_TIMEOUT=2",
        ),
        ("Async", "true"),
        ("ChannelId", f"cti-ob-{dial_id}"),
    )


@pytest.fixture
async def rig() -> AsyncIterator[tuple[Simulator, RawAmi]]:
    sc = Scenario(queues=(QueueConfig(name="sales", timeout=10, retry=2, autopause=True),))
    sim = Simulator(sc)
    sim.add_agent("agent1", "Agent One")
    async with started(sim) as ami:
        yield sim, ami


def events(frames, name: str, **match: str) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    return [
        m for m in map(d, frames) if m.get("Event") == name and all(m.get(k) == v for k, v in match.items())
    ]


def order(frames, uniqueid: str) -> list[str]:  # type: ignore[no-untyped-def]
    """The events of one dial in wire order: its channel's, and OriginateResponse (Uniqueid <unknown>)."""
    out = []
    for m in map(d, frames):
        if m.get("Uniqueid") == uniqueid or m.get("Event") == "OriginateResponse":
            out.append(m["Event"])
    return out


async def test_busy_and_no_answer_return_what_06c_shows(rig) -> None:  # type: ignore[no-untyped-def]
    sim, ami = rig
    want = per_channel(capture_frames("06c-originate-failure-reasons"), SKIP)
    sim.set_customer(NUMBER, "busy", delay=0.5)
    assert d(await ami.action(*originate("ami-1", 1)))["Response"] == "Success"
    await sim.advance(5)
    await ami.drain_for()
    busy = [f for f in ami.frames if d(f).get("Uniqueid") == "cti-ob-1" or d(f).get("ActionID") == "ami-1"]
    got = {k: v for k, v in per_channel(busy, SKIP).items() if k.startswith("PJSIP/pstn-")}
    assert list(got.values()) == [want["PJSIP/pstn-00000002"]]  # 06c case 3, the 486 Busy Here
    # the order the dialer reads the cause in: HangupRequest 17, OriginateResponse 0, Hangup 17
    seq = [e for e in order(busy, "cti-ob-1") if e in ("HangupRequest", "OriginateResponse", "Hangup")]
    assert seq == ["HangupRequest", "OriginateResponse", "Hangup"]
    resp = events(busy, "OriginateResponse")[0]
    assert (resp["Response"], resp["Reason"], resp["Uniqueid"]) == ("Failure", "0", "<unknown>")
    assert events(busy, "HangupRequest")[0]["Cause"] == "17"

    sim.set_customer(NUMBER, "noanswer")
    ami.frames.clear()
    await ami.action(*originate("ami-2", 2))
    await sim.advance(10)
    await ami.drain_for()
    got = {k: v for k, v in per_channel(ami.frames, SKIP).items() if k.startswith("PJSIP/pstn-")}
    assert list(got.values()) == [want["PJSIP/pstn-00000001"]]  # 06c case 2: rings out, Reason 3
    resp = events(ami.frames, "OriginateResponse")[0]
    assert (resp["Reason"], resp["ActionID"]) == ("3", "ami-2")
    assert events(ami.frames, "Hangup")[0]["Cause"] == "19"
    assert [(r.dial_id, r.result) for r in sim.pbx.outbound.ledger] == [(1, "busy"), (2, "noanswer")]


async def test_answered_customer_reaches_a_queue_agent_masked_and_the_verdict_is_told(rig) -> None:  # type: ignore[no-untyped-def]
    sim, ami = rig
    sim.login("agent1")
    sim.set_answer("agent1", "auto", delay=0.5)
    sim.set_customer(NUMBER, "answer", delay=3.0, talk_time=45.0)
    told: list[tuple[int, str, str]] = []
    sim.pbx.outbound.on_verdict.append(lambda *a: told.append(a))
    await ami.action(*originate("ami-1", 7, trunk="trunk", timeout_ms=30000))
    await sim.advance(60)
    await ami.drain_for()
    resp = events(ami.frames, "OriginateResponse")[0]
    assert (resp["Response"], resp["Reason"], resp["Uniqueid"]) == ("Success", "4", "cti-ob-7")
    assert resp["Channel"].startswith("PJSIP/trunk-")
    connect = events(ami.frames, "AgentConnect")[0]
    assert (connect["Linkedid"], connect["MemberName"]) == ("cti-ob-7", "agent1")
    agent_frames = [m for m in map(d, ami.frames) if m.get("Channel", "").startswith("PJSIP/agent1")]
    assert agent_frames and all(NUMBER not in str(m) for m in agent_frames)  # R-MASK on the agent leg
    assert events(ami.frames, "Hangup", Uniqueid="cti-ob-7")[0]["Cause"] == "16"
    rec = sim.pbx.outbound.ledger[0]
    assert (rec.result, rec.agent, rec.abandoned) == ("answered", "agent1", False)
    assert rec.connected_at is not None and rec.answered_at is not None
    assert rec.connected_at - rec.answered_at <= 2
    assert told == [(7, "agent1", rec.verdict)]
    assert sim.core.calls_active == 0


async def test_nobody_within_the_connect_timeout_hears_the_message_and_is_hung_up(rig) -> None:  # type: ignore[no-untyped-def]
    sim, ami = rig
    sim.login("agent1")
    sim.set_answer("agent1", "never")
    sim.set_customer(NUMBER, "answer", delay=2.0)
    await ami.action(*originate("ami-1", 8, timeout_ms=30000))
    await sim.advance(30)
    await ami.drain_for()
    apps = [m["Application"] for m in events(ami.frames, "Newexten", Uniqueid="cti-ob-8")]
    assert apps[-3:] == ["Queue", "Playback", "Hangup"]
    assert events(ami.frames, "QueueCallerLeave", Uniqueid="cti-ob-8")
    assert not events(ami.frames, "AgentConnect")
    # the progressive dial: the claimed agent's Dial runs out after 2 s
    ami.frames.clear()
    await ami.action(*originate("ami-2", 9, preferred="agent1", timeout_ms=30000))
    await sim.advance(30)
    await ami.drain_for()
    ends = [m["DialStatus"] for m in events(ami.frames, "DialEnd", Uniqueid="cti-ob-9")]
    assert ends == ["NOANSWER"]
    apps = [m["Application"] for m in events(ami.frames, "Newexten", Uniqueid="cti-ob-9")]
    assert apps[-4:] == ["Dial", "GotoIf", "Playback", "Hangup"]
    assert [r.abandoned for r in sim.pbx.outbound.ledger] == [True, True]
    assert sim.pbx.outbound.ledger[1].connected_at is None


async def test_customers_follow_the_scenario_rates_and_the_hour(rig) -> None:  # type: ignore[no-untyped-def]
    sim, _ami = rig
    hours = [0.0] * 24
    hours[10] = 0.5  # 10:00-11:00 local: half the reachable customers answer; nobody at other hours
    cfg = OutboundConfig(busy_rate=0.1, congestion_rate=0.05, answer_by_hour=tuple(hours), purchase_rate=0.2,
                         refusal_rate=0.5, never_call_rate=0.0)  # fmt: skip
    cust = sim.pbx.outbound
    cust.cfg = cfg
    ten = datetime.fromisoformat("2026-11-23T10:15:00+08:00").timestamp()
    numbers = [f"139{i:08d}" for i in range(4000)]
    sim.core.now = ten
    first = {n: cust.outcome(n, 30.0) for n in numbers}
    at_ten = Counter(kind for kind, _ in first.values())
    assert abs(at_ten["busy"] / 4000 - 0.1) < 0.02 and abs(at_ten["congestion"] / 4000 - 0.05) < 0.015
    assert abs(at_ten["answer"] / (4000 * 0.85) - 0.5) < 0.05
    sim.core.now = ten + 5 * 3600  # 15:15: nobody answers
    assert Counter(cust.outcome(n, 30.0)[0] for n in numbers)["answer"] == 0
    verdicts = Counter(cust.verdict(n)[0] for n in numbers)
    assert abs(verdicts["sale"] / 4000 - 0.2) < 0.03 and abs(verdicts["refusal"] / 4000 - 0.5) < 0.03
    # a contact behaves the same whatever else the run dialled before it (its own stream per dial)
    other = Simulator(Scenario()).pbx.outbound
    other.cfg = cfg
    other.core.now = ten
    replayed = {n: other.outcome(n, 30.0) for n in reversed(numbers[:200])}
    assert replayed == {n: first[n] for n in numbers[:200]}


def test_contacts_are_generated_from_the_seed_distinct_and_repeatable() -> None:
    cfg = OutboundConfig(contacts=3000, contact_seed=5, boss_share=0.1)
    rows = list(contact_rows(cfg, 1))
    assert len(rows) == 3000 and len({n for _, n, _ in rows}) == 3000
    assert all(len(n) == 11 and n.startswith("1") for _, n, _ in rows)
    assert 200 < sum(1 for *_, s in rows if s == "boss") < 400
    assert rows == list(contact_rows(cfg, 1)) and rows != list(contact_rows(cfg, 2))


def test_outbound_section_errors_name_the_field() -> None:
    with pytest.raises(ScenarioError, match="answer_by_hour"):
        parse_scenario({"outbound": {"answer_by_hour": [0.5] * 23}})
    with pytest.raises(ScenarioError, match="busy_rate"):
        parse_scenario({"outbound": {"busy_rate": 0.8, "congestion_rate": 0.3}})
    with pytest.raises(ScenarioError, match="mode"):
        parse_scenario({"outbound": {"mode": "robocall"}})
    assert parse_scenario({"outbound": {"contacts": 10}}).outbound == OutboundConfig(contacts=10)

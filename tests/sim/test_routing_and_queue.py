"""The COMMON.md routing contract (CTI_ROUTE / CTI_PREFERRED / CTI_MASKED / CTI_RECORD, night and
callback_offer scripts) and app_queue semantics, observed as events a CTI would see."""

from __future__ import annotations

import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from cti.sim import Simulator
from cti.sim.model import PbxEvent as Event
from cti.sim.scenario import QueueConfig, Scenario
from tests.sim.helpers import FastAgiServer, RawAmi, d

Cmd = Callable[[str], Awaitable[str]]


def names(sim: Simulator, event: str, **match: str) -> list[dict[str, str]]:
    out = []
    for ev in sim.events:
        if ev.name == event:
            m = dict(ev.pairs)
            if all(m.get(k) == v for k, v in match.items()):
                out.append(m)
    return out


def on_channel(sim: Simulator, channel: str) -> list[Event]:
    return [ev for ev in sim.events if dict(ev.pairs).get("Channel") == channel]


@pytest.fixture
async def make() -> AsyncIterator[Callable[..., Awaitable[Simulator]]]:
    made: list[tuple[Simulator, FastAgiServer]] = []

    async def _make(scripts: dict, queue: QueueConfig | None = None, agents: int = 2) -> Simulator:  # type: ignore[type-arg]
        agi = FastAgiServer(scripts)
        port = await agi.start()
        sc = Scenario(queues=(queue or QueueConfig(),))
        sim = Simulator(sc, agi_url=f"agi://127.0.0.1:{port}", record_events=True)
        for n in range(1, agents + 1):
            sim.add_agent(f"agent{n}", f"Agent {n}")
        await sim.start()
        made.append((sim, agi))
        return sim

    yield _make
    for sim, agi in made:
        await sim.close()
        await agi.close()


def routed(**vars_: str) -> Callable[[dict[str, str], Cmd], Awaitable[None]]:
    async def route(env: dict[str, str], cmd: Cmd) -> None:
        if "CALLERID(name)" in vars_:
            await cmd(f'SET VARIABLE CALLERID(name) "{vars_["CALLERID(name)"]}"')
        for k, v in vars_.items():
            if k != "CALLERID(name)":
                await cmd(f'SET VARIABLE {k} "{v}"')

    return route


async def test_preferred_agent_masked_and_recorded(make, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rec = tmp_path / "rec" / "call.wav"
    sim = await make(
        {
            "route": routed(
                **{
                    "CALLERID(name)": "138****5678",
                    "CTI_ROUTE": "queue",
                    "CTI_QUEUE": "sales",
                    "CTI_PREFERRED": "agent2",
                    "CTI_PREFERRED_TIMEOUT": "8",
                    "CTI_MASKED": "138****5678",
                    "CTI_RECORD": str(rec),
                }
            )
        }
    )
    sim.login("agent1")
    sim.login("agent2")
    sim.set_answer("agent2", "auto", delay=2.0)
    sim.place_call(
        caller="13812345678",
        did="4008001234",
        name="张三",
        behaviour={"talk_time": 4, "hangup_first": "caller"},
    )
    await sim.advance(15)
    dial = names(sim, "Newexten", Application="Dial")
    assert dial and dial[0]["AppData"] == "PJSIP/agent2,8"
    begins = names(sim, "DialBegin")
    assert [b["DialString"] for b in begins] == ["agent2"]  # rung first, queue never needed
    agent_leg = begins[0]["DestChannel"]
    assert agent_leg.startswith("PJSIP/agent2-")
    for ev in on_channel(sim, agent_leg):  # R-MASK: nothing about the agent leg shows the full number
        assert "13812345678" not in "".join(v for _, v in ev.pairs), ev.name
    nc = names(sim, "NewCallerid", Channel=agent_leg)[0]
    assert (nc["CallerIDNum"], nc["CallerIDName"], nc["ConnectedLineNum"]) == ("138****5678",) * 3
    assert names(sim, "MixMonitorStart", Channel="PJSIP/trunk-00000000")
    assert not names(sim, "MixMonitorStop")  # ended by hangup: no stop event (05b)
    with wave.open(str(rec)) as w:
        assert (w.getframerate(), w.getsampwidth(), w.getnchannels()) == (8000, 2, 1)
        assert w.getnframes() == 4 * 8000
    assert sim.channels() == []


async def test_preferred_agent_no_answer_falls_back_to_queue(make) -> None:  # type: ignore[no-untyped-def]
    sim = await make({"route": routed(CTI_ROUTE="queue", CTI_PREFERRED="agent2", CTI_PREFERRED_TIMEOUT="5")})
    sim.login("agent1")
    sim.login("agent2")
    sim.set_answer("agent2", "never")
    sim.set_answer("agent1", "auto", delay=1.0)
    sim.place_call(caller="13812345678", did="4008001234", behaviour={"talk_time": 3})
    await sim.advance(20)
    ends = [(e["DestChannel"].split("-")[0], e["DialStatus"]) for e in names(sim, "DialEnd")]
    assert ends == [("PJSIP/agent2", "NOANSWER"), ("PJSIP/agent1", "ANSWER")]
    assert names(sim, "AgentConnect")[0]["MemberName"] == "agent1"


async def test_night_route_records_message_and_confirms_number(make, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    replies: list[str] = []

    async def night(env: dict[str, str], cmd: Cmd) -> None:
        replies.append(await cmd("ANSWER"))
        replies.append(await cmd('STREAM FILE cti/night-welcome "#"'))
        replies.append(await cmd(f"RECORD FILE {tmp_path / 'msg'} wav # 30000"))
        replies.append(await cmd("GET DATA cti/press-1-or-enter-number 5000 1"))
        replies.append(await cmd("GET DATA cti/enter-number 5000 11"))
        replies.append(await cmd("WAIT FOR DIGIT 3000"))
        replies.append(await cmd('VERBOSE "done" 1'))
        replies.append(await cmd("HANGUP"))

    sim = await make({"route": routed(CTI_ROUTE="night"), "night": night})
    sim.place_call(
        caller="13812345678", did="4008001234", behaviour={"dtmf": ["1", "13900001111#"], "message_s": 2}
    )
    await sim.advance(5)
    assert replies == [
        "200 result=0",
        "200 result=0 endpos=16000",
        "200 result=0 (timeout) endpos=16000",
        "200 result=1",
        "200 result=13900001111",
        "200 result=0",
        "200 result=1",
        "200 result=1",
    ]
    assert (tmp_path / "msg.wav").stat().st_size == 44 + 2 * 8000 * 2
    agi = [e["AppData"] for e in names(sim, "Newexten", Application="AGI")]
    assert [a.rsplit("/", 1)[1] for a in agi] == ["route", "night"]
    assert sim.stats.night == 1 and not names(sim, "QueueCallerJoin") and sim.channels() == []


@pytest.mark.parametrize(("answer", "queued"), [("2", True), ("1", False)])
async def test_callback_offer_declined_goes_to_queue(make, answer: str, queued: bool) -> None:  # type: ignore[no-untyped-def]
    async def offer(env: dict[str, str], cmd: Cmd) -> None:
        reply = await cmd("GET DATA cti/offer-callback 5000 1")
        if reply == "200 result=2":
            await cmd("SET VARIABLE CTI_ROUTE queue")

    sim = await make({"route": routed(CTI_ROUTE="callback_offer"), "callback_offer": offer})
    sim.login("agent1")
    sim.place_call(caller="13812345678", did="4008001234", behaviour={"dtmf": [answer], "talk_time": 2})
    await sim.advance(30)
    assert bool(names(sim, "QueueCallerJoin")) is queued
    assert sim.stats.callback_offer == 1


async def test_ringall_rings_everyone_and_cancels_the_rest(make) -> None:  # type: ignore[no-untyped-def]
    sim = await make({}, QueueConfig(strategy="ringall"), agents=3)
    for a in ("agent1", "agent2", "agent3"):
        sim.login(a)
        sim.set_answer(a, "never")
    sim.set_answer("agent3", "auto", delay=2.0)
    sim.place_call(caller="13812345678", did="4008001234", behaviour={"talk_time": 3})
    await sim.advance(10)
    assert len(names(sim, "AgentCalled")) == 3
    ends = sorted((e["DestChannel"].split("-")[0], e["DialStatus"]) for e in names(sim, "DialEnd"))
    assert ends == [("PJSIP/agent1", "CANCEL"), ("PJSIP/agent2", "CANCEL"), ("PJSIP/agent3", "ANSWER")]


async def test_leastrecent_wrapup_and_penalty(make) -> None:  # type: ignore[no-untyped-def]
    sim = await make({}, QueueConfig(strategy="leastrecent", wrapuptime=30), agents=3)
    sim.login("agent1")
    sim.login("agent2")
    sim.login("agent3", penalty=1)
    for a in ("agent1", "agent2", "agent3"):
        sim.set_answer(a, "auto", delay=1.0)
    called: list[str] = []
    sim.subscribe(
        lambda ev: called.append(dict(ev.pairs)["MemberName"]) if ev.name == "AgentCalled" else None
    )
    for i in range(4):
        sim.place_call(caller=f"1380000000{i}", did="4008001234", behaviour={"talk_time": 5, "patience": 300})
        await sim.advance(10)
    # agent3 (penalty 1) only once both penalty-0 agents are in wrap-up; leastrecent alternates 1 and 2
    assert called[:2] in (["agent1", "agent2"], ["agent2", "agent1"])
    assert called[2] == "agent3"
    assert called[3] == called[0]  # wrap-up (30 s) over for the least recent one


async def test_joinempty_timeout_and_leavewhenempty(make) -> None:  # type: ignore[no-untyped-def]
    sim = await make({}, QueueConfig(joinempty=False, max_wait=20, leavewhenempty=True))
    sim.place_call(caller="13800000001", did="4008001234")
    await sim.advance(3)
    assert [v["Value"] for v in names(sim, "VarSet", Variable="QUEUESTATUS")] == ["JOINEMPTY"]
    sim.login("agent1")
    sim.set_answer("agent1", "manual")
    sim.place_call(caller="13800000002", did="4008001234", behaviour={"patience": 300})
    await sim.advance(30)
    assert [v["Value"] for v in names(sim, "VarSet", Variable="QUEUESTATUS")] == ["JOINEMPTY", "TIMEOUT"]
    sim.place_call(caller="13800000003", did="4008001234", behaviour={"patience": 300})
    await sim.advance(3)
    assert len(sim.queue_callers()) == 1
    sim.pbx.app_queue.remove("sales", "PJSIP/agent1")
    await sim.advance(1)
    assert [v["Value"] for v in names(sim, "VarSet", Variable="QUEUESTATUS")][-1] == "LEAVEEMPTY"
    assert sim.queue_callers() == []


async def test_hostile_names_reach_ami_and_agi_raw(make) -> None:  # type: ignore[no-untyped-def]
    seen: list[dict[str, str]] = []

    async def route(env: dict[str, str], cmd: Cmd) -> None:
        seen.append(env)
        seen.append({"name": await cmd("GET VARIABLE CALLERID(name)")})

    sim = await make({"route": route})
    c = await RawAmi.connect(sim.ami_port)
    await c.login()
    hostile = '王"; DROP \\ 表'
    sim.place_call(caller="02161234567", did="4008001234", name=hostile)
    await sim.advance(3)
    nc = await c.wait(lambda f: d(f).get("Event") == "Newchannel")
    assert d(nc)["CallerIDName"] == hostile and d(nc)["CallerIDNum"] == "02161234567"
    assert seen[0]["agi_calleridname"] == hostile
    assert seen[1]["name"] == f"200 result=1 ({hostile})"
    await c.close()


async def test_scaled_clock_runs_in_wall_time() -> None:
    sim = Simulator(Scenario(), speed=50.0, agi_url="agi://127.0.0.1:1", record_events=True)
    sim.add_agent("agent1", "Agent One")
    await sim.start()
    try:
        sim.login("agent1")
        sim.set_answer("agent1", "auto", delay=3.0)
        t0 = sim.now
        sim.place_call(caller="13800000001", did="4008001234", behaviour={"talk_time": 10})
        import asyncio

        for _ in range(100):
            await asyncio.sleep(0.05)
            if names(sim, "AgentComplete"):
                break
        done = [ev for ev in sim.events if ev.name == "AgentComplete"]
        assert done and 13 <= done[0].ts - t0 < 25  # 0.5 s Answer + 3 s ring + 10 s talk, plus scheduling lag
    finally:
        await sim.close()


async def test_hangup_route_and_paused_member_is_skipped(make) -> None:  # type: ignore[no-untyped-def]
    sim = await make({"route": routed(CTI_ROUTE="hangup")})
    sim.login("agent1")
    sim.place_call(caller="13800000001", did="4008001234")
    await sim.advance(3)
    apps = [e["Application"] for e in names(sim, "Newexten", Channel="PJSIP/trunk-00000000")]
    assert apps[-2:] == ["NoOp", "Hangup"] and "Queue" not in apps
    assert names(sim, "Hangup", Channel="PJSIP/trunk-00000000")[0]["Cause"] == "16"
    assert sim.stats.hangup_route == 1


async def test_paused_member_is_not_rung(make) -> None:  # type: ignore[no-untyped-def]
    sim = await make({})
    sim.login("agent1")
    sim.login("agent2", penalty=5)
    assert sim.pause_at_phone("agent1", True, "lunch") is None
    sim.set_answer("agent2", "auto", delay=1.0)
    sim.place_call(caller="13800000001", did="4008001234", behaviour={"talk_time": 2})
    await sim.advance(10)
    assert [e["MemberName"] for e in names(sim, "AgentCalled")] == ["agent2"]
    assert sim.pause_at_phone("agent9", True) == "Interface not found"


def test_caller_numbers_are_chinese_formats() -> None:
    import random
    import re

    from cti.sim.numbers import HOSTILE, caller_name, caller_number

    rng = random.Random(1)
    nums = [caller_number(rng, 0.3) for _ in range(500)]
    mobile = [n for n in nums if re.fullmatch(r"1[3-9]\d{9}", n)]
    land = [n for n in nums if re.fullmatch(r"0\d{2,3}[2-8]\d{6,7}", n)]
    assert len(mobile) + len(land) == 500 and 100 < len(land) < 200
    names_ = [caller_name(rng, 0.5, 0.2) for _ in range(300)]
    assert any(n in HOSTILE for n in names_) and "" in names_
    assert any(re.fullmatch(r"[\u4e00-\u9fff]{2,3}", n) for n in names_)


async def test_caller_hangs_up_during_the_agi_script(make) -> None:  # type: ignore[no-untyped-def]
    lines: list[str] = []

    async def route(env: dict[str, str], cmd: Cmd) -> None:
        lines.append(await cmd("ANSWER"))
        lines.append(await cmd('STREAM FILE cti/night-welcome ""'))
        lines.append(await cmd("SET VARIABLE CTI_ROUTE queue"))  # answered by the SIGHUP line first
        lines.append(await cmd("VERBOSE x 1"))

    sim = await make({"route": route})
    sim.login("agent1")
    sim.place_call(caller="13800000001", did="4008001234", behaviour={"ivr_hangup_after": 2})
    await sim.advance(5)
    dead = "511 Command Not Permitted on a dead channel or intercept routine"
    assert lines == ["200 result=0", "200 result=0 endpos=16000", "HANGUP", dead]
    assert [v["Value"] for v in names(sim, "VarSet", Variable="AGISTATUS")] == ["HANGUP"]
    assert not names(sim, "QueueCallerJoin") and sim.channels() == []
    assert [
        e["Event"]
        for e in (dict(ev.pairs) | {"Event": ev.name} for ev in sim.events)
        if e.get("Channel") == "PJSIP/trunk-00000000"
    ][-3:] == ["HangupRequest", "VarSet", "Hangup"]
    assert sim.summary()["ivr_hangups"] == 1


async def test_agi_hangup_command_ends_the_call(make) -> None:  # type: ignore[no-untyped-def]
    lines: list[str] = []

    async def route(env: dict[str, str], cmd: Cmd) -> None:
        lines.append(await cmd("HANGUP"))
        lines.append(await cmd("NOOP"))

    sim = await make({"route": route})
    sim.login("agent1")
    sim.place_call(caller="13800000001", did="4008001234")
    await sim.advance(5)
    assert lines == ["200 result=1", "HANGUP"]
    assert names(sim, "SoftHangupRequest", Channel="PJSIP/trunk-00000000")
    assert not names(sim, "QueueCallerJoin") and sim.channels() == []


async def test_preferred_dial_looks_like_capture_12(make) -> None:  # type: ignore[no-untyped-def]
    """Issue 10 item 6 / capture 12: a Dial outside app_queue has no Agent*/QueueCaller* events, its
    DialBegin's DialString is the bare endpoint, and the member's QueueMemberStatus still follows the
    device (6 ringing, 2 in use, 1 free) with CallsTaken unchanged."""
    sim = await make({"route": routed(CTI_ROUTE="queue", CTI_PREFERRED="agent2", CTI_PREFERRED_TIMEOUT="10")})
    sim.login("agent1")
    sim.login("agent2")
    sim.set_answer("agent2", "auto", delay=3.0)
    sim.place_call(
        caller="13812345678", did="4008001234", behaviour={"talk_time": 5, "hangup_first": "caller"}
    )
    await sim.advance(20)
    assert [ev.name for ev in sim.events if ev.name.startswith(("Agent", "QueueCaller"))] == []
    assert [b["DialString"] for b in names(sim, "DialBegin")] == ["agent2"]
    statuses = [(m["Status"], m["CallsTaken"]) for m in names(sim, "QueueMemberStatus", MemberName="agent2")]
    assert ("6", "0") in statuses and ("2", "0") in statuses and statuses[-1] == ("1", "0")

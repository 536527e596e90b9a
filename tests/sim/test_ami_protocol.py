"""AMI session behaviour against captures 00/07/06c: login, errors, list replies, UTF-8, Originate."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from cti.sim import Simulator
from cti.sim.scenario import Scenario
from tests.sim.helpers import RawAmi, capture_frames, d, keys


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    sc = Scenario(ami_users={"cti": ("cti", "all"), "ctifilter": ("ctifilter", "call,agent")})
    s = Simulator(sc, auth_fail_delay=0.2)
    s.add_agent("agent1", "Agent One")
    s.add_agent("agent2", "Agent Two")
    s.add_agent("agent3", "Agent Three", registered=False)
    await s.start()
    yield s
    await s.close()


async def test_banner_login_ping_logoff(sim: Simulator) -> None:
    c = await RawAmi.connect(sim.ami_port)
    assert c.banner == b"Asterisk Call Manager/11.0.0\r\n"
    r = await c.login()
    assert r == [("Response", "Success"), ("ActionID", "ami-001"), ("Message", "Authentication accepted")]
    fb = await c.wait(lambda f: d(f).get("Event") == "FullyBooted")
    assert keys(fb) == ["Event", "Privilege", "Uptime", "LastReload", "Status"]
    r = await c.action(("Action", "Ping"), ("ActionID", "p1"))
    assert keys(r) == ["Response", "ActionID", "Ping", "Timestamp"]
    await c.send(("Action", "Ping"))
    r = await c.wait(lambda f: d(f).get("Ping") == "Pong" and "ActionID" not in d(f))
    assert keys(r) == ["Response", "Ping", "Timestamp"]
    r = await c.action(("Action", "Logoff"), ("ActionID", "bye"))
    assert r == [("Response", "Goodbye"), ("ActionID", "bye"), ("Message", "Thanks for all the fish.")]
    assert await c.reader.read() == b""


async def test_permission_denied_then_wrong_secret_closes_after_delay(sim: Simulator) -> None:
    watcher = await RawAmi.connect(sim.ami_port)
    await watcher.login()
    c = await RawAmi.connect(sim.ami_port)
    r = await c.action(("Action", "Status"), ("ActionID", "ami-badlogin-001"))
    assert r == [("Response", "Error"), ("ActionID", "ami-badlogin-001"), ("Message", "Permission denied")]
    await watcher.wait(lambda f: d(f).get("Event") == "RequestNotAllowed")
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await c.send(
        ("Action", "Login"), ("ActionID", "ami-badlogin-002"), ("Username", "cti"), ("Secret", "wrong")
    )
    inv = await watcher.wait(lambda f: d(f).get("Event") == "InvalidPassword")
    assert d(inv)["Privilege"] == "security,all" and d(inv)["AccountID"] == "cti"
    r = await c.wait(lambda f: d(f).get("ActionID") == "ami-badlogin-002")
    assert loop.time() - t0 >= 0.15  # Asterisk answers about a second later; the test sim uses 0.2 s
    assert r == [
        ("Response", "Error"),
        ("ActionID", "ami-badlogin-002"),
        ("Message", "Authentication failed"),
    ]
    assert await asyncio.wait_for(c.reader.read(), 2) == b""


async def test_unknown_action_and_unknown_cli(sim: Simulator) -> None:
    c = await RawAmi.connect(sim.ami_port)
    await c.login()
    r = await c.action(("Action", "FooBarUnknown"), ("ActionID", "ami-031"))
    want = next(f for f in capture_frames("07-actions") if d(f).get("ActionID") == "ami-031")
    assert r == want
    bad = await c.wait(lambda f: d(f).get("Event") == "RequestBadFormat")
    assert d(bad)["RequestType"] == "Action: FooBarUnknown"
    r = await c.action(("Action", "Command"), ("ActionID", "ami-030"), ("Command", "no such cli command"))
    assert r == next(f for f in capture_frames("07-actions") if d(f).get("ActionID") == "ami-030")
    r = await c.action(("Action", "Command"), ("ActionID", "v"), ("Command", "core show version"))
    assert d(r)["Output"].startswith("Asterisk 22.10.1")


async def test_queue_actions_reply_like_asterisk(sim: Simulator) -> None:
    cap = {d(f).get("ActionID"): f for f in capture_frames("07-actions") if f[0][0] == "Response"}
    c = await RawAmi.connect(sim.ami_port)
    await c.login()
    for aid, agent, pen in (("ami-002", "agent1", "0"), ("ami-003", "agent2", "1")):
        r = await c.action(
            ("Action", "QueueAdd"),
            ("ActionID", aid),
            ("Queue", "sales"),
            ("Interface", f"PJSIP/{agent}"),
            ("Penalty", pen),
            ("MemberName", agent),
            ("StateInterface", f"PJSIP/{agent}"),
        )
        assert r == cap[aid]
        # the reply precedes the event it caused
        added = await c.wait(
            lambda f, a=agent: d(f).get("Event") == "QueueMemberAdded" and d(f)["MemberName"] == a
        )
        assert c.frames.index(r) < c.frames.index(added)
    steps = [
        (
            ("Action", "QueuePause"),
            ("ActionID", "ami-011"),
            ("Queue", "sales"),
            ("Interface", "PJSIP/agent2"),
            ("Paused", "true"),
            ("Reason", "lunch"),
        ),
        (
            ("Action", "QueuePause"),
            ("ActionID", "ami-012"),
            ("Interface", "PJSIP/agent2"),
            ("Paused", "false"),
        ),
        (
            ("Action", "QueuePause"),
            ("ActionID", "ami-013"),
            ("Queue", "sales"),
            ("Interface", "PJSIP/agent9"),
            ("Paused", "true"),
        ),
        (
            ("Action", "QueueAdd"),
            ("ActionID", "ami-014"),
            ("Queue", "sales"),
            ("Interface", "PJSIP/agent3"),
            ("MemberName", "agent3"),
            ("StateInterface", "PJSIP/agent3"),
            ("Penalty", "2"),
            ("Paused", "true"),
            ("Reason", "login-paused"),
        ),
        (
            ("Action", "QueueAdd"),
            ("ActionID", "ami-015"),
            ("Queue", "sales"),
            ("Interface", "PJSIP/agent3"),
            ("MemberName", "agent3"),
        ),
        (
            ("Action", "QueueAdd"),
            ("ActionID", "ami-016"),
            ("Queue", "nosuchqueue"),
            ("Interface", "PJSIP/agent3"),
        ),
        (
            ("Action", "QueuePenalty"),
            ("ActionID", "ami-017"),
            ("Queue", "sales"),
            ("Interface", "PJSIP/agent3"),
            ("Penalty", "5"),
        ),
        (
            ("Action", "QueueRemove"),
            ("ActionID", "ami-018"),
            ("Queue", "sales"),
            ("Interface", "PJSIP/agent3"),
        ),
        (
            ("Action", "QueueRemove"),
            ("ActionID", "ami-019"),
            ("Queue", "sales"),
            ("Interface", "PJSIP/agent3"),
        ),
        (("Action", "Setvar"), ("ActionID", "ami-026"), ("Variable", "CTI_GLOBAL"), ("Value", "g1")),
        (("Action", "Getvar"), ("ActionID", "ami-027"), ("Variable", "CTI_GLOBAL")),
        (
            ("Action", "Getvar"),
            ("ActionID", "ami-025"),
            ("Channel", "PJSIP/nosuch-00000099"),
            ("Variable", "X"),
        ),
    ]
    for step in steps:
        aid = dict(step)["ActionID"]
        assert await c.action(*step) == cap[aid], aid
    await c.drain_for()
    pause = next(f for f in c.frames if d(f).get("Event") == "QueueMemberPause")
    want = next(f for f in capture_frames("07-actions") if d(f).get("Event") == "QueueMemberPause")
    assert keys(pause) == keys(want) and d(pause)["PausedReason"] == "lunch"
    added3 = next(
        f for f in c.frames if d(f).get("Event") == "QueueMemberAdded" and d(f)["MemberName"] == "agent3"
    )
    assert (d(added3)["Status"], d(added3)["Paused"], d(added3)["PausedReason"]) == ("5", "1", "login-paused")


async def test_list_replies_shapes(sim: Simulator) -> None:
    cap = capture_frames("07-actions")
    c = await RawAmi.connect(sim.ami_port)
    await c.login()
    for agent in ("agent1", "agent2"):
        await c.action(
            ("Action", "QueueAdd"),
            ("ActionID", "a" + agent),
            ("Queue", "sales"),
            ("Interface", f"PJSIP/{agent}"),
            ("MemberName", agent),
            ("StateInterface", f"PJSIP/{agent}"),
        )
    sim.set_answer("agent1", "manual")
    sim.set_answer("agent2", "manual")
    sim.place_call(caller="13812345678", did="4008001234", name="张三", behaviour={"patience": 100})
    await sim.advance(3)  # AGI unreachable -> FAILURE -> queue; the caller waits while agent1 rings
    r = await c.action(("Action", "QueueStatus"), ("ActionID", "ami-004"))
    assert r == [
        ("Response", "Success"),
        ("ActionID", "ami-004"),
        ("EventList", "start"),
        ("Message", "Queue status will follow"),
    ]
    done = await c.wait(lambda f: d(f).get("Event") == "QueueStatusComplete")
    items = c.frames[c.frames.index(r) + 1 : c.frames.index(done)]
    names = [d(f)["Event"] for f in items]
    assert names == ["QueueParams", "QueueMember", "QueueMember", "QueueEntry"]
    for f in items:
        want = next(x for x in cap if d(x).get("Event") == d(f)["Event"])
        assert keys(f) == keys(want), d(f)["Event"]  # no Privilege/Timestamp, ActionID last
    assert done == [
        ("Event", "QueueStatusComplete"),
        ("ActionID", "ami-004"),
        ("EventList", "Complete"),
        ("ListItems", "4"),
    ]
    assert d(items[1])["Status"] == "6" and d(items[3])["CallerIDName"] == "张三"
    # Member filter still returns QueueParams
    await c.action(
        ("Action", "QueueStatus"), ("ActionID", "m"), ("Queue", "sales"), ("Member", "PJSIP/agent2")
    )
    done = await c.wait(lambda f: d(f).get("Event") == "QueueStatusComplete" and d(f)["ActionID"] == "m")
    assert d(done)["ListItems"] == "2"
    assert sim.answer("agent1")
    await sim.advance(1)
    r = await c.action(("Action", "CoreShowChannels"), ("ActionID", "ami-006"))
    assert d(r)["Message"] == "Channels will follow"
    done = await c.wait(lambda f: d(f).get("Event") == "CoreShowChannelsComplete")
    items = c.frames[c.frames.index(r) + 1 : c.frames.index(done)]
    want = next(x for x in cap if d(x).get("Event") == "CoreShowChannel")
    assert [keys(f) for f in items] == [keys(want)] * 2 and d(done)["ListItems"] == "2"
    assert {d(f)["Channel"] for f in items} == {"PJSIP/trunk-00000000", "PJSIP/agent1-00000001"}
    assert all(len(d(f)["Duration"]) == 8 for f in items)
    r = await c.action(("Action", "QueueSummary"), ("ActionID", "ami-009"))
    summ = await c.wait(lambda f: d(f).get("Event") == "QueueSummary")
    assert keys(summ) == keys(next(x for x in cap if d(x).get("Event") == "QueueSummary"))
    assert (d(summ)["LoggedIn"], d(summ)["Available"], d(summ)["Callers"]) == ("2", "1", "0")
    # Setvar / Getvar with UTF-8 on a live channel
    await c.action(
        ("Action", "Setvar"),
        ("ActionID", "s"),
        ("Channel", "PJSIP/trunk-00000000"),
        ("Variable", "CTI_NOTE"),
        ("Value", "hello 你好"),
    )
    r = await c.action(
        ("Action", "Getvar"), ("ActionID", "g"), ("Channel", "PJSIP/trunk-00000000"), ("Variable", "CTI_NOTE")
    )
    assert r == [
        ("Response", "Success"),
        ("ActionID", "g"),
        ("Variable", "CTI_NOTE"),
        ("Value", "hello 你好"),
    ]


async def test_utf8_split_across_reads_and_read_classes(sim: Simulator) -> None:
    full = await RawAmi.connect(sim.ami_port)
    await full.login()
    filt = await RawAmi.connect(sim.ami_port)
    await filt.login("ctifilter", "ctifilter")
    # a Setvar whose UTF-8 value is split in the middle of a character, one byte per write
    frame = "Action: Setvar\r\nActionID: u1\r\nVariable: 名字\r\nValue: 张三\r\n\r\n".encode()
    for i in range(len(frame)):
        full.writer.write(frame[i : i + 1])
        await full.writer.drain()
    r = await full.wait(lambda f: d(f).get("ActionID") == "u1")
    assert d(r)["Message"] == "Variable Set"
    r = await full.action(("Action", "Getvar"), ("ActionID", "u2"), ("Variable", "名字"))
    assert d(r)["Value"] == "张三"
    sim.login("agent1")
    sim.set_answer("agent1", "never")
    sim.place_call(caller="13812345678", did="4008001234", name="张三", behaviour={"patience": 1})
    await sim.advance(5)
    await full.drain_for()
    await filt.drain_for()
    classes_full = {d(f)["Privilege"] for f in full.frames if "Privilege" in d(f)}
    classes_filt = {d(f)["Privilege"] for f in filt.frames if "Privilege" in d(f)}
    assert {"dialplan,all", "call,all", "agent,all", "system,all"} <= classes_full
    assert classes_filt <= {"call,all", "agent,all"} and "call,all" in classes_filt
    assert not any(d(f).get("Event") == "FullyBooted" for f in filt.frames)
    assert "张三" in full.raw.decode("utf-8")


async def test_originate_failure_reasons_as_06c(sim: Simulator) -> None:
    c = await RawAmi.connect(sim.ami_port)
    await c.login()
    cap = [
        f for f in capture_frames("06c-originate-failure-reasons") if d(f).get("Event") == "OriginateResponse"
    ]
    base = (
        ("Context", "callback"),
        ("Exten", "13812345678"),
        ("Priority", "1"),
        ("CallerID", "4008001234"),
        ("Timeout", "8000"),
    )
    r = await c.action(
        ("Action", "Originate"),
        ("ActionID", "ami-005"),
        ("Channel", "PJSIP/agent3"),
        *base,
        ("Async", "true"),
    )
    assert d(r)["Message"] == "Originate successfully queued"
    await sim.advance(0)
    got = await c.wait(lambda f: d(f).get("Event") == "OriginateResponse")
    want = next(f for f in cap if d(f)["ActionID"] == "ami-005")
    assert [(k, v) for k, v in got if k != "Timestamp"] == [(k, v) for k, v in want if k != "Timestamp"]
    r = await c.action(
        ("Action", "Originate"),
        ("ActionID", "ami-007"),
        ("Channel", "PJSIP/agent3"),
        *base,
        ("Async", "false"),
    )
    assert r == [("Response", "Error"), ("ActionID", "ami-007"), ("Message", "Originate failed")]
    # agent never answers -> Reason 3, Cause 19 on the agent channel
    sim.set_answer("agent1", "never")
    await c.action(
        ("Action", "Originate"), ("ActionID", "n1"), ("Channel", "PJSIP/agent1"), *base, ("Async", "true")
    )
    await sim.advance(9)
    got = d(await c.wait(lambda f: d(f).get("ActionID") == "n1" and d(f).get("Event") == "OriginateResponse"))
    assert (got["Response"], got["Reason"], got["Uniqueid"]) == ("Failure", "3", "<unknown>")
    hang = d(
        await c.wait(lambda f: d(f).get("Event") == "Hangup" and d(f)["Channel"].startswith("PJSIP/agent1"))
    )
    assert (hang["Cause"], hang["Cause-txt"]) == ("19", "User alerting, no answer")


@pytest.mark.parametrize(
    ("outcome", "reason_status"),
    [("answer", "ANSWER"), ("noanswer", "NOANSWER"), ("busy", "BUSY"), ("congestion", "CONGESTION")],
)
async def test_callback_originate_contract(sim: Simulator, outcome: str, reason_status: str) -> None:
    """COMMON.md: agent first, then callback-did dials the customer presenting CTI_DID."""
    c = await RawAmi.connect(sim.ami_port)
    await c.login()
    sim.set_answer("agent2", "auto", delay=2.0)
    sim.set_customer("13812345678", outcome, delay=3.0)
    await c.action(
        ("Action", "Originate"),
        ("ActionID", "cb1"),
        ("Channel", "PJSIP/agent2"),
        ("Context", "callback-did"),
        ("Exten", "13812345678"),
        ("Priority", "1"),
        ("CallerID", "4008001234"),
        ("Variable", "CTI_DID=4008001234,CTI_CALLBACK_ID=42"),
        ("Async", "true"),
        ("ChannelId", "cti-cb-42-1"),
    )
    await sim.advance(60)
    await c.drain_for()
    resp = d(await c.wait(lambda f: d(f).get("Event") == "OriginateResponse"))
    assert (resp["ActionID"], resp["Response"], resp["Reason"]) == ("cb1", "Success", "4")
    assert resp["Uniqueid"] == "cti-cb-42-1" and resp["Channel"].startswith("PJSIP/agent2-")
    dial = d(await c.wait(lambda f: d(f).get("Event") == "DialBegin"))
    assert dial["DestChannel"].startswith("PJSIP/pstn-") and dial["DialString"] == "13812345678@pstn"
    assert dial["CallerIDNum"] == "4008001234" and dial["DestConnectedLineNum"] == "4008001234"
    ends = [
        d(f)["DialStatus"]
        for f in c.frames
        if d(f).get("Event") == "DialEnd" and d(f).get("DestChannel", "").startswith("PJSIP/pstn-")
    ]
    assert ends[0] == reason_status
    assert sim.channels() == []  # everything hung up
    linked = {d(f)["Linkedid"] for f in c.frames if d(f).get("Event") == "Newchannel"}
    assert linked == {"cti-cb-42-1"}


async def test_user_eventfilters_like_ctifilter() -> None:
    from cti.sim.scenario import parse_scenario

    sc = parse_scenario(
        {
            "ami_users": {
                "cti": {"secret": "cti", "read": "all"},
                "ctifilter": {
                    "secret": "ctifilter",
                    "read": "call,agent",
                    "exclude_events": ["DeviceStateChange"],
                    "exclude_channel_prefixes": ["Local/"],
                },
            }
        }
    )
    sim = Simulator(sc)
    sim.add_agent("agent1", "Agent One")
    await sim.start()
    try:
        full, filt = await RawAmi.connect(sim.ami_port), await RawAmi.connect(sim.ami_port)
        await full.login()
        await filt.login("ctifilter", "ctifilter")
        sim.set_answer("agent1", "auto", delay=2.0)
        sim.set_customer("13812345678", "answer", delay=3.0, talk_time=5.0)
        await full.action(
            ("Action", "Originate"),
            ("ActionID", "o1"),
            ("Channel", "Local/agent1@agents"),
            ("Context", "callback"),
            ("Exten", "13812345678"),
            ("Priority", "1"),
            ("CallerID", "4008001234"),
            ("Async", "true"),
        )
        await sim.advance(30)
        await full.drain_for()
        await filt.drain_for()
        ev_full = {d(f).get("Event") for f in full.frames}
        ev_filt = [d(f) for f in filt.frames if "Event" in d(f)]
        assert {"OriginateResponse", "LocalBridge", "DeviceStateChange"} <= ev_full
        assert ev_filt and all(e["Event"] not in ("DeviceStateChange", "OriginateResponse") for e in ev_filt)
        assert not any(e.get("Channel", "").startswith("Local/") for e in ev_filt)
        assert any(e.get("Channel", "").startswith("PJSIP/agent1-") for e in ev_filt)
    finally:
        await sim.close()


def test_cli_runs_a_scenario_and_prints_the_summary(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json
    from pathlib import Path

    from click.testing import CliRunner

    from cti.cli import main

    root = Path(__file__).resolve().parents[2]
    res = CliRunner().invoke(
        main,
        [
            "sim",
            "--scenario",
            str(root / "scenarios/quiet_morning.toml"),
            "--speed",
            "max",
            "--ami-port",
            "0",
            "--agi-url",
            "agi://127.0.0.1:1",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output.strip().splitlines()[-1])
    # a PBX with no CTI attached: nobody logs the agents in, so every caller finds an empty queue
    # (capture 19: JOINEMPTY), as on a real Asterisk with persistentmembers = no
    assert summary["offered"] > 0 and summary["answered"] == 0
    assert set(summary) >= {"offered", "answered", "answered_within_two_rings", "abandoned"}
    bad = tmp_path / "bad.toml"
    bad.write_text("[arrivals]\nhourly = [1]\n")
    res = CliRunner().invoke(main, ["sim", "--scenario", str(bad), "--speed", "max"])
    assert res.exit_code != 0 and "arrivals.hourly" in res.output


async def test_events_userevent_hangup_redirect(sim: Simulator) -> None:
    c = await RawAmi.connect(sim.ami_port)
    await c.login()
    r = await c.action(("Action", "Events"), ("ActionID", "e1"), ("EventMask", "off"))
    assert r == [("Response", "Success"), ("ActionID", "e1"), ("Events", "Off")]
    r = await c.action(("Action", "Events"), ("ActionID", "e2"), ("EventMask", "on"))
    assert r == [("Response", "Success"), ("ActionID", "e2"), ("Events", "On")]
    r = await c.action(
        ("Action", "UserEvent"), ("ActionID", "u1"), ("UserEvent", "CtiPing"), ("Note", "你好")
    )
    assert r == [("Response", "Success"), ("ActionID", "u1")]
    ue = await c.wait(lambda f: d(f).get("Event") == "UserEvent")
    assert [k for k, _ in ue][:4] == ["Event", "Privilege", "Timestamp", "UserEvent"]
    assert d(ue)["Privilege"] == "user,all" and d(ue)["Note"] == "你好"
    # 09: a PJSIP channel with no usable Context/Exten fails synchronously
    r = await c.action(
        ("Action", "Originate"), ("ActionID", "x"), ("Channel", "PJSIP/agent1"), ("Async", "true")
    )
    assert d(r)["Message"] == "Extension does not exist."
    # Redirect a waiting caller to agent2, then the agent hangs up over AMI
    for a in ("agent1", "agent2"):
        sim.login(a)
    sim.set_answer("agent1", "never")
    sim.set_answer("agent2", "auto", delay=2.0)
    sim.place_call(caller="13812345678", did="4008001234", behaviour={"patience": 100, "talk_time": 60})
    await sim.advance(3)
    assert sim.queue_callers() == ["PJSIP/trunk-00000000"]
    r = await c.action(
        ("Action", "Redirect"),
        ("ActionID", "rd"),
        ("Channel", "PJSIP/trunk-00000000"),
        ("Context", "agents"),
        ("Exten", "agent2"),
        ("Priority", "1"),
    )
    assert d(r)["Message"] == "Redirect successful"
    await sim.advance(5)
    assert sim.queue_callers() == []
    up = [ch for ch in sim.channels() if ch["channel"].startswith("PJSIP/agent2-")]
    assert up and up[0]["bridge"]
    r = await c.action(("Action", "Hangup"), ("ActionID", "h"), ("Channel", up[0]["channel"]))
    assert r == [("Response", "Success"), ("ActionID", "h"), ("Message", "Channel Hungup")]
    await sim.advance(1)
    assert sim.channels() == []
    r = await c.action(("Action", "Hangup"), ("ActionID", "h2"), ("Channel", "PJSIP/trunk-00000000"))
    assert r == [("Response", "Error"), ("ActionID", "h2"), ("Message", "No such channel")]


async def test_00_system_replies(sim: Simulator) -> None:
    cap = {d(f).get("ActionID"): f for f in capture_frames("00-system") if f[0][0] == "Response"}
    c = await RawAmi.connect(sim.ami_port)
    await c.login()
    assert await c.action(("Action", "CoreSettings"), ("ActionID", "ami-002")) == cap["ami-002"]
    r = await c.action(("Action", "CoreStatus"), ("ActionID", "ami-003"))
    assert keys(r) == keys(cap["ami-003"]) and d(r)["CoreCurrentCalls"] == "0"


async def test_customer_first_originate_answered_then_agent(sim: Simulator) -> None:
    c = await RawAmi.connect(sim.ami_port)
    await c.login()
    sim.set_customer("13812345678", "answer", delay=2.0, talk_time=6.0)
    sim.set_answer("agent1", "auto", delay=1.0)
    await c.action(
        ("Action", "Originate"),
        ("ActionID", "cf"),
        ("Channel", "PJSIP/13812345678@pstn"),
        ("Context", "agents"),
        ("Exten", "agent1"),
        ("Priority", "1"),
        ("CallerID", "4008001234"),
        ("Timeout", "8000"),
        ("Async", "true"),
        ("ChannelId", "cti-cf-1"),
    )
    await sim.advance(5)
    resp = d(await c.wait(lambda f: d(f).get("Event") == "OriginateResponse"))
    assert (resp["Response"], resp["Reason"], resp["Uniqueid"]) == ("Success", "4", "cti-cf-1")
    assert {ch["channel"].split("-")[0] for ch in sim.channels()} == {"PJSIP/pstn", "PJSIP/agent1"}
    assert all(ch["bridge"] for ch in sim.channels())
    await sim.advance(10)
    assert sim.channels() == []

"""Live state from real Asterisk 22 event streams (captures), including shuffled cross-channel order."""

from __future__ import annotations

import random

import pytest

from cti.ami.codec import Decoder, Message
from cti.ami.events import event_ts
from cti.state.live import LiveState
from cti.state.reducer import from_snapshot
from tests.captures import ami_raw, capture_events, capture_names


def run(events: list[Message], live: LiveState | None = None) -> LiveState:
    live = live or LiveState()
    for m in events:
        live.apply(m, event_ts(m) or 0.0)
    return live


def at(events: list[Message], pred) -> int:
    return next(i for i, m in enumerate(events) if pred(m))


def test_01_answered_call_lifecycle() -> None:
    ev = capture_events("01")
    join = at(ev, lambda m: m.name == "QueueCallerJoin")
    live = run(ev[: join + 1])
    (c,) = live.callers_waiting("sales")
    assert c.position == 1 and c.caller_num == "13812345678"
    assert live.free_agents("sales") == ["agent1"]
    called = at(ev, lambda m: m.name == "QueueMemberStatus" and m["Status"] == "6")
    run(ev[join + 1 : called + 1], live)
    (st,) = live.agent_status("agent1")
    assert st.ringing and st.status == "ringing" and not st.free
    assert live.longest_wait("sales", now=event_ts(ev[join]) + 2.5) == pytest.approx(2.5, abs=0.01)
    connect = max(i for i, m in enumerate(ev) if m.name == "BridgeEnter")
    run(ev[called + 1 : connect + 1], live)
    assert live.callers_waiting("sales") == []
    (st,) = live.agent_status("agent1")
    assert st.in_call and not st.free and not st.ringing
    call = live.state.calls["1795430750.0"]
    assert call.answered_by == "agent1" and call.did == "4008001234" and len(call.channels) == 2
    assert len(live.state.bridges) == 1
    run(ev[connect + 1 :], live)
    assert live.summary() == {"channels": 0, "calls": 0, "bridges": 0, "queued": 0, "members": 1}
    assert live.free_agents("sales") == ["agent1"]


def test_02_ring_no_answer_auto_pause() -> None:
    live = run(capture_events("02"))
    (a1,) = live.agent_status("agent1")
    assert a1.paused and a1.paused_reason == "Auto-Pause" and not a1.free
    assert live.free_agents("sales") == ["agent2"]
    assert live.summary()["channels"] == 0


def test_03_two_abandons_positions() -> None:
    ev = capture_events("03")
    second_join = [i for i, m in enumerate(ev) if m.name == "QueueCallerJoin"][1]
    live = run(ev[: second_join + 1])
    assert [c.position for c in live.callers_waiting("sales")] == [1, 2]
    first_abandon = at(ev, lambda m: m.name == "QueueCallerAbandon")
    run(ev[second_join + 1 : first_abandon + 1], live)
    (left,) = live.callers_waiting("sales")
    assert left.caller_num == "13987654321" and left.position == 1  # moved up
    run(ev[first_abandon + 1 :], live)
    assert live.summary()["queued"] == 0 and live.summary()["channels"] == 0


def test_07_members_added_paused_removed() -> None:
    live = run(capture_events("07"))
    assert sorted(m.name for m in live.members("sales")) == ["agent1", "agent2"]  # agent3 removed
    assert live.agent_status("agent3") == []


def _shuffle_keep_channel_order(events: list[Message], rng: random.Random) -> list[Message]:
    """Interleave per-stream sequences randomly; only each channel's (or member's) order is kept."""
    streams: dict[str, list[Message]] = {}
    for m in events:
        key = m.first("Uniqueid") or m.first("MemberName") or m.first("BridgeUniqueid") or "misc"
        streams.setdefault(key, []).append(m)
    out: list[Message] = []
    heads = {k: 0 for k in streams}
    while heads:
        k = rng.choice(sorted(heads))
        out.append(streams[k][heads[k]])
        heads[k] += 1
        if heads[k] == len(streams[k]):
            del heads[k]
    return out


@pytest.mark.parametrize("name", ["01", "02", "03", "04", "05a"])
def test_final_state_does_not_depend_on_cross_channel_order(name: str) -> None:
    ev = capture_events(name)
    expected = run(ev)
    rng = random.Random(4)
    for _ in range(20):
        live = run(_shuffle_keep_channel_order(ev, rng))
        assert live.summary() == expected.summary()
        assert live.summary()["channels"] == 0
        for key, m in expected.state.members.items():
            got = live.state.members[key]
            assert (got.paused, got.paused_reason, got.in_call, got.ringing) == (
                m.paused,
                m.paused_reason,
                m.in_call,
                m.ringing,
            )


def test_snapshot_from_capture_07_lists() -> None:
    raw = ami_raw("07-actions")
    msgs = [m for m in Decoder().feed(raw)[1:] if isinstance(m, Message)]
    q1 = [m for m in msgs if m.get("ActionID") == "ami-004" and m.is_event]  # caller still waiting
    chans = [m for m in msgs if m.get("ActionID") == "ami-006" and m.name == "CoreShowChannel"]
    q2 = [m for m in msgs if m.get("ActionID") == "ami-007" and m.is_event]  # agent1 talking
    ts = 1795430948.4
    st = from_snapshot(q1, [], ts)
    live = LiveState(st)
    (c,) = live.callers_waiting("sales")
    assert c.uniqueid == "1795430943.0" and c.joined == ts
    assert live.agent_status("agent1")[0].ringing
    live = LiveState(from_snapshot(q2, chans, ts))
    assert live.summary() == {"channels": 2, "calls": 1, "bridges": 1, "queued": 0, "members": 2}
    assert live.agent_status("agent1")[0].in_call
    assert live.free_agents("sales") == ["agent2"]
    assert live.state.channels["1795430943.0"].created == pytest.approx(ts - 5)


def test_in_call_from_snapshot_without_channels_ends_with_agent_complete() -> None:
    member = {"Event": "QueueMember", "Queue": "sales", "Name": "agent1", "Location": "PJSIP/agent1",
              "Status": "2", "InCall": "1", "Paused": "0"}  # fmt: skip
    live = LiveState(from_snapshot([member], [], 100.0))
    assert live.agent_status("agent1")[0].in_call
    done = {"Event": "AgentComplete", "Queue": "sales", "MemberName": "agent1", "Interface": "PJSIP/agent1"}
    live.apply({**done, "Uniqueid": "5.0", "Reason": "caller"}, 101.0)
    live.apply({"Event": "QueueMemberStatus", "Queue": "sales", "MemberName": "agent1",
                "Interface": "PJSIP/agent1", "Status": "1", "Paused": "0", "InCall": "0"}, 101.1)  # fmt: skip
    assert live.free_agents("sales") == ["agent1"]


def test_late_agent_complete_of_an_older_call_keeps_the_current_one() -> None:
    live = run(capture_events("01")[: at(capture_events("01"), lambda m: m.name == "AgentConnect") + 1])
    done = {"Event": "AgentComplete", "Queue": "sales", "MemberName": "agent1", "Interface": "PJSIP/agent1"}
    live.apply({**done, "Uniqueid": "older.0", "Reason": "caller"}, 1795430755.0)
    assert live.agent_status("agent1")[0].in_call


@pytest.mark.parametrize("name", capture_names())
def test_every_capture_ends_with_nothing_left_over(name: str) -> None:
    live = run(capture_events(name))
    s = live.summary()
    assert (s["channels"], s["calls"], s["bridges"], s["queued"]) == (0, 0, 0, 0), s
    assert all(m.in_call is None and not m.ringing for m in live.state.members.values())


def test_12_preferred_dial_answered_names_the_agent_live() -> None:
    """Issue 10 item 6 / capture 12: no AgentConnect for a Dial outside the queue; DialEnd ANSWER of
    the caller's channel names who answered."""
    ev = capture_events("12-")
    answer = at(ev, lambda m: m.name == "DialEnd" and m["DialStatus"] == "ANSWER")
    live = run(ev[:answer])
    (call,) = live.state.calls.values()
    assert call.answered_by is None
    run(ev[answer : answer + 1], live)
    assert call.answered_by == "agent3" and call.answered_at == event_ts(ev[answer])

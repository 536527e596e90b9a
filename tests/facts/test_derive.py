"""Facts from the real Asterisk 22 captures 01-04 and 05b, checked against the times their READMEs list
(UTC, ms), i.e. right to the second and better."""

from __future__ import annotations

from datetime import datetime

import pytest

from cti.ami.codec import Message
from cti.ami.events import event_ts
from cti.facts.derive import Facts, derive
from cti.policy import load_policy
from tests.captures import capture_events, capture_names

RING = load_policy().ring


def stream(name: str) -> list[tuple[float, str, Message]]:
    return [(event_ts(m), m.name, m) for m in capture_events(name)]


def facts_of(name: str) -> Facts:
    return derive(stream(name), RING)


def t(hms: str) -> float:
    """README time on the capture day (2026-11-23) -> epoch."""
    return datetime.fromisoformat(f"2026-11-23T{hms}+00:00").timestamp()


MS = 0.0015  # README times are rounded to the millisecond


def test_01_answered_call() -> None:
    f = facts_of("01")
    (c,) = f.calls.values()
    assert c.linkedid == "1795430750.0" and c.did == "4008001234"
    assert c.caller_num == "13812345678" and c.caller_masked == "138****5678"
    assert c.queue == "sales" and c.answered_by == "agent1"
    assert c.started_at == pytest.approx(t("10:45:50.545"), abs=MS)
    assert c.offered_at == pytest.approx(t("10:45:51.054"), abs=MS)
    assert c.answered_at == pytest.approx(t("10:45:54.063"), abs=MS)
    assert c.time_to_answer_s == pytest.approx(54.063 - 50.545, abs=2 * MS)
    assert c.hold_s == pytest.approx(54.063 - 51.054, abs=2 * MS)
    assert c.talk_s == pytest.approx(62.155 - 54.063, abs=2 * MS)
    assert c.asterisk == {
        "connect_HoldTime": 3,
        "connect_RingTime": 3,
        "complete_HoldTime": 3,
        "complete_TalkTime": 8,
    }
    assert c.rings_to_answer == 1  # rang 3.0 s; China cadence 1 s on + 4 s off: first ring cycle
    assert c.hung_up_first == "caller" and not c.abandoned and not c.gap and c.outcome == "answered"
    assert c.left_queue_at == pytest.approx(t("10:45:54.063"), abs=MS)
    (r,) = f.rings
    assert (r.agent, r.outcome) == ("agent1", "answered")
    assert r.started_at == pytest.approx(t("10:45:51.056"), abs=MS)
    assert r.ended_at == pytest.approx(t("10:45:54.063"), abs=MS)
    (s,) = f.sessions
    assert (s.agent, s.queue, s.logout_at) == ("agent1", "sales", None)
    assert s.login_at == pytest.approx(t("10:45:49.433"), abs=MS)
    assert c.agents_logged_in == 1
    assert f.pauses == [] and f.ring_no_answer == []


def test_02_ring_no_answer_then_second_agent() -> None:
    f = facts_of("02")
    (c,) = f.calls.values()
    assert c.answered_by == "agent2"
    assert c.time_to_answer_s == pytest.approx(23.876 - 8.358, abs=2 * MS)
    assert c.hold_s == pytest.approx(23.876 - 8.863, abs=2 * MS)
    assert c.asterisk["connect_HoldTime"] == 15
    assert c.talk_s == pytest.approx(29.368 - 23.876, abs=2 * MS)
    a1, a2 = f.rings
    assert (a1.agent, a1.outcome, a2.agent, a2.outcome) == ("agent1", "no_answer", "agent2", "answered")
    assert a1.ended_at - a1.started_at == pytest.approx(10.0, abs=2 * MS)
    assert a2.started_at == pytest.approx(t("10:46:20.867"), abs=MS)
    assert c.rings_to_answer == 1
    (rna,) = f.ring_no_answer
    assert (rna.agent, rna.queue, rna.ring_ms, rna.linkedid) == ("agent1", "sales", 10000, c.linkedid)
    assert rna.at == pytest.approx(t("10:46:18.865"), abs=MS)
    (p,) = f.pauses
    assert (p.agent, p.reason, p.ended_at) == ("agent1", "Auto-Pause", None)
    assert p.started_at == pytest.approx(t("10:46:18.865"), abs=MS)
    assert {s.agent for s in f.sessions} == {"agent1", "agent2"}


def test_03_two_abandons() -> None:
    f = facts_of("03")
    a, b = sorted(f.calls.values(), key=lambda c: c.started_at)
    assert a.abandoned and b.abandoned and a.answered_by is None and b.answered_by is None
    assert a.outcome == b.outcome == "abandoned"
    assert a.abandon_wait_s == pytest.approx(1795430811.166669 - 1795430796.663025, abs=1e-6)
    assert round(a.abandon_wait_s) == a.asterisk["abandon_HoldTime"] == 15
    assert b.caller_num == "13987654321" and b.abandon_position == 1
    assert b.abandon_wait_s == pytest.approx(1795430816.170248 - 1795430798.666446, abs=1e-6)
    assert b.asterisk["abandon_HoldTime"] == 18
    assert a.agents_logged_in == b.agents_logged_in == 1  # R-MISSED: missed while an agent was logged in
    (rna,) = f.ring_no_answer
    assert rna.agent == "agent1" and rna.ring_ms == 10000
    assert any(r.agent == "agent1" and r.outcome == "no_answer" for r in f.rings)


def test_04_agent_hangs_up_first() -> None:
    f = facts_of("04")
    (c,) = f.calls.values()
    assert c.hung_up_first == "agent"
    assert c.answered_at == pytest.approx(t("10:47:05.858"), abs=MS)
    assert c.talk_s == pytest.approx(11.862 - 5.858, abs=2 * MS)
    assert c.ended_at == pytest.approx(t("10:47:11.863"), abs=MS)


def test_05b_recording_file_from_mixmonitor() -> None:
    (c,) = facts_of("05b").calls.values()
    assert c.recording_file == "/var/spool/asterisk/monitor/test-b.wav"


def test_07_pause_with_reason_and_duration_and_logout() -> None:
    f = facts_of("07")
    lunch = [p for p in f.pauses if p.reason == "lunch"]
    assert len(lunch) == 1 and lunch[0].agent == "agent2"
    assert lunch[0].duration_s == pytest.approx(1795430949.606193 - 1795430949.404713, abs=1e-6)
    a3 = [s for s in f.sessions if s.agent == "agent3"]
    assert len(a3) == 1 and a3[0].logout_at == pytest.approx(1795430950.813375)
    login_paused = [p for p in f.pauses if p.agent == "agent3"]
    assert login_paused[0].reason == "login-paused" and login_paused[0].ended_at == a3[0].logout_at


def test_derivation_is_deterministic() -> None:
    ev = stream("02") + stream("03")
    assert derive(ev, RING) == derive(list(ev), RING)


def test_queue_timeout_and_unqueued_outcomes() -> None:
    base = {"Channel": "PJSIP/trunk-00000000", "Uniqueid": "9.0", "Linkedid": "9.0"}
    ev = [
        (
            1.0,
            "Newchannel",
            {**base, "Event": "Newchannel", "CallerIDNum": "13812345678", "Exten": "4008001234"},
        ),
        (2.0, "QueueCallerJoin", {**base, "Event": "QueueCallerJoin", "Queue": "sales", "Position": "1"}),
        (62.0, "QueueCallerLeave", {**base, "Event": "QueueCallerLeave", "Queue": "sales", "Position": "1"}),
        (63.0, "Hangup", {**base, "Event": "Hangup"}),
        (
            70.0,
            "Newchannel",
            {"Event": "Newchannel", "Uniqueid": "9.1", "Linkedid": "9.1", "Exten": "4008001234"},
        ),
        (75.0, "Hangup", {"Event": "Hangup", "Uniqueid": "9.1", "Linkedid": "9.1"}),
    ]
    f = derive(ev, RING)
    assert f.calls["9.0"].outcome == "timeout" and f.calls["9.0"].left_queue_at == 62.0
    assert f.calls["9.1"].outcome == "unqueued" and f.calls["9.1"].ended_at == 75.0


def test_resync_gap_closes_what_asterisk_no_longer_has_and_counts_known_members() -> None:
    base = {"Uniqueid": "9.0", "Linkedid": "9.0"}
    member = {"Event": "QueueMember", "Queue": "sales", "Name": "agent7", "Location": "PJSIP/agent7",
              "LoginTime": "5", "Paused": "0"}  # fmt: skip
    ev = [
        (10.0, "Newchannel", {**base, "Event": "Newchannel", "CallerIDNum": "13812345678"}),
        (20.0, "resync", {"QueueStatus": [member], "CoreShowChannels": []}),
        (30.0, "Newchannel", {"Event": "Newchannel", "Uniqueid": "9.5", "Linkedid": "9.5"}),
        (31.0, "QueueCallerJoin", {"Event": "QueueCallerJoin", "Uniqueid": "9.5", "Linkedid": "9.5",
                                   "Queue": "sales"}),
    ]  # fmt: skip
    f = derive(ev, RING)
    lost = f.calls["9.0"]
    assert lost.gap and lost.ended_at == 20.0  # hung up while we were disconnected
    assert f.calls["9.5"].agents_logged_in == 1 and not f.calls["9.5"].gap
    assert f.sessions == []  # agent7's login row belongs to the window that saw it log in


def _shuffle_keep_channel_order(events: list, rng, window: float = 0.005) -> list:  # type: ignore[no-untyped-def]
    """Events on different channels that happened within `window` seconds of each other arrive in
    any order (what INDEX.md reports between runs); each channel's own order is kept."""
    streams: dict[str, list] = {}
    for e in events:
        m = e[2]
        key = m.first("Uniqueid") or m.first("MemberName") or m.first("BridgeUniqueid") or "misc"
        streams.setdefault(key, []).append(e)
    out, heads = [], {k: 0 for k in streams}
    while heads:
        first = min(streams[k][i][0] for k, i in heads.items())
        ready = sorted(k for k, i in heads.items() if streams[k][i][0] <= first + window)
        k = rng.choice(ready)
        out.append(streams[k][heads[k]])
        heads[k] += 1
        if heads[k] == len(streams[k]):
            del heads[k]
    return out


@pytest.mark.parametrize("name", ["01", "02", "03", "04", "05b"])
def test_facts_do_not_depend_on_cross_channel_order(name: str) -> None:
    import random

    ev = stream(name)
    expected = derive(ev, RING)
    rng = random.Random(11)
    orders = set()
    for _ in range(20):
        shuffled = _shuffle_keep_channel_order(ev, rng)
        orders.add(tuple(id(e) for e in shuffled))
        got = derive(shuffled, RING)
        assert got.calls == expected.calls
        key = lambda r: (r.linkedid, r.agent_uniqueid)  # noqa: E731
        assert sorted(got.rings, key=key) == sorted(expected.rings, key=key)
        assert got.pauses == expected.pauses and got.ring_no_answer == expected.ring_no_answer
    assert len(orders) > 10  # the shuffle really produced different arrival orders


@pytest.mark.parametrize("name", capture_names())
def test_every_capture_derives_closed_calls_and_rings(name: str) -> None:
    f = facts_of(name)
    assert all(c.ended_at is not None and c.ended_at >= c.started_at for c in f.calls.values())
    assert all(r.outcome is not None and r.ended_at >= r.started_at for r in f.rings)
    assert all(p.ended_at is None or p.duration_s >= 0 for p in f.pauses)


def test_callback_originate_takes_its_did_from_cti_did() -> None:
    (c,) = facts_of("06d").calls.values()
    assert c.linkedid.startswith("cti-cb-") and c.did == "4008001234" and c.outcome == "unqueued"


def test_12_order_owner_answering_a_preferred_dial_is_an_answered_call() -> None:
    """Issue 10 item 6 / capture 12: Dial(PJSIP/agent3) outside the queue, answered; no Agent* events."""
    f = derive(stream("12-"), RING)
    (c,) = f.calls.values()
    assert c.outcome == "answered" and c.answered_by == "agent3"
    assert c.caller_masked == "136****5678" and c.queue is None
    (r,) = f.rings
    assert (r.agent, r.queue, r.outcome, r.linkedid) == ("agent3", None, "answered", c.linkedid)
    assert c.answered_at == r.ended_at and c.rings_to_answer == RING.rings_at(r.ended_at - r.started_at)
    assert c.talk_s is not None and c.talk_s > 0 and c.hung_up_first in ("caller", "agent")
    assert f.ring_no_answer == []


def test_13_preferred_agent_not_answering_in_two_rings_is_a_ring_no_answer() -> None:
    """Capture 13: DialEnd NOANSWER after 10 s (no AgentRingNoAnswer), then the queue's agent2 answers."""
    f = derive(stream("13-"), RING)
    (c,) = f.calls.values()
    assert c.outcome == "answered" and c.answered_by == "agent2" and c.queue == "sales"
    rings = sorted(f.rings, key=lambda r: r.started_at)
    assert [(r.agent, r.queue, r.outcome) for r in rings] == [
        ("agent3", None, "no_answer"),
        ("agent2", "sales", "answered"),
    ]
    (rna,) = f.ring_no_answer
    assert (rna.agent, rna.queue, rna.linkedid) == ("agent3", "sales", c.linkedid)
    assert rna.ring_ms == pytest.approx(10000, abs=10)
    # the queue's own figures are the queue's: hold counts from QueueCallerJoin, after the Dial
    assert c.hold_s == pytest.approx(c.answered_at - c.offered_at)

"""The AMI client's bookkeeping without a socket (cti.ami.actions): replies matched to actions, list
collection, what a reconnect does to actions in flight, and the late-Ping verdict."""

from __future__ import annotations

import pytest

from cti.ami.actions import PendingActions, action_frame, backoff_delay, ping_verdict
from cti.ami.codec import Message


def m(**headers: str) -> Message:
    return Message(headers)


def test_a_reply_completes_its_action_and_nothing_else():
    acts = PendingActions()
    acts.add("cti-1", "Ping")
    acts.add("cti-2", "Ping")
    r = acts.receive(m(Response="Success", ActionID="cti-2", Ping="Pong", Timestamp="1795431000.1"))
    assert r.kind == "completed" and r.action_id == "cti-2" and r.reply is not None
    assert r.reply.ok and r.reply.action_id == "cti-2" and r.reply.response.first("Ping") == "Pong"
    assert "cti-1" in acts and "cti-2" not in acts


def test_a_list_action_collects_its_items_until_complete():
    acts = PendingActions()
    acts.add("q1", "QueueStatus")
    start = m(Response="Success", ActionID="q1", EventList="start", Message="Queue status will follow")
    assert acts.receive(start).kind == "consumed"
    params = m(Event="QueueParams", ActionID="q1", Queue="sales")
    member = m(Event="QueueMember", ActionID="q1", Queue="sales", Name="agent1")
    assert [acts.receive(x).kind for x in (params, member)] == ["consumed", "consumed"]
    # an event of the live stream in between is the subscribers', not the list's
    assert acts.receive(m(Event="Newchannel", Uniqueid="1.1")).kind == "event"
    done = acts.receive(m(Event="QueueStatusComplete", ActionID="q1", EventList="Complete", ListItems="2"))
    assert done.kind == "completed" and done.reply is not None
    assert [i.name for i in done.reply.items] == ["QueueParams", "QueueMember"]
    assert done.reply.complete is not None and done.reply.complete.first("ListItems") == "2"


def test_invalid_unknown_command_during_a_restart_is_an_answer_not_a_lost_connection():
    """Capture 17 / issue 10: right after an Asterisk restart, QueueStatus is answered with an Error
    (app_queue not loaded yet) and no list follows. That answers the action at once."""
    acts = PendingActions()
    acts.add("q2", "QueueStatus")
    r = acts.receive(
        m(
            Response="Error",
            ActionID="q2",
            Message="Invalid/unknown command: QueueStatus. "
            "Use Action: ListCommands to show available commands.",
        )
    )
    assert r.kind == "completed" and r.reply is not None and not r.reply.ok
    assert r.reply.items == [] and len(acts) == 0


def test_an_event_carrying_an_actions_id_is_still_an_event():
    acts = PendingActions()
    acts.add("o1", "Originate")
    # an Async Originate's OriginateResponse may even come before the reply (capture 06a)
    ev = m(Event="OriginateResponse", ActionID="o1", Response="Success", Uniqueid="cti-cb-1-1")
    assert acts.receive(ev).kind == "event"
    assert acts.receive(
        m(Response="Success", ActionID="o1", Message="Originate successfully queued")
    ).kind == ("completed")
    assert acts.receive(ev).kind == "event"


def test_a_reply_after_its_action_timed_out_is_ignored_not_delivered():
    acts = PendingActions()
    acts.add("p1", "Ping")
    acts.forget("p1")  # the caller gave up (ActionTimeout)
    assert acts.receive(m(Response="Success", ActionID="p1", Ping="Pong")).kind == "ignored"
    assert acts.receive(m(Response="Success")).kind == "ignored"  # no ActionID at all


def test_reconnect_fails_actions_in_flight_once_and_late_replies_touch_nothing():
    acts = PendingActions()
    acts.add("cti-7", "Originate")
    acts.add("cti-8", "QueueStatus")
    acts.receive(m(Response="Success", ActionID="cti-8", EventList="start"))
    # the connection drops: both are reported (outcome unknown), neither is kept to be re-sent
    assert sorted(acts.drop_all()) == [("cti-7", "Originate"), ("cti-8", "QueueStatus")]
    assert len(acts) == 0 and acts.drop_all() == []
    # on the new connection: the old connection's stragglers are nobody's, a new action works
    acts.add("cti-9", "Ping")
    assert acts.receive(m(Response="Success", ActionID="cti-7")).kind == "ignored"
    assert acts.receive(m(Event="QueueMember", ActionID="cti-8", Name="agent1")).kind == "event"
    assert acts.receive(m(Response="Success", ActionID="cti-9", Ping="Pong")).kind == "completed"


def test_the_frame_keeps_our_action_id_whatever_the_caller_passes():
    f = action_frame(
        "Originate",
        "cti-3",
        {"actionid": "theirs", "ACTION": "Logoff", "Channel": "PJSIP/agent1", "Variable": ["A=1", "B=2"]},
    )
    assert f == {
        "Action": "Originate",
        "ActionID": "cti-3",
        "Channel": "PJSIP/agent1",
        "Variable": ["A=1", "B=2"],
    }


@pytest.mark.parametrize(
    ("quiet_s", "held", "verdict"),
    [
        (0.5, False, "late"),  # the peer sent something a moment ago: the Pong is behind those bytes
        (4.9, False, "late"),
        (5.0, False, "dead"),  # silent for the whole timeout: a half-open link
        (60.0, False, "dead"),
        (60.0, True, "late"),  # our own subscribers hold the reader back: we are slow, not the peer
    ],
)
def test_a_late_ping_is_a_dead_peer_only_after_silence(quiet_s, held, verdict):
    assert ping_verdict(quiet_s=quiet_s, ping_timeout=5.0, subscribers_held=held) == verdict


def test_backoff_doubles_to_its_cap_and_is_never_zero():
    lows = [backoff_delay(n, initial=0.5, maximum=30.0, jitter=0.0) for n in range(10)]
    highs = [backoff_delay(n, initial=0.5, maximum=30.0, jitter=0.999) for n in range(10)]
    assert lows[:4] == [0.25, 0.5, 1.0, 2.0] and lows[-1] == 15.0
    assert all(0 < lo < hi <= 30.0 for lo, hi in zip(lows, highs, strict=True))
    assert backoff_delay(1000, initial=0.5, maximum=30.0, jitter=0.5) == 22.5

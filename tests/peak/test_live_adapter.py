"""Peak / dispatcher view of live state: snapshot counts, prediction, dispatcher callables."""

from __future__ import annotations

from datetime import UTC, datetime

from cti.peak.live_adapter import QueueView
from cti.policy import load_policy
from cti.state.live import LiveState
from cti.state.model import INUSE, NOT_INUSE, UNAVAILABLE, QueueCaller, QueueMember, State

POLICY = load_policy()
NOW = 1795430900.0


def live(free: int, busy: int, paused: int, callers: int) -> LiveState:
    st = State(last_ts=NOW)
    n = 0
    for kind, count in (("free", free), ("busy", busy), ("paused", paused)):
        for _ in range(count):
            n += 1
            m = QueueMember(queue="sales", interface=f"PJSIP/agent{n}", name=f"agent{n}", status=NOT_INUSE)
            if kind == "busy":
                m.status, m.in_call = INUSE, f"caller{n}"
            if kind == "paused":
                m.paused, m.paused_reason = True, "lunch"
            st.members[("sales", m.interface)] = m
    off = QueueMember(queue="sales", interface="PJSIP/agent99", name="agent99", status=UNAVAILABLE)
    st.members[("sales", off.interface)] = off
    for i in range(callers):
        c = QueueCaller(
            queue="sales", uniqueid=f"u{i}", channel=f"PJSIP/trunk-{i}", position=i + 1, joined=NOW - 5
        )
        st.callers[("sales", c.uniqueid)] = c
    return LiveState(st)


def test_snapshot_and_dispatcher_callables():
    v = QueueView(live(free=2, busy=3, paused=1, callers=0), POLICY)
    s = v.snapshot()
    assert (s.free_agents, s.busy_agents, s.callers_ahead) == (2, 3, 0)
    assert v.free_agent(frozenset()) == "agent1"
    assert v.free_agent(frozenset({"agent1"})) == "agent2"
    assert v.free_agent(frozenset({"agent1", "agent2"})) is None
    assert v.waiting_inbound() == 0


def test_observe_feeds_answer_and_talk_times_and_answered_count():
    v = QueueView(live(free=1, busy=1, paused=0, callers=0), POLICY)
    v.observe({"Event": "AgentConnect", "Queue": "sales", "RingTime": "12", "HoldTime": "3"})
    v.observe({"Event": "AgentConnect", "Queue": "other", "RingTime": "1"})
    v.observe({"Event": "AgentComplete", "Queue": "sales", "TalkTime": "95", "HoldTime": "3"})
    assert v.inbound_answered() == 1
    s = v.snapshot()
    assert s.recent_answer_s == (12.0,) and s.recent_handle_s == (95.0,)
    # agents recently took 12 s to answer: a free agent is not enough to promise two rings
    assert not v.predict().within_two_rings


def test_advisor_offers_only_in_peak_when_not_answerable():
    crowded = QueueView(live(free=0, busy=2, paused=0, callers=10), POLICY)
    quiet = QueueView(live(free=3, busy=0, paused=0, callers=0), POLICY)
    now = datetime.fromtimestamp(NOW, UTC)
    assert crowded.callback_advisor(lambda: True)(None, now) is True
    assert crowded.callback_advisor(lambda: False)(None, now) is False
    assert quiet.callback_advisor(lambda: True)(None, now) is False
    f = crowded.figures()
    assert f.waiting_callers == 10 and f.estimated_wait_s > POLICY.peak.enter_estimated_wait_s

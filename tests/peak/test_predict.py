from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cti.peak.machine import LiveFigures
from cti.peak.predict import QueueSnapshot, estimate_wait
from cti.policy import load_policy

RING = load_policy().ring
HANDLE = 180.0
LIMIT = RING.max_rings * RING.cycle_s


def predict(**kw):
    return estimate_wait(QueueSnapshot(**kw), RING, default_handle_s=HANDLE)


def test_free_agent_and_quick_answers_is_yes():
    p = predict(free_agents=3, busy_agents=10, callers_ahead=0, recent_answer_s=[2, 3, 4, 3])
    assert p.within_two_rings and p.reason == "free_agent" and p.estimated_wait_s == 4


def test_slow_answering_agents_mean_no_even_with_a_free_agent():
    # most recent answers came late in the second ring or after it
    p = predict(free_agents=3, busy_agents=10, callers_ahead=0, recent_answer_s=[4, 9, 10, 10, 11])
    assert not p.within_two_rings and p.estimated_wait_s >= LIMIT


def test_callers_ahead_use_up_the_free_agents():
    # 40 agents, 120 s calls: an agent frees up every 3 s on average
    p = predict(free_agents=2, busy_agents=38, callers_ahead=2, recent_answer_s=[3], recent_handle_s=[120])
    assert p.within_two_rings and p.reason == "wait_for_agent"
    assert p.estimated_wait_s == pytest.approx(1 * 120 / 40 + 3)
    p = predict(free_agents=2, busy_agents=38, callers_ahead=10, recent_answer_s=[3], recent_handle_s=[120])
    assert not p.within_two_rings
    assert p.estimated_wait_s == pytest.approx(9 * 120 / 40 + 3)


def test_no_agents_logged_in_is_infinite_wait():
    p = predict(free_agents=0, busy_agents=0, callers_ahead=5)
    assert not p.within_two_rings and math.isinf(p.estimated_wait_s) and p.reason == "no_agents"


def test_no_history_assumes_first_ring_unanswered():
    p = predict(free_agents=1, busy_agents=0, callers_ahead=0)
    assert p.estimated_wait_s == RING.cycle_s and p.within_two_rings


def test_negative_counts_rejected():
    with pytest.raises(ValueError, match="negative"):
        QueueSnapshot(free_agents=-1, busy_agents=0, callers_ahead=0)


snap_st = st.builds(
    QueueSnapshot,
    free_agents=st.integers(0, 50),
    busy_agents=st.integers(0, 50),
    callers_ahead=st.integers(0, 500),
    recent_answer_s=st.lists(st.floats(0, 30, allow_nan=False), max_size=20),
    recent_handle_s=st.lists(st.floats(1, 900, allow_nan=False), max_size=20),
)


@given(snap_st, st.integers(1, 50))
def test_more_callers_ahead_never_shortens_the_wait(snap, more):
    a = estimate_wait(snap, RING, default_handle_s=HANDLE)
    worse = QueueSnapshot(
        snap.free_agents,
        snap.busy_agents,
        snap.callers_ahead + more,
        snap.recent_answer_s,
        snap.recent_handle_s,
    )
    b = estimate_wait(worse, RING, default_handle_s=HANDLE)
    assert b.estimated_wait_s >= a.estimated_wait_s
    assert a.within_two_rings or not b.within_two_rings


@given(snap_st)
def test_yes_only_with_an_agent_for_us_or_a_short_wait(snap):
    p = estimate_wait(snap, RING, default_handle_s=HANDLE)
    if p.within_two_rings:
        assert p.estimated_wait_s < LIMIT
        assert snap.free_agents + snap.busy_agents > 0


def test_live_figures_for_the_peak_monitor():
    from cti.peak.predict import live_figures

    empty = QueueSnapshot(free_agents=0, busy_agents=0, callers_ahead=0)
    assert live_figures(empty, RING, default_handle_s=HANDLE) == LiveFigures(0, 0.0)
    snap = QueueSnapshot(
        free_agents=0, busy_agents=40, callers_ahead=9, recent_answer_s=[3], recent_handle_s=[120]
    )
    f = live_figures(snap, RING, default_handle_s=HANDLE)
    # the 9th caller waits for 9 agents to free up: 9 × 120 s / 40 + 3 s
    assert f.waiting_callers == 9 and f.estimated_wait_s == pytest.approx(9 * 120 / 40 + 3)

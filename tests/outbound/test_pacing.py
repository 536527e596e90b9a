"""Pacing decisions: inbound first, one dial per free agent, predictive dial-ahead and its brake."""

from __future__ import annotations

from cti.outbound.pacing import (
    AbandonWindow,
    Floor,
    Rates,
    RateTracker,
    Steer,
    inbound_gate,
    predictive_dials,
    progressive_dials,
    steer_overdial,
)

RATES = Rates(answer_rate=0.25, mean_answer_s=20, mean_handle_s=140)


def floor(**kw: object) -> Floor:
    base = {"free_agents": 5, "busy_agents": 25, "in_flight": 0, "inbound_waiting": 0, "in_peak": False}
    base.update(kw)
    return Floor(**base)  # type: ignore[arg-type]


def test_no_dial_while_inbound_callers_wait_or_in_peak_and_dialing_resumes_by_itself():
    for f in (floor(inbound_waiting=1), floor(in_peak=True)):
        assert inbound_gate(f) is not None
        assert progressive_dials(f) == 0
        assert predictive_dials(f, RATES, overdial=2.0) == 0
    assert inbound_gate(floor(inbound_waiting=1)) == "inbound callers waiting"
    assert inbound_gate(floor(in_peak=True)) == "peak mode"
    # the queue drained: the very next decision dials again
    assert progressive_dials(floor()) == 5
    assert predictive_dials(floor(), RATES, overdial=1.0) > 5


def test_progressive_is_one_dial_per_free_agent():
    assert progressive_dials(floor(free_agents=3)) == 3
    assert progressive_dials(floor(free_agents=3, in_flight=2)) == 1
    assert progressive_dials(floor(free_agents=0)) == 0


def test_predictive_dials_ahead_by_answer_rate_with_a_margin_and_counts_agents_about_to_finish():
    alone = predictive_dials(floor(busy_agents=0), RATES, overdial=1.0)
    assert 5 < alone < 20  # more than one per free agent, fewer than 5 / 0.25 (the margin)
    expected_answers = alone * RATES.answer_rate
    assert expected_answers < 5
    assert predictive_dials(floor(), RATES, overdial=1.0) > alone  # 25 x 20/140 agents about to finish
    assert predictive_dials(floor(), RATES, overdial=1.5) > predictive_dials(floor(), RATES, overdial=1.0)
    assert predictive_dials(floor(busy_agents=0, in_flight=alone), RATES, overdial=1.0) == 0
    assert predictive_dials(floor(free_agents=0, busy_agents=0), RATES, overdial=1.0) == 0


def test_each_abandon_brakes_at_once_and_connected_answers_earn_it_back_slowly():
    cfg = Steer(ceiling=0.03)
    assert steer_overdial(1.0, True, 0.0, 0, cfg) == 0.85  # the first abandon already counts
    up = steer_overdial(1.0, False, 0.0, 0, cfg)
    assert 1.0 < up < 1.003  # one connected answer earns a fraction of a percent
    # a burst of abandons takes the factor down within the burst, to the floor and not below
    x = 1.5
    for _ in range(5):
        x = steer_overdial(x, True, 0.0, 50, cfg)
    assert x < 0.7
    for _ in range(50):
        x = steer_overdial(x, True, 0.0, 50, cfg)
    assert x == cfg.lo
    # the rolling window near the ceiling (2.4 %+ of 20+ answers): connected answers earn nothing
    assert steer_overdial(1.0, False, 0.025, 200, cfg) == 1.0
    assert steer_overdial(1.0, False, 0.2, 5, cfg) > 1.0  # five answers say nothing yet


def test_the_factor_settles_where_abandons_run_at_half_the_ceiling():
    """Whatever bias the model has, the factor stops moving when abandons run at 1.5 % of answers:
    it falls on a 3 % stream, holds on 1.5 %, climbs on 0.5 %."""
    cfg = Steer(ceiling=0.03)

    def run(every: int) -> float:
        x = 1.0
        for k in range(1, 6001):
            x = steer_overdial(x, k % every == 0, 0.0, 0, cfg)
        return x

    assert run(33) < 0.5  # 3 %
    assert 0.8 < run(67) < 1.25  # 1.49 %: six thousand answers move it less than a quarter
    assert run(200) > 2.0  # 0.5 %


def test_abandon_window_is_rolling():
    w = AbandonWindow(window_s=3600)
    w.add(0, True)
    for t in range(1, 100):
        w.add(t, False)
    assert w.rate(100) == (0.01, 100)
    assert w.rate(3600) == (0.0, 99)  # the abandon at t=0 left the window


def _tracker() -> RateTracker:
    """Customers who answer within 4-20 s or not at all (busy at 3 s, no answer at 30 s)."""
    t = RateTracker()
    for k in range(200):
        t.dial_result(True, 4 + (k % 17))
        t.dial_result(False, 30.0)
        t.dial_result(False, 3.0)
    return t


def test_a_dial_ringing_past_the_usual_answer_time_counts_for_nothing_and_frees_a_dial():
    """A dial 25 s old is a no-answer in all but name: the pacer dials for the agent it would
    otherwise keep waiting for that answer."""
    t = _tracker()
    ring = t.ring_times()
    assert ring is not None
    p = ring.answer_rate
    assert abs(ring.answered_within(0.0, 30.0) - p) < 1e-9  # fresh: the plain answer rate, in time
    assert ring.answered_within(25.0, 30.0) == 0.0
    assert ring.answered_within(10.0, 30.0) > p  # the busy ones have ended by 10 s
    assert ring.answered_within(0.0, 6.0) < ring.answered_within(0.0, 12.0)  # answers come over time
    rates = Rates(p, t.mean_answer_s, 140.0)
    f = floor(in_flight=6)
    old = predictive_dials(f, rates, 1.0, ring=ring, ringing=[25.0] * 6)
    fresh = predictive_dials(f, rates, 1.0, ring=ring, ringing=[1.0] * 6)
    assert old > fresh
    assert predictive_dials(floor(in_flight=0), rates, 1.0, ring=ring) == old  # as if not there


def test_answers_already_on_their_way_must_fit_the_agents_free_when_they_come():
    """No agent will be free in the next ring period and ten dials ring in their answer window: no
    new dial. One agent free and nothing ringing: dial for that agent (and more, at p)."""
    t = _tracker()
    ring = t.ring_times()
    assert ring is not None
    rates = Rates(ring.answer_rate, t.mean_answer_s, 140.0)
    busy_only = floor(free_agents=0, busy_agents=0, in_flight=10)
    assert predictive_dials(busy_only, rates, 1.0, ring=ring, ringing=[5.0] * 10) == 0
    one = floor(free_agents=1, busy_agents=0, in_flight=10)
    assert predictive_dials(one, rates, 1.0, ring=ring, ringing=[5.0] * 10) == 0  # ~3 answers for 1
    assert predictive_dials(one, rates, 1.0, ring=ring, ringing=[25.0] * 10) >= 1  # no-answers
    assert predictive_dials(floor(free_agents=1, busy_agents=0), rates, 1.0, ring=ring) == 1  # margin


def test_ring_times_are_not_trusted_before_there_are_enough():
    t = RateTracker()
    t.dial_result(True, 5.0)
    t.dial_result(False, 30.0)
    assert t.ring_times() is None

"""Pacing decisions: inbound first, one dial per free agent, predictive dial-ahead and its brake."""

from __future__ import annotations

from cti.outbound.pacing import (
    AbandonWindow,
    Adapt,
    Floor,
    Rates,
    adapt_overdial,
    inbound_gate,
    predictive_dials,
    progressive_dials,
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


def test_overdial_backs_off_near_the_ceiling_and_creeps_up_when_far_below():
    cfg = Adapt(target=0.03)
    assert adapt_overdial(1.5, 0.025, 200, cfg) < 1.5
    assert adapt_overdial(1.5, 0.0, 200, cfg) > 1.5
    assert adapt_overdial(1.5, 0.0, 5, cfg) == 1.5  # too few answers to judge
    assert adapt_overdial(1.5, 0.2, 5, cfg) == 1.5  # one early abandon in five is not a trend
    # no abandon in 40 answers could still be a 3 % rate: only backing off is allowed on so little
    assert adapt_overdial(1.5, 0.0, 40, cfg) == 1.5
    assert adapt_overdial(1.5, 0.025, 40, cfg) < 1.5
    assert adapt_overdial(1.5, 0.015, 200, cfg) == 1.5  # between the two bands: hold
    x = 2.0
    for _ in range(100):
        x = adapt_overdial(x, 0.05, 200, cfg)
    assert x == cfg.lo


def test_abandon_window_is_rolling():
    w = AbandonWindow(window_s=3600)
    w.add(0, True)
    for t in range(1, 100):
        w.add(t, False)
    assert w.rate(100) == (0.01, 100)
    assert w.rate(3600) == (0.0, 99)  # the abandon at t=0 left the window

"""Peak mode state machine: switch overrides, schedule respected, hysteresis (no flapping)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from cti.peak.machine import IN_CAUSES, Airing, LiveFigures, PeakState, step
from cti.policy import load_policy

P = load_policy().peak
T0 = datetime(2026, 11, 23, 19, 0, tzinfo=UTC)
CALM = LiveFigures(waiting_callers=0, estimated_wait_s=0)
BUSY = LiveFigures(waiting_callers=P.enter_waiting_callers, estimated_wait_s=0)

figures_st = st.builds(
    LiveFigures,
    waiting_callers=st.integers(0, 3 * P.enter_waiting_callers),
    estimated_wait_s=st.floats(0, 3 * P.enter_estimated_wait_s, allow_nan=False),
)
# (seconds since previous observation, figures)
steps_st = st.lists(st.tuples(st.floats(0.5, 90, allow_nan=False), figures_st), min_size=1, max_size=80)
airing_st = st.builds(
    Airing,
    id=st.integers(1, 1000),
    channel=st.just("CCTV-1"),
    program=st.just("晚间剧场"),
    starts_at=st.integers(0, 3600).map(lambda s: T0 + timedelta(seconds=s)),
    duration_s=st.floats(15, 120, allow_nan=False),
    expected_calls=st.integers(0, 5000),
    tail_minutes=st.one_of(st.none(), st.floats(0, 40, allow_nan=False)),
)


def run(seq, switch="auto", airings=()):
    """Feed observations; yield (now, figures, state, transition) after each step."""
    state, now = PeakState.initial(T0), T0
    for dt, fig in seq:
        now += timedelta(seconds=dt)
        state, tr = step(state, now=now, switch=switch, airings=airings, figures=fig, policy=P)
        yield now, fig, state, tr


@settings(max_examples=150, deadline=None)
@given(steps_st, st.lists(airing_st, max_size=3))
def test_switch_overrides_everything(seq, airings):
    for _, _, state, _ in run(seq, "on", airings):
        assert state.in_peak and state.cause == "switch_on"
    for _, _, state, _ in run(seq, "off", airings):
        assert not state.in_peak and state.cause in ("switch_off", "initial")


@settings(max_examples=150, deadline=None)
@given(steps_st, st.lists(airing_st, max_size=3))
def test_schedule_window_is_always_peak(seq, airings):
    for now, _, state, _ in run(seq, "auto", airings):
        if any(a.covers(now, P.tail_minutes) for a in airings):
            assert state.in_peak and state.cause == "schedule"
            assert state.airing_id in {a.id for a in airings if a.covers(now, P.tail_minutes)}


@settings(max_examples=200, deadline=None)
@given(steps_st)
def test_no_flapping_in_auto(seq):
    history: list[tuple[datetime, LiveFigures]] = []
    entered_at: datetime | None = None
    for now, fig, _state, tr in run(seq):
        history.append((now, fig))
        if tr is None:
            continue
        if tr.after.in_peak and not tr.before.in_peak:
            # entry needs an enter threshold crossed right now
            assert (
                fig.waiting_callers >= P.enter_waiting_callers
                or fig.estimated_wait_s >= P.enter_estimated_wait_s
            )
            entered_at = now
        elif tr.before.in_peak and not tr.after.in_peak:
            assert tr.after.cause == "queue_drained"
            # exit only after a run of calm observations spanning exit_hold_s
            assert entered_at is not None and (now - entered_at).total_seconds() >= P.exit_hold_s
            window = [f for t, f in history if (now - t).total_seconds() <= P.exit_hold_s]
            assert all(f.waiting_callers < P.exit_waiting_callers for f in window)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0.5, 600, allow_nan=False),
            st.builds(
                LiveFigures,
                waiting_callers=st.integers(P.exit_waiting_callers, P.enter_waiting_callers - 1),
                estimated_wait_s=st.floats(0, P.enter_estimated_wait_s - 0.1, allow_nan=False),
            ),
        ),
        min_size=1,
        max_size=60,
    ),
    st.booleans(),
)
def test_between_thresholds_nothing_changes(seq, start_in_peak):
    """In the hysteresis band, whichever side we are on we stay there, however long it lasts."""
    state = PeakState(
        in_peak=start_in_peak, cause="auto_waiting_callers" if start_in_peak else "initial", since=T0
    )
    now = T0
    for dt, fig in seq:
        now += timedelta(seconds=dt)
        state, tr = step(state, now=now, switch="auto", airings=(), figures=fig, policy=P)
        assert tr is None
        assert state.in_peak == start_in_peak


def test_auto_enter_hold_and_drain_with_causes():
    s = PeakState.initial(T0)
    s, tr = step(s, now=T0, switch="auto", airings=(), figures=BUSY, policy=P)
    assert tr and tr.after.in_peak and tr.payload()["cause"] == "auto_waiting_callers"
    # calm, but not yet for exit_hold_s
    t = T0 + timedelta(seconds=10)
    s, tr = step(s, now=t, switch="auto", airings=(), figures=CALM, policy=P)
    assert tr is None and s.in_peak
    # a single caller bump resets the hold (still below enter thresholds: no event)
    bump = LiveFigures(waiting_callers=P.exit_waiting_callers, estimated_wait_s=0)
    t += timedelta(seconds=P.exit_hold_s - 1)
    s, tr = step(s, now=t, switch="auto", airings=(), figures=bump, policy=P)
    assert tr is None and s.in_peak and s.calm_since is None
    t += timedelta(seconds=1)
    s, _ = step(s, now=t, switch="auto", airings=(), figures=CALM, policy=P)
    t += timedelta(seconds=P.exit_hold_s - 1)
    s, tr = step(s, now=t, switch="auto", airings=(), figures=CALM, policy=P)
    assert tr is None and s.in_peak
    t += timedelta(seconds=1)
    s, tr = step(s, now=t, switch="auto", airings=(), figures=CALM, policy=P)
    assert tr and not s.in_peak and tr.payload()["cause"] == "queue_drained"
    assert tr.payload()["previous_cause"] == "auto_waiting_callers"


def test_estimated_wait_alone_enters():
    fig = LiveFigures(waiting_callers=1, estimated_wait_s=P.enter_estimated_wait_s)
    s, tr = step(PeakState.initial(T0), now=T0, switch="auto", airings=(), figures=fig, policy=P)
    assert tr and s.in_peak and s.cause == "auto_estimated_wait"


def test_schedule_end_plus_tail():
    a = Airing(7, "CCTV-1", "晚间剧场", T0, 60, 3000, tail_minutes=None)
    end = T0 + timedelta(seconds=60, minutes=P.tail_minutes)
    s = PeakState.initial(T0)
    s, tr = step(s, now=T0 - timedelta(seconds=1), switch="auto", airings=[a], figures=CALM, policy=P)
    assert not s.in_peak
    s, tr = step(s, now=T0, switch="auto", airings=[a], figures=CALM, policy=P)
    assert tr and s.in_peak and s.cause == "schedule" and tr.payload()["airing_id"] == 7
    s, tr = step(s, now=end - timedelta(seconds=1), switch="auto", airings=[a], figures=CALM, policy=P)
    assert s.in_peak and tr is None
    s, tr = step(s, now=end, switch="auto", airings=[a], figures=CALM, policy=P)
    assert tr and not s.in_peak and s.cause == "schedule_end"


def test_schedule_end_with_busy_queue_keeps_peak_until_drained():
    a = Airing(1, "CCTV-1", "p", T0, 30, 100, tail_minutes=0)
    s, _ = step(PeakState.initial(T0), now=T0, switch="auto", airings=[a], figures=BUSY, policy=P)
    t = T0 + timedelta(seconds=30)
    s, tr = step(s, now=t, switch="auto", airings=[a], figures=BUSY, policy=P)
    assert tr and s.in_peak and s.cause == "auto_waiting_callers" and s.since == T0
    t += timedelta(seconds=1)
    s, _ = step(s, now=t, switch="auto", airings=[a], figures=CALM, policy=P)
    s, tr = step(
        s, now=t + timedelta(seconds=P.exit_hold_s), switch="auto", airings=[a], figures=CALM, policy=P
    )
    assert tr and not s.in_peak and s.cause == "queue_drained"


def test_switch_back_to_auto_while_calm_drains_after_hold():
    s, _ = step(PeakState.initial(T0), now=T0, switch="on", airings=(), figures=CALM, policy=P)
    assert s.in_peak
    t = T0 + timedelta(seconds=5)
    s, tr = step(s, now=t, switch="auto", airings=(), figures=CALM, policy=P)
    assert s.in_peak  # no abrupt exit on handing back
    s, tr = step(
        s, now=t + timedelta(seconds=P.exit_hold_s), switch="auto", airings=(), figures=CALM, policy=P
    )
    assert tr and not s.in_peak and s.cause == "queue_drained"


def test_every_transition_has_a_cause_consistent_with_state():
    a = Airing(1, "CCTV-1", "p", T0 + timedelta(minutes=5), 60, 100, tail_minutes=1)
    seq = [(30.0, BUSY), (300.0, CALM), (30.0, CALM), (200.0, CALM), (30.0, BUSY)]
    for _, _, state, tr in run(seq, "auto", [a]):
        assert (state.cause in IN_CAUSES) == state.in_peak
        if tr:
            assert tr.payload()["in_peak"] == state.in_peak


def test_bad_switch_is_rejected():
    import pytest

    with pytest.raises(ValueError, match="peak switch"):
        step(PeakState.initial(T0), now=T0, switch="maybe", airings=(), figures=CALM, policy=P)  # type: ignore[arg-type]


# Issue 10 item 3: callers one at a time (0 or 1 waiting, whatever wait the predictor estimates) must
# not make auto peak flap. On a real PBX the old machine made 30 transitions in 17 minutes.
@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0.5, 30, allow_nan=False),
            st.builds(
                LiveFigures,
                waiting_callers=st.integers(0, 1),
                estimated_wait_s=st.floats(0, 3 * P.enter_estimated_wait_s, allow_nan=False),
            ),
        ),
        min_size=1,
        max_size=120,
    ),
    st.integers(0, 600),
)
def test_one_caller_at_a_time_never_flaps(seq, calm_before_s):
    """Every stay in auto peak lasts at least exit_hold_s, and it is left only after exit_hold_s of a
    queue that would not enter peak -- also when the queue was calm for a long time before entry."""
    state = PeakState.initial(T0)
    now = T0
    # a long calm before the first caller: the hold must not be spent already on entry
    state, _ = step(state, now=now, switch="auto", airings=(), figures=CALM, policy=P)
    now += timedelta(seconds=calm_before_s)
    entered_at = None
    calm_from = None
    for dt, fig in seq:
        now += timedelta(seconds=dt)
        calm = (
            fig.waiting_callers < P.exit_waiting_callers and fig.estimated_wait_s < P.enter_estimated_wait_s
        )
        calm_from = (calm_from or now) if calm else None
        state, tr = step(state, now=now, switch="auto", airings=(), figures=fig, policy=P)
        if tr is None:
            continue
        if tr.after.in_peak:
            entered_at = now
        else:
            assert entered_at is not None
            assert (now - entered_at).total_seconds() >= P.exit_hold_s
            assert calm_from is not None
            assert (now - max(calm_from, entered_at)).total_seconds() >= P.exit_hold_s

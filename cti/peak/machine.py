"""Peak mode as a pure state machine: (state, inputs, now) -> (state, transition or None).

Inputs are the media schedule, the supervisor switch and two live figures; nothing here reads a
clock or a database, so the same code runs in the CTI server, the simulator and property tests.

Rules (SPEC R-PEAK, policy [peak]):
- switch `on` / `off` overrides everything else;
- switch `auto`: an airing's window (start .. start + duration + tail) puts the center in peak;
  outside it, waiting callers >= `enter_waiting_callers` or estimated wait >= `enter_estimated_wait_s`
  enter peak; peak is left only when the queue has been calm -- waiting callers below
  `exit_waiting_callers` AND the estimated wait below `enter_estimated_wait_s` -- for `exit_hold_s`
  counted from the later of entering peak and the start of the calm (hysteresis, so it does not flap:
  issue 10 item 3 saw 30 transitions in 17 minutes when one waiting caller with a long estimated wait
  counted as calm and the calm run from before the entry was already older than exit_hold_s);
- when an airing window ends while the queue is still busy, peak continues (cause changes to the
  queue figure) rather than leaving and re-entering a moment later.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from cti.policy import PeakPolicy

SwitchMode = Literal["on", "off", "auto"]
SWITCH_MODES: tuple[SwitchMode, ...] = ("on", "off", "auto")

# Why the center is (or is not) in peak. The first group are "in peak" causes.
Cause = Literal[
    "switch_on",
    "schedule",
    "auto_waiting_callers",
    "auto_estimated_wait",
    "switch_off",
    "schedule_end",
    "queue_drained",
    "initial",
]
IN_CAUSES: frozenset[str] = frozenset(
    {"switch_on", "schedule", "auto_waiting_callers", "auto_estimated_wait"}
)


@dataclass(frozen=True)
class Airing:
    """One ad airing from the media schedule."""

    id: int
    channel: str  # TV channel, e.g. CCTV-1
    program: str
    starts_at: datetime
    duration_s: float
    expected_calls: int  # expected response (calls), for planning and the dashboard
    tail_minutes: float | None = None  # None: policy.peak.tail_minutes

    def ends_at(self, default_tail_minutes: float) -> datetime:
        """End of the peak window this airing causes: end of the spot plus the tail."""
        tail = self.tail_minutes if self.tail_minutes is not None else default_tail_minutes
        return self.starts_at + timedelta(seconds=self.duration_s) + timedelta(minutes=tail)

    def covers(self, now: datetime, default_tail_minutes: float) -> bool:
        return self.starts_at <= now < self.ends_at(default_tail_minutes)


@dataclass(frozen=True)
class LiveFigures:
    waiting_callers: int
    estimated_wait_s: float


@dataclass(frozen=True)
class PeakState:
    in_peak: bool
    cause: Cause
    since: datetime
    airing_id: int | None = None
    calm_since: datetime | None = None  # first moment of the current run below exit_waiting_callers

    @staticmethod
    def initial(now: datetime) -> PeakState:
        return PeakState(in_peak=False, cause="initial", since=now)


@dataclass(frozen=True)
class Transition:
    """A change of peak mode or of its cause; becomes one `peak_mode` event."""

    at: datetime
    before: PeakState
    after: PeakState
    switch: SwitchMode
    figures: LiveFigures

    def payload(self) -> dict[str, Any]:
        return {
            "in_peak": self.after.in_peak,
            "cause": self.after.cause,
            "previous_cause": self.before.cause,
            "was_in_peak": self.before.in_peak,
            "airing_id": self.after.airing_id,
            "switch": self.switch,
            "waiting_callers": self.figures.waiting_callers,
            "estimated_wait_s": round(self.figures.estimated_wait_s, 1),
        }


def active_airing(airings: Iterable[Airing], now: datetime, default_tail_minutes: float) -> Airing | None:
    """The airing whose window covers `now`; of several, the one that started first."""
    covering = [a for a in airings if a.covers(now, default_tail_minutes)]
    return min(covering, key=lambda a: (a.starts_at, a.id)) if covering else None


def _crossed_enter(f: LiveFigures, p: PeakPolicy) -> Cause | None:
    if f.waiting_callers >= p.enter_waiting_callers:
        return "auto_waiting_callers"
    if f.estimated_wait_s >= p.enter_estimated_wait_s:
        return "auto_estimated_wait"
    return None


def _calm(f: LiveFigures, p: PeakPolicy) -> bool:
    """Calm enough to count towards leaving: few callers AND no figure that would enter peak (one
    caller with a long estimated wait is not calm, or peak would be left and re-entered each step)."""
    return f.waiting_callers < p.exit_waiting_callers and _crossed_enter(f, p) is None


def step(
    state: PeakState,
    *,
    now: datetime,
    switch: SwitchMode,
    airings: Iterable[Airing],
    figures: LiveFigures,
    policy: PeakPolicy,
) -> tuple[PeakState, Transition | None]:
    """Advance the machine to `now`. Returns the new state and the transition, if any."""
    if switch not in SWITCH_MODES:
        raise ValueError(f"peak switch must be one of {', '.join(SWITCH_MODES)}, got {switch!r}")
    calm = _calm(figures, policy)
    calm_since = (state.calm_since or now) if calm else None

    new: PeakState
    if switch == "on":
        new = _go(state, now, True, "switch_on", None, calm_since)
    elif switch == "off":
        new = _go(state, now, False, "switch_off", None, calm_since)
    else:
        airing = active_airing(airings, now, policy.tail_minutes)
        busy_cause = _crossed_enter(figures, policy)
        if airing is not None:
            new = _go(state, now, True, "schedule", airing.id, calm_since)
        elif not state.in_peak:
            new = (
                _go(state, now, True, busy_cause, None, calm_since)
                if busy_cause
                else replace(state, calm_since=calm_since)
            )
        elif state.cause == "schedule":
            # The airing window just ended: leave if the queue is calm, otherwise carry on under the
            # queue figures (leaving now would re-enter on the next step: a flap).
            if calm:
                new = _go(state, now, False, "schedule_end", None, calm_since)
            else:
                new = _go(state, now, True, busy_cause or "auto_waiting_callers", None, calm_since)
        elif calm_since is not None and (now - calm_since).total_seconds() >= policy.exit_hold_s:
            new = _go(state, now, False, "queue_drained", None, calm_since)
        elif state.cause == "switch_on":
            # Supervisor handed back to auto while in peak: stay until the queue drains.
            new = _go(state, now, True, busy_cause or "auto_waiting_callers", None, calm_since)
        else:
            new = replace(state, calm_since=calm_since)

    if (new.in_peak, new.cause, new.airing_id) == (state.in_peak, state.cause, state.airing_id):
        return new, None
    return new, Transition(at=now, before=state, after=new, switch=switch, figures=figures)


def _go(
    state: PeakState,
    now: datetime,
    in_peak: bool,
    cause: Cause,
    airing_id: int | None,
    calm_since: datetime | None,
) -> PeakState:
    if state.in_peak == in_peak and state.cause == cause and state.airing_id == airing_id:
        return replace(state, calm_since=calm_since)
    # `since` marks when the center entered/left peak; a change of cause alone keeps it.
    since = state.since if state.in_peak == in_peak and state.cause != "initial" else now
    if in_peak and not state.in_peak and calm_since is not None:
        calm_since = now  # the hold is counted inside peak: a calm run from before entry does not count
    return PeakState(in_peak=in_peak, cause=cause, since=since, airing_id=airing_id, calm_since=calm_since)

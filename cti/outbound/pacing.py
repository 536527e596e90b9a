"""R-PACE as pure decisions with injected time: how many dials to start now.

- preview: none by itself; the agent sees the masked record and dials.
- progressive: one dial per free agent (the agent is claimed with the dial).
- predictive: dial ahead of free agents using the live answer rate and handle time, with an
  over-dial factor that adapts so the abandon rate (answered, no agent within 2 s) over the rolling
  window stays under the ceiling (3 %).
- inbound first (seed 001 §43): no dial at all while inbound callers wait or peak mode is on; the
  next decision after they clear dials again (nothing to resume by hand)."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Floor:
    """What the dialer sees at one instant."""

    free_agents: int
    busy_agents: int
    in_flight: int  # dials sent, customer not yet answered or failed
    inbound_waiting: int
    in_peak: bool


def inbound_gate(floor: Floor) -> str | None:
    """Why no outbound dial may start now, or None."""
    if floor.in_peak:
        return "peak mode"
    if floor.inbound_waiting > 0:
        return "inbound callers waiting"
    return None


def progressive_dials(floor: Floor) -> int:
    if inbound_gate(floor):
        return 0
    return max(0, floor.free_agents - floor.in_flight)


@dataclass(frozen=True)
class Rates:
    answer_rate: float  # answered / dialed, recent
    mean_answer_s: float  # dial to answer, of the answered dials, recent
    mean_handle_s: float  # talk + wrap-up, recent


def agents_soon(floor: Floor, rates: Rates) -> float:
    """Busy agents expected to come free before a dial started now is answered (if it is)."""
    if rates.mean_handle_s <= 0:
        return 0.0
    return floor.busy_agents * min(1.0, rates.mean_answer_s / rates.mean_handle_s)


def predictive_dials(floor: Floor, rates: Rates, overdial: float, z: float = 1.0) -> int:
    """Dials to start so that the answers expected from everything in flight fit the agents free
    now or soon, with a margin: the largest n in flight with n·p + z·sqrt(n·p·(1-p)) <= agents.
    Dialing free/p at once would, half the time, bring more answers than agents (abandons)."""
    if inbound_gate(floor):
        return 0
    agents = (floor.free_agents + agents_soon(floor, rates)) * overdial
    if agents <= 0:
        return 0
    p = min(max(rates.answer_rate, 0.05), 1.0)
    b = z * math.sqrt(p * (1 - p))
    x = (-b + math.sqrt(b * b + 4 * p * agents)) / (2 * p)
    return max(0, math.floor(x * x) - floor.in_flight)


def abandon_upper_bound(abandoned: int, answered: int, z: float) -> float:
    """One-sided Wilson score upper bound on the true abandon rate after `abandoned` of `answered`.
    Small windows give a wide bound (0 of 20 answers still allows ~12 % at z=1.645), large ones a
    tight one, so one rule is cautious early and bold once the evidence is in."""
    if answered <= 0:
        return 1.0
    p = abandoned / answered
    z2n = z * z / answered
    centre = p + z2n / 2
    spread = z * math.sqrt(p * (1 - p) / answered + z2n / (4 * answered))
    return min(1.0, (centre + spread) / (1 + z2n))


@dataclass(frozen=True)
class Adapt:
    target: float  # abandon ceiling, e.g. 0.03
    lo: float = 0.5
    back_off_at: float = 0.6  # share of the ceiling where the factor starts coming down
    hi: float = 3.0
    down: float = 0.9  # multiplied in when abandons approach the ceiling
    up_max: float = 1.04  # the largest step up, taken only when the bound is far under the ceiling
    min_answered: int = 20  # fewer answers in the window: too little to judge a back-off, hold
    # Going UP needs the window's upper bound on the abandon rate under the ceiling, and the step
    # shrinks with the margin: "no abandon yet" on 20 answers still allows 12 %, so a young
    # campaign holds (tests/outbound/test_outbound_day.py overshot to 4-5 % creeping on 20 answers);
    # on hundreds of answers the bound is tight and the factor climbs. No fixed answer-count gate.
    z: float = 1.0  # one-sided 84 %: a cautious step, not a proof; the step size adds the rest


def adapt_overdial(current: float, abandon_rate: float, answered: int, cfg: Adapt) -> float:
    """Next over-dial factor. Backs off hard when the observed rate nears the ceiling; goes up by
    a step proportional to how far the Wilson upper bound of the rate sits under the ceiling;
    otherwise holds."""
    if answered < 1:
        return current
    if answered >= cfg.min_answered and abandon_rate >= cfg.back_off_at * cfg.target:
        return max(cfg.lo, current * cfg.down)
    bound = abandon_upper_bound(round(abandon_rate * answered), answered, cfg.z)
    if bound < cfg.target:
        margin = (cfg.target - bound) / cfg.target
        return min(cfg.hi, current * (1 + (cfg.up_max - 1) * margin))
    return current


@dataclass
class AbandonWindow:
    """Answered calls over the rolling window (seconds) and which of them were abandoned."""

    window_s: float
    _events: deque[tuple[float, bool]] = field(default_factory=deque)
    _abandoned: int = 0

    def add(self, at: float, abandoned: bool) -> None:
        self._events.append((at, abandoned))
        self._abandoned += abandoned

    def _trim(self, now: float) -> None:
        while self._events and self._events[0][0] <= now - self.window_s:
            _, a = self._events.popleft()
            self._abandoned -= a

    def rate(self, now: float) -> tuple[float, int]:
        """(abandon rate, answered calls) over (now - window, now]."""
        self._trim(now)
        n = len(self._events)
        return (self._abandoned / n if n else 0.0), n


@dataclass
class RateTracker:
    """Recent answer rate, ring and handle times (exponentially weighted)."""

    answer_rate: float = 1.0  # unknown at start: assume every dial answers (dial as progressive)
    mean_answer_s: float = 10.0
    mean_handle_s: float = 150.0
    alpha: float = 0.02

    def dial_result(self, answered: bool, ring_s: float) -> None:
        a = self.alpha
        self.answer_rate = (1 - a) * self.answer_rate + a * (1.0 if answered else 0.0)
        if answered:
            self.mean_answer_s = (1 - 2 * a) * self.mean_answer_s + 2 * a * ring_s

    def handled(self, handle_s: float) -> None:
        a = self.alpha * 2
        self.mean_handle_s = (1 - a) * self.mean_handle_s + a * handle_s

    def rates(self) -> Rates:
        return Rates(self.answer_rate, self.mean_answer_s, self.mean_handle_s)

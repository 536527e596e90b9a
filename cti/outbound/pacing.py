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


@dataclass(frozen=True)
class Adapt:
    target: float  # abandon ceiling, e.g. 0.03
    lo: float = 0.5
    back_off_at: float = 0.6  # share of the ceiling where the factor starts coming down
    creep_below: float = 0.4  # share of the ceiling under which it goes up
    hi: float = 3.0
    down: float = 0.9  # multiplied in when abandons approach the ceiling
    up: float = 1.03  # when well under it
    min_answered: int = 20  # fewer answers in the window: too little to judge, hold
    # ... and to go UP: "no abandon yet" means little until the window holds enough answers for the
    # ceiling to have shown (100 × 3 % = 3 expected). Creeping on 20 answers made a young campaign
    # over-dial into a burst of abandons (tests/outbound/test_outbound_day.py: 4-5 % in its hour).
    min_answered_up: int = 100


def adapt_overdial(current: float, abandon_rate: float, answered: int, cfg: Adapt) -> float:
    """Next over-dial factor. Backs off hard when the rate nears the ceiling, creeps up when far
    below it, and holds while the window has too few answers to judge."""
    if answered < cfg.min_answered:
        return current
    if abandon_rate >= cfg.back_off_at * cfg.target:
        return max(cfg.lo, current * cfg.down)
    if abandon_rate < cfg.creep_below * cfg.target and answered >= cfg.min_answered_up:
        return min(cfg.hi, current * cfg.up)
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

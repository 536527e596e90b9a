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
    mean_ring_s: float  # dial to answer (or give-up), recent
    mean_handle_s: float  # talk + wrap-up, recent


def agents_soon(floor: Floor, rates: Rates) -> float:
    """Busy agents expected to come free while a dial started now is still ringing."""
    if rates.mean_handle_s <= 0:
        return 0.0
    return floor.busy_agents * min(1.0, rates.mean_ring_s / rates.mean_handle_s)


def predictive_dials(floor: Floor, rates: Rates, overdial: float) -> int:
    """Dials to start so that the answers expected soon roughly match the agents free by then."""
    if inbound_gate(floor):
        return 0
    # agents about to finish only count once the controller trusts its figures (overdial >= 1)
    available = floor.free_agents + (agents_soon(floor, rates) if overdial >= 1.0 else 0.0)
    if available <= 0:
        return 0
    p = max(rates.answer_rate, 0.05)
    want_in_flight = math.floor(available * overdial / p)
    return max(0, want_in_flight - floor.in_flight)


@dataclass(frozen=True)
class Adapt:
    target: float  # abandon ceiling, e.g. 0.03
    lo: float = 0.3
    hi: float = 3.0
    down: float = 0.85  # multiplied in when abandons approach the ceiling
    up: float = 1.02  # when well under it


def adapt_overdial(current: float, abandon_rate: float, answered: int, cfg: Adapt) -> float:
    """Next over-dial factor. Backs off hard when the rate nears the ceiling, creeps up when far
    below it, and holds while the window has too few answers to judge."""
    if abandon_rate >= 0.6 * cfg.target:
        return max(cfg.lo, current * cfg.down)
    if answered < 30:
        return current
    if abandon_rate < 0.3 * cfg.target:
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

    answer_rate: float = 0.3
    mean_ring_s: float = 20.0
    mean_handle_s: float = 150.0
    alpha: float = 0.02

    def dial_result(self, answered: bool, ring_s: float) -> None:
        a = self.alpha
        self.answer_rate = (1 - a) * self.answer_rate + a * (1.0 if answered else 0.0)
        self.mean_ring_s = (1 - a) * self.mean_ring_s + a * ring_s

    def handled(self, handle_s: float) -> None:
        a = self.alpha * 2
        self.mean_handle_s = (1 - a) * self.mean_handle_s + a * handle_s

    def rates(self) -> Rates:
        return Rates(self.answer_rate, self.mean_ring_s, self.mean_handle_s)

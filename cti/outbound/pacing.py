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
from bisect import bisect_right
from collections import deque
from collections.abc import Sequence
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


def usable_answer_rate(rate: float) -> float:
    """The answer rate the pacer works with: never under 5 % (a run of failures must not make it dial
    without bound), never over 1."""
    return min(max(rate, 0.05), 1.0)


@dataclass(frozen=True)
class RingTimes:
    """Recent ring times, sorted: how long answered dials rang before the answer, and how long
    failed ones (busy, no answer, congestion) lasted. With the answer rate they say when the answers
    of the dials in flight will come."""

    answer_rate: float
    answered: tuple[float, ...]
    failed: tuple[float, ...]

    @staticmethod
    def _longer(xs: tuple[float, ...], x: float) -> float:
        return (len(xs) - bisect_right(xs, x)) / len(xs)

    def answered_within(self, age_s: float, t_s: float) -> float:
        """P(a dial still ringing at age_s is answered within the next t_s seconds)."""
        p = self.answer_rate
        s_a = self._longer(self.answered, age_s)
        s_f = self._longer(self.failed, age_s)
        if s_a == 0:
            return 0.0  # past every recent answer time: a no-answer in all but name
        alive = p * s_a + (1 - p) * s_f
        return p * (s_a - self._longer(self.answered, age_s + t_s)) / alive


def predictive_dials(
    floor: Floor,
    rates: Rates,
    overdial: float,
    z: float = 1.0,
    ring: RingTimes | None = None,
    ringing: Sequence[float] = (),
    connect_s: float = 2.0,
    step_s: float = 2.0,
) -> int:
    """Dials to start so that the answers expected from everything in flight fit the agents free by
    then, with a margin: the largest n new dials with E + z·sqrt(V) <= agents. Dialing free/p at
    once would, half the time, bring more answers than agents (abandons).

    With `ring` (recent ring times) and `ringing` (the age of each dial in flight) this holds at
    every moment t of the next ring period: the answers expected by t must fit the agents free now
    plus those finishing by t + connect_s (an answered customer waits that long for one, no longer).
    Comparing only totals at the mean answer time counted agents who finish later than the answers
    they were meant for, and counted a dial ringing past the usual answer time at the full answer
    rate although it is mostly a no-answer. Without them: every dial in flight counts at the answer
    rate, against the agents free now or by the mean answer time."""
    if inbound_gate(floor):
        return 0
    if ring is None:
        return _predictive_totals(floor, rates, overdial, z)
    finishing = floor.busy_agents / rates.mean_handle_s if rates.mean_handle_s > 0 else 0.0
    horizon = ring.answered[-1]
    best: int | None = None
    t = step_s
    while True:
        finished = finishing * (t + connect_s)
        agents = (floor.free_agents + finished) * overdial
        # how many finish by then is itself uncertain (about Poisson): its variance joins the answers'
        e0, v0 = 0.0, finished
        for age in ringing:
            r = ring.answered_within(age, t)
            e0 += r
            v0 += r * (1 - r)
        e = ring.answered_within(0.0, t)
        best = _most(e0, v0, e, z, agents, best)
        if best == 0 or t >= horizon:
            return best
        t = min(t + step_s, horizon)


def _most(e0: float, v0: float, e: float, z: float, agents: float, cap: int | None) -> int:
    """The largest n <= cap with e0 + n·e + z·sqrt(v0 + n·e(1-e)) <= agents (0 if none)."""

    def fits(n: int) -> bool:
        return e0 + n * e + z * math.sqrt(v0 + n * e * (1 - e)) <= agents

    if not fits(0):
        return 0
    hi = cap if cap is not None else 1024
    if e <= 0 or fits(hi):
        return hi
    lo = 0  # fits(lo), not fits(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid
    return lo


def _predictive_totals(floor: Floor, rates: Rates, overdial: float, z: float) -> int:
    """Before ring times are known: totals at the mean answer time, every dial in flight at p."""
    agents = (floor.free_agents + agents_soon(floor, rates)) * overdial
    if agents <= 0:
        return 0
    p = usable_answer_rate(rates.answer_rate)
    b = z * math.sqrt(p * (1 - p))
    x = (-b + math.sqrt(b * b + 4 * p * agents)) / (2 * p)
    return max(0, math.floor(x * x) - floor.in_flight)


@dataclass(frozen=True)
class Steer:
    """How each answered call moves the over-dial factor: an abandon takes `down` off at once, a
    connected answer adds the small step `up` that balances it when abandons run at aim × ceiling
    (1.5 % of answers for a 3 % ceiling). The factor settles where the abandon rate is that aim,
    whatever the bias of the model it scales, and a burst of abandons brakes it within the burst —
    the hourly window used before reacted only after a burst had filled it."""

    ceiling: float  # abandon ceiling, e.g. 0.03
    aim: float = 0.5
    down: float = 0.85
    lo: float = 0.2
    hi: float = 3.0
    brake_at: float = 0.8  # window rate (share of the ceiling) at which it stops going up
    min_answered: int = 20  # the window's rate means something from this many answers

    @property
    def up(self) -> float:
        r = self.aim * self.ceiling
        return math.exp(-r * math.log(self.down) / (1 - r))


def steer_overdial(
    current: float, abandoned: bool, window_rate: float, window_answered: int, cfg: Steer
) -> float:
    """The factor after one answered call (abandoned or connected)."""
    if abandoned:
        return max(cfg.lo, current * cfg.down)
    if window_answered >= cfg.min_answered and window_rate >= cfg.brake_at * cfg.ceiling:
        return current  # the rolling window is near the ceiling: earn nothing until it clears
    return min(cfg.hi, current * cfg.up)


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
    """Recent answer rate, ring and handle times (exponentially weighted), and the recent ring times
    of answered and of failed dials (for the chance that a dial still ringing is answered)."""

    answer_rate: float = 1.0  # unknown at start: assume every dial answers (dial as progressive)
    mean_answer_s: float = 10.0
    mean_handle_s: float = 150.0
    alpha: float = 0.02
    keep: int = 400  # recent ring times kept per kind
    min_samples: int = 30  # fewer: no view of ring times yet, a dial in flight counts at the answer rate
    _answered_s: deque[float] = field(default_factory=deque)
    _failed_s: deque[float] = field(default_factory=deque)
    _sorted: RingTimes | None = None

    def dial_result(self, answered: bool, ring_s: float) -> None:
        a = self.alpha
        self.answer_rate = (1 - a) * self.answer_rate + a * (1.0 if answered else 0.0)
        if answered:
            self.mean_answer_s = (1 - 2 * a) * self.mean_answer_s + 2 * a * ring_s
        kept = self._answered_s if answered else self._failed_s
        kept.append(ring_s)
        if len(kept) > self.keep:
            kept.popleft()
        self._sorted = None

    def handled(self, handle_s: float) -> None:
        a = self.alpha * 2
        self.mean_handle_s = (1 - a) * self.mean_handle_s + a * handle_s

    def rates(self) -> Rates:
        return Rates(self.answer_rate, self.mean_answer_s, self.mean_handle_s)

    def ring_times(self) -> RingTimes | None:
        """The recent ring times, once there are enough of both kinds to go by."""
        if len(self._answered_s) < self.min_samples or len(self._failed_s) < self.min_samples:
            return None
        if self._sorted is None:
            self._sorted = RingTimes(
                usable_answer_rate(self.answer_rate),
                tuple(sorted(self._answered_s)),
                tuple(sorted(self._failed_s)),
            )
        return self._sorted

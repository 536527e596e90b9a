"""The virtual-time scheduler (Asterisk's sched contexts): timers on a heap, fired in (time, order).

Nothing here knows about calls; the Simulator's time driver decides how far `run_next` may go.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(order=True)
class Timer:
    t: float
    seq: int
    fn: Callable[..., None] = field(compare=False)
    args: tuple[Any, ...] = field(compare=False, default=())
    cancelled: bool = field(compare=False, default=False)

    def cancel(self) -> None:
        self.cancelled = True


class Scheduler:
    def __init__(self, start: float) -> None:
        self.now = start
        self._heap: list[Timer] = []
        self._seq = itertools.count()

    def at(self, t: float, fn: Callable[..., None], *args: Any) -> Timer:
        tm = Timer(max(t, self.now), next(self._seq), fn, args)
        heapq.heappush(self._heap, tm)
        return tm

    def after(self, delay: float, fn: Callable[..., None], *args: Any) -> Timer:
        return self.at(self.now + max(0.0, delay), fn, *args)

    def next_time(self) -> float:
        while self._heap and self._heap[0].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0].t if self._heap else math.inf

    def run_next(self) -> None:
        tm = heapq.heappop(self._heap)
        if tm.cancelled:
            return
        if tm.t > self.now:
            self.now = tm.t
        tm.fn(*tm.args)

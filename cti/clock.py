"""Injected time. Code asks a Clock, never datetime.now(), so the simulator can run an evening in
seconds and tests are deterministic."""

from __future__ import annotations

import asyncio
import time as _time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Aware UTC datetime."""

    def time(self) -> float:
        """Epoch seconds."""

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def time(self) -> float:
        return _time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ScaledClock:
    """Virtual time that runs `speed` times faster than the wall clock from `start`."""

    def __init__(self, start: datetime, speed: float = 1.0, *, anchor: float | None = None) -> None:
        """`anchor`: the time.monotonic() at which virtual time was `start` (default: now). Monotonic
        time is one system-wide clock, so processes given the same anchor share one virtual time."""
        if start.tzinfo is None:
            raise ValueError("ScaledClock start must be timezone-aware")
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.start = start.astimezone(UTC)
        self.speed = speed
        self._m0 = _time.monotonic() if anchor is None else anchor

    @classmethod
    def anchored(cls, start: datetime, speed: float, m0: float) -> ScaledClock:
        """The same virtual time as a clock another process started at monotonic time `m0` (the
        monotonic clock is machine-wide): a drill's CTI subprocess shares the simulator's evening."""
        clock = cls(start, speed)
        clock._m0 = m0
        return clock

    @property
    def m0(self) -> float:
        return self._m0

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(_time.monotonic() - self._m0) * self.speed)

    def time(self) -> float:
        return self.now().timestamp()

    @property
    def anchor(self) -> float:
        return self._m0

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)


class ManualClock:
    """A clock that only moves when told to; sleep() advances it (for pure tests)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock start must be timezone-aware")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def time(self) -> float:
        return self._now.timestamp()

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)

    async def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)

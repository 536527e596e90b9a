"""The running peak monitor: reads the schedule and switch from PostgreSQL, live figures from an
injected callable, steps the pure machine, persists the state and emits a `peak_mode` event per change.

Only the leader (decision 0110) steps the machine (`tick`, its write fenced by the leader's token);
every other process follows the persisted state (`follow`), so `in_peak` is right everywhere.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import structlog

from cti.awaitables import maybe_await
from cti.clock import Clock
from cti.peak import repo
from cti.peak.machine import LiveFigures, PeakState, Transition, step
from cti.policy import PeakPolicy
from cti.store.events import Event
from cti.store.sink import EventSink

log = structlog.get_logger(__name__)


FiguresSource = Callable[[], LiveFigures | Awaitable[LiveFigures]]
ChangeListener = Callable[[Transition], Awaitable[None] | None]


def peak_event(tr: Transition, *, switch_by: str | None = None) -> Event:
    payload = tr.payload()
    if switch_by is not None:
        payload["switch_by"] = switch_by
    return Event(
        ts=tr.at,
        source="cti",
        type="peak_mode",
        payload=payload,
        key=f"peak_mode:{tr.at.isoformat()}:{tr.after.cause}:{tr.after.airing_id}",
    )


class PeakMonitor:
    def __init__(
        self,
        pool: Any,
        *,
        policy: PeakPolicy,
        clock: Clock,
        figures: FiguresSource,
        events: EventSink,
        interval_s: float = 1.0,
        on_change: ChangeListener | None = None,
        fence: Callable[[Any], Awaitable[None]] | None = None,
    ) -> None:
        self._pool = pool
        self._policy = policy
        self._clock = clock
        self._figures = figures
        self._events = events
        self._interval_s = interval_s
        self._on_change = on_change
        self.fence = fence  # (conn) -> raises when this process may no longer write transitions
        self._state: PeakState | None = None
        # (from, state) for recent changes: a pause is judged at the AMI frame's Timestamp, which can be
        # older than our last tick when events queue up behind a busy reader (issue 10 item 3).
        self._history: deque[tuple[datetime, PeakState]] = deque(maxlen=64)
        self._last_figures = LiveFigures(waiting_callers=0, estimated_wait_s=0.0)

    @property
    def state(self) -> PeakState:
        if self._state is None:
            raise RuntimeError("PeakMonitor.start() has not run")
        return self._state

    @property
    def in_peak(self) -> bool:
        return self._state is not None and self._state.in_peak

    def state_at(self, at: datetime) -> PeakState | None:
        """The state in force at `at` (None before start). Before the oldest kept change, the oldest
        known state is the best answer we have."""
        if not self._history:
            return self._state
        keys = [t for t, _ in self._history]
        i = bisect.bisect_right(keys, at) - 1
        return self._history[max(i, 0)][1]

    def was_in_peak(self, at: datetime) -> bool:
        """Was the center in peak at `at` (e.g. an AMI frame's Timestamp)?"""
        s = self.state_at(at)
        return s is not None and s.in_peak

    def cause_at(self, at: datetime) -> str | None:
        s = self.state_at(at)
        return s.cause if s is not None else None

    async def start(self) -> None:
        """Resume from the persisted state (keeps the hysteresis timer across a restart)."""
        async with self._pool.acquire() as conn:
            self._state = await repo.load_state(conn) or PeakState.initial(self._clock.now())
        self._history.append((self._state.since, self._state))

    async def tick(self) -> Transition | None:
        if self._state is None:
            await self.start()
        now = self._clock.now()
        try:
            self._last_figures = await maybe_await(self._figures())
        except Exception as e:  # live state unavailable: decide on schedule/switch and the last figures
            log.warning("peak_figures_unavailable", error=str(e))
        async with self._pool.acquire() as conn:
            switch = await repo.get_switch(conn)
            airings = await repo.airings_near(conn, now)
            before = self.state
            new, tr = step(
                before,
                now=now,
                switch=switch.mode,
                airings=airings,
                figures=self._last_figures,
                policy=self._policy,
            )
            if new != before:
                async with conn.transaction():
                    if self.fence is not None:
                        await self.fence(conn)  # a deposed leader's transition does not land
                    await repo.save_state(conn, new, now=now)
        self._state = new
        if tr is not None:
            self._history.append((tr.at, new))
            switch_by = switch.updated_by if tr.after.cause in ("switch_on", "switch_off") else None
            await self._events.append(peak_event(tr, switch_by=switch_by))
            log.info("peak_mode", in_peak=new.in_peak, cause=new.cause, previous=before.cause)
            if self._on_change is not None:
                await maybe_await(self._on_change(tr))
        return tr

    async def follow(self) -> PeakState | None:
        """Not the leader: take the state the leader persisted (its changes feed `state_at` too)."""
        async with self._pool.acquire() as conn:
            new = await repo.load_state(conn)
        if new is not None and new != self._state:
            self._state = new
            self._history.append((new.since, new))
        return new

    async def run(self) -> None:
        """Tick forever (cancel the task to stop)."""
        if self._state is None:
            await self.start()
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("peak_tick_failed")
            await self._clock.sleep(self._interval_s)

"""LiveState: the reducer's state plus the queries routing asks and a subscription for the monitor."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from cti.state.model import STATUS_TEXT, QueueCaller, QueueMember, State
from cti.state.reducer import apply, from_snapshot, member_is_free

log = structlog.get_logger(__name__)

Listener = Callable[["LiveState", Mapping[str, Any]], None]


@dataclass(frozen=True, slots=True)
class AgentStatus:
    agent: str
    queue: str
    interface: str
    status: str  # not_inuse / inuse / unavailable / ringing ...
    paused: bool
    paused_reason: str
    ringing: bool
    in_call: bool
    wrapup: bool
    free: bool


class LiveState:
    def __init__(self, state: State | None = None) -> None:
        self.state = state or State()
        self.resyncs = 0
        self._listeners: list[Listener] = []

    # ---- feeding ------------------------------------------------------------------------
    def apply(self, ev: Mapping[str, Any], ts: float) -> None:
        apply(self.state, ev, ts)
        if self._listeners:
            for fn in self._listeners:
                try:
                    fn(self, ev)
                except Exception:
                    log.exception("live state listener failed")

    def resync(
        self, queue_items: Iterable[Mapping[str, Any]], channel_items: Iterable[Mapping[str, Any]], ts: float
    ) -> None:
        """Replace the whole state by a fresh snapshot (after every (re)connect)."""
        self.state = from_snapshot(queue_items, channel_items, ts)
        self.resyncs += 1
        for fn in self._listeners:
            try:
                fn(self, {"Event": "resync"})
            except Exception:
                log.exception("live state listener failed")

    def subscribe(self, fn: Listener) -> Callable[[], None]:
        """`fn(live, event)` after every applied event (and once per resync with Event=resync)."""
        self._listeners.append(fn)
        return lambda: self._listeners.remove(fn) if fn in self._listeners else None

    # ---- queries ------------------------------------------------------------------------
    def members(self, queue: str) -> list[QueueMember]:
        return [m for m in self.state.members.values() if m.queue == queue]

    def free_agents(self, queue: str, now: float | None = None) -> list[str]:
        """Members of `queue` who could take a call now, lowest penalty first, then name."""
        now = self.state.last_ts if now is None else now
        free = [m for m in self.members(queue) if member_is_free(m, now)]
        return [m.name for m in sorted(free, key=lambda m: (m.penalty, m.name))]

    def callers_waiting(self, queue: str) -> list[QueueCaller]:
        return sorted((c for c in self.state.callers.values() if c.queue == queue), key=lambda c: c.position)

    def longest_wait(self, queue: str, now: float | None = None) -> float:
        now = self.state.last_ts if now is None else now
        joined = [c.joined for c in self.state.callers.values() if c.queue == queue]
        return max(0.0, now - min(joined)) if joined else 0.0

    def agent_status(self, agent: str, now: float | None = None) -> list[AgentStatus]:
        """One entry per queue the agent is a member of (empty list = logged out everywhere)."""
        now = self.state.last_ts if now is None else now
        out = []
        for m in self.state.members.values():
            if m.name != agent:
                continue
            out.append(
                AgentStatus(
                    agent=m.name,
                    queue=m.queue,
                    interface=m.interface,
                    status=STATUS_TEXT.get(m.status, str(m.status)),
                    paused=m.paused,
                    paused_reason=m.paused_reason,
                    ringing=m.ringing,
                    in_call=m.in_call is not None,
                    wrapup=m.wrapup_until is not None and now < m.wrapup_until,
                    free=member_is_free(m, now),
                )
            )
        return out

    def summary(self) -> dict[str, int]:
        st = self.state
        return {
            "channels": len(st.channels),
            "calls": len(st.calls),
            "bridges": len(st.bridges),
            "queued": len(st.callers),
            "members": len(st.members),
        }

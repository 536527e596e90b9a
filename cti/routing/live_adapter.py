"""The one coupling between routing and the live state (cti/state): LiveState -> RoutingSnapshot.

Availability is computed on demand for the few agents a decision asks about, not for everyone."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cti.routing.snapshot import Availability, RoutingSnapshot, SnapshotSource, no_live_state
from cti.state.live import LiveState

_BUSY_STATUSES = frozenset({"inuse", "busy", "onhold", "ringinuse"})
# QueueMember/QueueMemberStatus Status values that make a member "empty" for joinempty =
# unavailable,invalid: 4 INVALID, 5 UNAVAILABLE (capture 19: a fresh registration before qualify)
_UNREACHABLE = frozenset({4, 5})


@dataclass(frozen=True, slots=True)
class LiveSnapshot:
    state: LiveState
    live: bool = True

    def availability(self, agent: str) -> Availability:
        statuses = self.state.agent_status(agent)
        if not statuses:
            return Availability.OFFLINE  # not a member of any queue: logged out
        if any(s.in_call or s.wrapup or s.status in _BUSY_STATUSES for s in statuses):
            return Availability.BUSY
        if any(s.ringing or s.status == "ringing" for s in statuses):
            return Availability.RINGING
        if any(s.free for s in statuses):
            return Availability.AVAILABLE
        if all(s.paused for s in statuses):
            return Availability.PAUSED
        return Availability.OFFLINE  # unavailable / invalid device: phone not registered

    def queue_reachable(self, queue: str) -> bool | None:
        return any(m.status not in _UNREACHABLE for m in self.state.members(queue))


def live_snapshot_source(state: LiveState, connected: Callable[[], bool] | None = None) -> SnapshotSource:
    """For AgiContext.snapshot: the live state while the AMI link is up, 'no opinion' while it is down
    (stale state must not stop us ringing a preferred agent)."""

    def source() -> RoutingSnapshot:
        if connected is not None and not connected():
            return no_live_state()
        return LiveSnapshot(state)

    return source

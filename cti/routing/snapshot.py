"""What routing needs to know about the live call center, and nothing more.

The live state (cti/state, the AMI listener's reducer) is richer; `cti/routing/live_adapter.py` is
the one place that turns it into a RoutingSnapshot, so routing never depends on its internals.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class Availability(StrEnum):
    AVAILABLE = "available"  # logged in, not paused, not ringing, not in a call
    RINGING = "ringing"
    BUSY = "busy"  # in a call or wrap-up
    PAUSED = "paused"
    OFFLINE = "offline"  # not a queue member / phone unreachable
    UNKNOWN = "unknown"  # live state has no opinion (AMI down, agent never seen)


class RoutingSnapshot(Protocol):
    @property
    def live(self) -> bool:
        """False when built without live state (AMI down): every agent is UNKNOWN."""
        ...

    def availability(self, agent: str) -> Availability: ...

    def queue_reachable(self, queue: str) -> bool | None:
        """Could a caller join `queue` now (queues.conf joinempty = unavailable,invalid): some member
        whose device is not unavailable/invalid; paused members count (captures 14, 20). None: no
        opinion (no live state)."""
        ...


@dataclass(frozen=True, slots=True)
class StaticSnapshot:
    """A RoutingSnapshot from a plain mapping (tests, and the no-live-state default)."""

    agents: Mapping[str, Availability] = field(default_factory=dict)
    live: bool = True
    reachable_queues: Mapping[str, bool] | None = None  # None: no opinion about queues

    def availability(self, agent: str) -> Availability:
        if not self.live:
            return Availability.UNKNOWN
        return self.agents.get(agent, Availability.OFFLINE)

    def queue_reachable(self, queue: str) -> bool | None:
        if not self.live or self.reachable_queues is None:
            return None
        return self.reachable_queues.get(queue, False)


# The AGI handlers take a zero-argument callable, so the live state can be read at decision time.
SnapshotSource = Callable[[], RoutingSnapshot]

NO_LIVE_STATE = StaticSnapshot(agents={}, live=False)


def no_live_state() -> RoutingSnapshot:
    return NO_LIVE_STATE

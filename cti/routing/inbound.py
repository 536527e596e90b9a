"""Inbound routing: one pure decision per call (R-NIGHT, R-PREFERRED, R-FIRST-OWNER, R-RING2, R-MASK).

`decide_route(call, directory, snapshot, policy, now, tz)` has no I/O: the `route` AGI handler
gathers the inputs (AGI environment, the caller's orders, the agent directory, live state), calls it,
then sets the channel variables the dialplan reads.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from cti import defaults
from cti.policy import Policy
from cti.routing.numbers import AGENT_ID, UNKNOWN_DISPLAY, CallerNumber, NumberKind, classify_number
from cti.routing.snapshot import Availability, RoutingSnapshot

__all__ = ["UNKNOWN_DISPLAY", "CallerNumber", "NumberKind", "classify_number"]  # re-exported

DEFAULT_QUEUE = defaults.QUEUE  # the contract's default queue; the dialplan's [globals] names the same


class Route(StrEnum):
    QUEUE = "queue"
    NIGHT = "night"
    CALLBACK_OFFER = "callback_offer"
    HANGUP = "hangup"


# --- R-FIRST-OWNER ------------------------------------------------------------------------------
CLOSED_ORDER_STATUSES = frozenset({"received", "cancelled", "returned"})


@dataclass(frozen=True, slots=True)
class Order:
    id: int
    owner_agent: str | None
    status: str
    created_at: datetime
    parent_order_id: int | None = None  # add-on to this order
    duplicate_of: int | None = None  # the same order entered again


def order_owner(orders: Iterable[Order]) -> str | None:
    """The agent who owns the caller while any order is open (R-FIRST-OWNER):
    duplicates and add-ons belong to the agent of the order they duplicate or add to (followed to
    the first one, even if that one is already closed); among several open orders the earliest
    entered wins. No open order (all received/cancelled) -> None: whoever answers."""
    by_id = {o.id: o for o in orders}
    open_orders = sorted(
        (o for o in by_id.values() if o.status not in CLOSED_ORDER_STATUSES),
        key=lambda o: (o.created_at, o.id),
    )
    for o in open_orders:
        root = _root(o, by_id)
        if root.owner_agent:
            return root.owner_agent
    return None


def _root(order: Order, by_id: Mapping[int, Order]) -> Order:
    seen = {order.id}
    cur = order
    while True:
        nxt_id = cur.duplicate_of if cur.duplicate_of is not None else cur.parent_order_id
        nxt = by_id.get(nxt_id) if nxt_id is not None else None
        if nxt is None or nxt.id in seen:
            return cur
        seen.add(nxt.id)
        cur = nxt


# --- the agent directory (reference data, cached by the handler) --------------------------------
@dataclass(frozen=True, slots=True)
class AgentEntry:
    id: str
    did: str | None = None
    active: bool = True


@dataclass(frozen=True, slots=True)
class Directory:
    agents: Mapping[str, AgentEntry] = field(default_factory=dict)

    @classmethod
    def of(cls, entries: Iterable[AgentEntry]) -> Directory:
        return cls({e.id: e for e in entries})

    def by_did(self, did: str | None) -> AgentEntry | None:
        if not did:
            return None
        for e in self.agents.values():
            if e.did == did:
                return e
        return None


# --- the decision --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CallToRoute:
    number: CallerNumber
    did: str | None = None  # the number the caller dialed (CTI_DNIS)
    requested_agent: str | None = None  # chosen in the IVR (CTI_REQUESTED_AGENT)
    orders: tuple[Order, ...] = ()


@dataclass(frozen=True, slots=True)
class RouteDecision:
    route: Route
    queue: str
    masked: str
    preferred: str | None = None
    preferred_reason: str | None = None  # requested | did | order_owner
    preferred_timeout_s: int = 0
    skipped: tuple[tuple[str, str], ...] = ()  # (agent, why) candidates not rung first
    reason: str = ""

    def variables(self, record_path: str | None) -> dict[str, str]:
        """The channel variables the dialplan reads (CTI_ROUTE is set last by the handler)."""
        return {
            "CTI_QUEUE": self.queue,
            "CTI_PREFERRED": self.preferred or "",
            "CTI_PREFERRED_TIMEOUT": str(self.preferred_timeout_s) if self.preferred else "",
            "CTI_MASKED": self.masked,
            "CTI_RECORD": record_path or "",
        }


def is_service_hours(policy: Policy, now: datetime, tz: ZoneInfo) -> bool:
    return policy.service_hours.is_open(now.astimezone(tz).time())


def per_agent_ring_s(policy: Policy) -> int:
    """R-RING2: an agent rings for max_rings whole cadence cycles (2 × 5 s = 10 s by default)."""
    return math.ceil(policy.ring.agent_timeout_s)


_RINGABLE = frozenset({Availability.AVAILABLE, Availability.UNKNOWN})


def decide_route(
    call: CallToRoute,
    directory: Directory,
    snapshot: RoutingSnapshot,
    policy: Policy,
    now: datetime,
    tz: ZoneInfo,
    *,
    queue: str = DEFAULT_QUEUE,
    offer_callback: bool = False,
) -> RouteDecision:
    masked = call.number.masked
    if not is_service_hours(policy, now, tz):
        return RouteDecision(Route.NIGHT, queue, masked, reason="outside service hours")

    # Candidates for "that agent first", most specific first: an explicit IVR choice, the agent's
    # personal DID, the owner of an open order.
    candidates: list[tuple[str, str]] = []
    if call.requested_agent:
        candidates.append((call.requested_agent, "requested"))
    did_agent = directory.by_did(call.did)
    if did_agent is not None:
        candidates.append((did_agent.id, "did"))
    owner = order_owner(call.orders) if call.number.kind is NumberKind.VALID else None
    if owner:
        candidates.append((owner, "order_owner"))

    skipped: list[tuple[str, str]] = []
    for agent, why in candidates:
        entry = directory.agents.get(agent) if AGENT_ID.match(agent) else None
        if entry is None or not entry.active:
            skipped.append((agent if AGENT_ID.match(agent) else "?", "unknown_agent"))
            continue
        state = snapshot.availability(agent)
        if state not in _RINGABLE:
            skipped.append((agent, state.value))
            continue
        return RouteDecision(
            Route.QUEUE,
            queue,
            masked,
            preferred=agent,
            preferred_reason=why,
            preferred_timeout_s=per_agent_ring_s(policy),
            skipped=tuple(skipped),
            reason=f"{why} agent first, then queue",
        )

    if offer_callback and call.number.kind is NumberKind.VALID:
        return RouteDecision(
            Route.CALLBACK_OFFER, queue, masked, skipped=tuple(skipped), reason="peak: callback offered"
        )
    if snapshot.queue_reachable(queue) is False and call.number.kind is NumberKind.VALID:
        # By day an empty queue is not night (capture 19: Queue() answers JOINEMPTY and the dialplan
        # would take a night message): offer a callback; declined, the caller still tries the queue.
        return RouteDecision(
            Route.CALLBACK_OFFER, queue, masked, skipped=tuple(skipped),
            reason="day: no agent reachable in the queue, callback offered",
        )  # fmt: skip
    return RouteDecision(Route.QUEUE, queue, masked, skipped=tuple(skipped), reason="queue")


def next_night_due(now: datetime, tz: ZoneInfo, due: time) -> datetime:
    """The next `due` local time strictly after `now` (23:00 -> tomorrow 08:30; 02:00 -> today 08:30)."""
    local = now.astimezone(tz)
    candidate = datetime.combine(local.date(), due, tzinfo=tz)
    if candidate <= local:
        candidate = datetime.combine(local.date() + timedelta(days=1), due, tzinfo=tz)
    return candidate

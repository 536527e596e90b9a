"""Pure callback-attempt logic: ChannelIds, reading AMI frames into observations, and what happens to
the callback after an attempt's outcome (retry with backoff, or a final outcome).

Agent-first Originate (capture 06d): `Channel: PJSIP/agentN`, so the OriginateResponse is about the
AGENT leg (06b: Success/Reason 4 as soon as the agent answers, whatever the customer does later) and
the customer's result is the DialEnd of our channel (Uniqueid = ChannelId) dialing the trunk.
- OriginateResponse Success (Reason 4): agent answered.
- OriginateResponse Failure: Reason 3 agent did not answer; Reason 0 everything else, including a
  486 Busy (06c) -- the agent leg's DialEnd DialStatus BUSY, when seen, tells busy from unavailable.
  A Failure carries `Uniqueid: <unknown>` and the dial string as Channel, so it is matched by ActionID,
  or by (Channel, Exten) = (agent interface, customer number).
- Customer leg DialEnd: ANSWER reached, NOANSWER no_answer, BUSY busy, CANCEL agent hung up first,
  CONGESTION / others unreachable.
- Trunk down (capture 18): the Dial to the trunk creates no channel, so there is NO DialEnd: only
  `VarSet DIALSTATUS=CHANUNAVAIL` on our channel and its Hangup with Cause 3 (No route to destination),
  after an OriginateResponse Success/4. That is `trunk_unavailable`: neither the customer's miss nor
  the agent's failure (decision 0411).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from cti.ami.headers import first_or_none
from cti.policy import CallbackPolicy

AttemptOutcome = Literal[
    "reached",
    "no_answer",
    "busy",
    "unreachable",
    "agent_no_answer",
    "agent_busy",
    "agent_unavailable",
    "agent_hangup",
    "originate_error",
    "not_sent",
    "trunk_unavailable",
]
# The customer was dialed and did not take the call: counts towards policy.callbacks.max_attempts.
CUSTOMER_MISSES: frozenset[str] = frozenset({"no_answer", "busy", "unreachable"})
# Nothing reached the customer; the callback goes back to the queue without using up an attempt.
AGENT_SIDE: frozenset[str] = frozenset(
    {"agent_no_answer", "agent_busy", "agent_unavailable", "agent_hangup", "originate_error", "not_sent"}
)
# Our carrier trunk could not carry the call: counts against nobody; dispatch pauses (decision 0411).
TRUNK_SIDE: frozenset[str] = frozenset({"trunk_unavailable"})
DISPOSITIONS: frozenset[str] = frozenset({"done", "wrong_number", "declined", "reached"})
# Hangup cause of our channel when the trunk had no route (capture 18: Cause 3, TechCause 404)
NO_ROUTE_CAUSE = "3"

_CHANNEL_ID = re.compile(r"^cti-cb-(\d+)-(\d+)$")
_DIAL_STATUS: dict[str, AttemptOutcome] = {
    "ANSWER": "reached",
    "NOANSWER": "no_answer",
    "BUSY": "busy",
    "CANCEL": "agent_hangup",
    "CHANUNAVAIL": "trunk_unavailable",
}


def channel_id_for(callback_id: int, attempt: int) -> str:
    return f"cti-cb-{callback_id}-{attempt}"


def parse_channel_id(value: Any) -> tuple[int, int] | None:
    if not isinstance(value, str):
        return None
    m = _CHANNEL_ID.match(value)
    return (int(m.group(1)), int(m.group(2))) if m else None


@dataclass(frozen=True)
class Observation:
    """What one AMI frame says about one attempt."""

    kind: Literal["agent_answered", "agent_dial_status", "originate_failed", "customer_result", "hangup"]
    channel_id: str | None = None  # known for everything but an OriginateResponse Failure
    action_id: str | None = None
    interface: str | None = None  # Failure: the dial string (PJSIP/agent3)
    exten: str | None = None  # Failure: the customer number
    reason: str | None = None  # OriginateResponse Reason
    dial_status: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def observe(frame: Mapping[str, Any]) -> Observation | None:
    """The frame's meaning for a callback attempt, or None when it is about something else."""
    ev = first_or_none(frame, "Event")
    uniqueid = first_or_none(frame, "Uniqueid")
    if ev == "OriginateResponse":
        action_id = first_or_none(frame, "ActionID")
        reason = first_or_none(frame, "Reason")
        if first_or_none(frame, "Response") == "Success":
            if parse_channel_id(uniqueid) is None:
                return None
            return Observation("agent_answered", channel_id=uniqueid, action_id=action_id, reason=reason)
        return Observation(
            "originate_failed",
            channel_id=uniqueid if parse_channel_id(uniqueid) else None,
            action_id=action_id,
            interface=first_or_none(frame, "Channel"),
            exten=first_or_none(frame, "Exten"),
            reason=reason,
        )
    if ev == "DialEnd":
        status = first_or_none(frame, "DialStatus")
        if parse_channel_id(uniqueid) is not None and frame.get("DestChannel") is not None:
            return Observation("customer_result", channel_id=uniqueid, dial_status=status)
        dest = first_or_none(frame, "DestUniqueid")
        if parse_channel_id(dest) is not None and frame.get("Channel") is None:
            # the Originate ringing the agent leg itself
            return Observation("agent_dial_status", channel_id=dest, dial_status=status)
        return None
    if (
        ev == "VarSet"
        and first_or_none(frame, "Variable") == "DIALSTATUS"
        and first_or_none(frame, "Value") == "CHANUNAVAIL"
        and parse_channel_id(uniqueid) is not None
    ):
        return Observation("customer_result", channel_id=uniqueid, dial_status="CHANUNAVAIL")
    if ev == "Hangup" and parse_channel_id(uniqueid) is not None:
        return Observation("hangup", channel_id=uniqueid, detail={"cause": first_or_none(frame, "Cause")})
    return None


def originate_failure_outcome(reason: str | None, agent_dial_status: str | None) -> AttemptOutcome:
    if reason == "3":
        return "agent_no_answer"
    if agent_dial_status == "BUSY":
        return "agent_busy"
    return "agent_unavailable"


def customer_outcome(dial_status: str | None) -> AttemptOutcome:
    return _DIAL_STATUS.get(dial_status or "", "unreachable")


def hangup_outcome(cause: str | None) -> AttemptOutcome:
    """Our channel hung up after the agent answered and before any customer result."""
    return "trunk_unavailable" if cause == NO_ROUTE_CAUSE else "agent_hangup"


@dataclass(frozen=True)
class NextStep:
    status: Literal["open", "done", "failed"]
    outcome: str | None  # callbacks.outcome once final
    next_attempt_at: datetime | None


def plan_after(
    outcome: str,
    *,
    customer_misses: int,
    agent_failures: int,
    now: datetime,
    policy: CallbackPolicy,
    agent_retry_s: float,
    max_agent_failures: int,
    trunk_retry_s: float = 60.0,
) -> NextStep:
    """What the callback does after an attempt ended with `outcome`. `customer_misses` and
    `agent_failures` count attempts so far INCLUDING this one."""
    if outcome == "reached":
        return NextStep("done", "reached", None)
    if outcome in CUSTOMER_MISSES:
        if customer_misses >= policy.max_attempts:
            return NextStep("failed", "busy" if outcome == "busy" else "no_answer", None)
        return NextStep("open", None, now + timedelta(seconds=policy.backoff_before(customer_misses + 1)))
    if outcome in TRUNK_SIDE:  # not the customer's doing nor the agent's: again once the trunk is back
        return NextStep("open", None, now + timedelta(seconds=trunk_retry_s))
    if outcome in AGENT_SIDE:
        if agent_failures >= max_agent_failures:
            return NextStep("failed", "failed", None)
        return NextStep("open", None, now + timedelta(seconds=agent_retry_s))
    raise ValueError(f"unknown attempt outcome {outcome!r}")


def inbound_first_allows(
    *, waiting_inbound: int, inbound_answered_since_last_callback: int | None, ratio: int
) -> bool:
    """Inbound first (seed 001 §43): with callers waiting, a callback may take an agent only after
    `ratio` inbound callers were answered since the last callback (ratio 0: callbacks never wait).
    Without an answered count, callbacks wait until nobody is waiting."""
    if waiting_inbound <= 0 or ratio == 0:
        return True
    if inbound_answered_since_last_callback is None:
        return False
    return inbound_answered_since_last_callback >= ratio

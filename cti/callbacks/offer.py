"""The callback offer in peak mode, as pure decisions the `route` / `callback_offer` AGI scripts and
the AMI listener call, plus the two small writes that follow from them.

- `decide_offer`: offer a callback, or queue (not in peak, answerable within two rings, or withheld).
- `interpret_reply`: what the caller keyed after the prompt (GET DATA result, `#` not included):
  `1` confirms the calling number, `2` declines (wait in the queue), a number keys another one.
(Callers who hang up unanswered, in peak or not, are protected by cti/callbacks/missed.py.)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from cti.callbacks.repo import (
    CallbackKind,
    CallbackRef,
    InvalidCallbackNumber,
    create_or_join,
    normalise_number,
)
from cti.peak.predict import Prediction
from cti.policy import CallbackPolicy

CONFIRM_KEY = "1"
DECLINE_KEY = "2"


def callable_number(raw: str | None) -> str | None:
    """The normalised number, or None when it is withheld / not dialable (`<unknown>`, anonymous...)."""
    try:
        return normalise_number(raw)
    except InvalidCallbackNumber:
        return None


@dataclass(frozen=True)
class OfferDecision:
    route: Literal["callback_offer", "queue"]
    reason: Literal["offer", "not_peak", "answerable", "withheld"]
    number: str | None  # the calling number, normalised; None when withheld


def decide_offer(
    *, in_peak: bool, calling_number: str | None, prediction: Prediction | None
) -> OfferDecision:
    number = callable_number(calling_number)
    if not in_peak:
        return OfferDecision("queue", "not_peak", number)
    if prediction is not None and prediction.within_two_rings:
        return OfferDecision("queue", "answerable", number)
    if number is None:
        # a withheld caller cannot be called back: keep them in the queue
        return OfferDecision("queue", "withheld", None)
    return OfferDecision("callback_offer", "offer", number)


@dataclass(frozen=True)
class OfferReply:
    action: Literal["callback", "queue", "reprompt"]
    reason: Literal["confirmed", "other_number", "declined", "no_input", "invalid"]
    number: str | None = None  # the number to call back when action == "callback"


def interpret_reply(
    digits: str | None, *, calling_number: str | None, tries: int, max_tries: int = 2
) -> OfferReply:
    """`tries` counts this reply (1 = first). After `max_tries` unusable replies the caller is queued:
    silence or a wrong key never loses a caller, it only costs them the offer."""
    d = (digits or "").strip()
    last = tries >= max_tries
    if d == CONFIRM_KEY:
        number = callable_number(calling_number)
        if number is not None:
            return OfferReply("callback", "confirmed", number)
        return OfferReply("queue" if last else "reprompt", "invalid")
    if d == DECLINE_KEY:
        return OfferReply("queue", "declined")
    if not d:
        return OfferReply("queue" if last else "reprompt", "no_input")
    other = callable_number(d) if len(d) >= 5 else None
    if other is not None:
        return OfferReply("callback", "other_number", other)
    return OfferReply("queue" if last else "reprompt", "invalid")


async def open_callback(
    conn: Any,
    *,
    number: str,
    did: str | None,
    kind: CallbackKind,
    now: datetime,
    policy: CallbackPolicy,
    linkedid: str | None = None,
    queue: str | None = None,
    due_by: datetime | None = None,
) -> CallbackRef:
    """create_or_join with the policy priority: night callbacks get `night_priority`; a number that
    calls again while its callback is open becomes a repeat caller (`repeat_caller_priority`)."""
    priority = policy.night_priority if kind == "night" else 0
    async with conn.transaction():
        ref = await create_or_join(
            conn,
            number=number,
            did=did,
            kind=kind,
            now=now,
            priority=priority,
            due_by=due_by,
            source_linkedid=linkedid,
            queue=queue,
        )
        if not ref.created:
            await conn.execute(
                "UPDATE callbacks SET priority = GREATEST(priority, $2) WHERE id = $1",
                ref.id,
                policy.repeat_caller_priority,
            )
    return ref

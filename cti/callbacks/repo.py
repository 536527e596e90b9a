"""Callback rows in PostgreSQL. `create_or_join` is the one way a callback comes to exist."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from cti.routing.numbers import DIALABLE, compact_number

CallbackKind = Literal["peak", "night", "abandon", "manual"]


class InvalidCallbackNumber(ValueError):
    """The number cannot be called back (withheld, letters, too short); nothing was stored."""


@dataclass(frozen=True)
class CallbackRef:
    id: int
    created: bool  # False: the caller joined the callback already open for the number
    call_count: int


def normalise_number(raw: str | None) -> str:
    """Digits (and a leading +) only; raise InvalidCallbackNumber for anything uncallable."""
    if raw is None:
        raise InvalidCallbackNumber("no number (withheld)")
    s = compact_number(raw)
    if not DIALABLE.match(s):
        raise InvalidCallbackNumber("number is withheld or not a dialable number")
    return s


async def create_or_join(
    conn: Any,
    *,
    number: str,
    did: str | None,
    kind: CallbackKind,
    now: datetime,
    priority: int = 0,
    due_by: datetime | None = None,
    caller_name_file: str | None = None,
    source_linkedid: str | None = None,
    queue: str | None = None,
    preferred_agent: str | None = None,
) -> CallbackRef:
    """Open a callback for `number`, or join the one already open (count the attempt, keep the
    earliest first call time, the highest priority and the earliest due time)."""
    number = normalise_number(number)
    row = await conn.fetchrow(
        """
        INSERT INTO callbacks (number, did, kind, priority, first_call_at, last_call_at, due_by,
                               next_attempt_at, caller_name_file, source_linkedid, queue, preferred_agent)
        VALUES ($1, $2, $3, $4, $5, $5, $6, $5, $7, $8, $9, $10)
        ON CONFLICT (number) WHERE status IN ('open', 'dialing') DO UPDATE SET
            call_count    = callbacks.call_count + 1,
            first_call_at = LEAST(callbacks.first_call_at, EXCLUDED.first_call_at),
            last_call_at  = GREATEST(callbacks.last_call_at, EXCLUDED.last_call_at),
            priority      = GREATEST(callbacks.priority, EXCLUDED.priority),
            due_by        = LEAST(callbacks.due_by, EXCLUDED.due_by),
            did           = COALESCE(callbacks.did, EXCLUDED.did),
            caller_name_file = COALESCE(EXCLUDED.caller_name_file, callbacks.caller_name_file),
            updated_at    = now()
        RETURNING id, (xmax = 0) AS created, call_count
        """,
        number,
        did,
        kind,
        priority,
        now,
        due_by,
        caller_name_file,
        source_linkedid,
        queue,
        preferred_agent,
    )
    return CallbackRef(id=row["id"], created=row["created"], call_count=row["call_count"])

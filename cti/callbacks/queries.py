"""Read and manage the callback queue: the async API the CLI uses now and the web layer later.
Numbers are returned masked (R-MASK) unless `full_numbers=True` is asked for explicitly."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cti.db.rows import from_row
from cti.masking import mask_number

STATUSES = ("open", "dialing", "done", "failed", "cancelled")


@dataclass(frozen=True)
class CallbackView:
    id: int
    number: str
    did: str | None
    kind: str
    status: str
    outcome: str | None
    priority: int
    call_count: int
    attempts: int
    first_call_at: datetime
    next_attempt_at: datetime


@dataclass(frozen=True)
class AttemptView:
    attempt: int
    channel_id: str
    agent: str
    state: str
    outcome: str | None
    recorded_at: datetime
    resolved_at: datetime | None


def _view(r: Any, full: bool) -> CallbackView:
    return from_row(CallbackView, r, number=r["number"] if full else mask_number(r["number"]))


async def list_callbacks(
    conn: Any, *, status: str | None = "open", limit: int = 100, full_numbers: bool = False
) -> list[CallbackView]:
    if status is not None and status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
    rows = await conn.fetch(
        """SELECT * FROM callbacks WHERE ($1::text IS NULL OR status = $1)
           ORDER BY priority DESC, first_call_at, id LIMIT $2""",
        status,
        limit,
    )
    return [_view(r, full_numbers) for r in rows]


async def get_callback(
    conn: Any, callback_id: int, *, full_numbers: bool = False
) -> tuple[CallbackView, list[AttemptView]] | None:
    r = await conn.fetchrow("SELECT * FROM callbacks WHERE id = $1", callback_id)
    if r is None:
        return None
    atts = await conn.fetch(
        "SELECT * FROM callback_attempts WHERE callback_id = $1 ORDER BY attempt", callback_id
    )
    return _view(r, full_numbers), [from_row(AttemptView, a) for a in atts]


async def counts(conn: Any) -> dict[str, int]:
    rows = await conn.fetch("SELECT status, count(*) AS n FROM callbacks GROUP BY status")
    out = dict.fromkeys(STATUSES, 0)
    out.update({r["status"]: r["n"] for r in rows})
    return out


class CannotCancel(ValueError):
    pass


async def cancel_callback(conn: Any, callback_id: int, *, by: str, now: datetime) -> None:
    """Cancel an open callback (a supervisor's decision). One being dialed right now cannot be
    cancelled: its Originate is already out; let its outcome arrive first."""
    status = await conn.fetchval(
        """UPDATE callbacks SET status = 'cancelled', outcome = 'cancelled', disposition_by = $2,
               updated_at = $3
           WHERE id = $1 AND status = 'open' RETURNING status""",
        callback_id,
        by,
        now,
    )
    if status is None:
        current = await conn.fetchval("SELECT status FROM callbacks WHERE id = $1", callback_id)
        if current is None:
            raise CannotCancel(f"no callback with id {callback_id}")
        raise CannotCancel(f"callback {callback_id} is {current}; only an open callback can be cancelled")


async def callback_stats(pool: Any, *, now: datetime) -> dict[str, Any]:
    """For the wallboard (`Services.callback_stats`): counts by status and the oldest open wait."""
    async with pool.acquire() as conn:
        out: dict[str, Any] = await counts(conn)
        oldest = await conn.fetchval(
            "SELECT min(first_call_at) FROM callbacks WHERE status IN ('open', 'dialing')"
        )
    out["oldest_wait_s"] = round((now - oldest).total_seconds()) if oldest else 0
    return out

"""The desk's SQL: what a screen pop shows, dispositions and DNC requests (db/070). Rows come back
with full numbers only where the caller needs them to act (DNC, callback); views mask."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from cti.outbound import dnc as outbound_dnc
from cti.routing.numbers import NotAPhoneNumber, normalise_dialable


async def agents(conn: Any) -> list[dict[str, Any]]:
    rows = await conn.fetch("SELECT id, name, group_name, interface FROM agents WHERE active")
    return [dict(r) for r in rows]


async def customer(conn: Any, number: str) -> dict[str, Any] | None:
    r = await conn.fetchrow("SELECT id, name FROM customers WHERE number = $1", number)
    return dict(r) if r else None


async def orders(conn: Any, customer_id: int, limit: int = 10) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT id, status, owner_agent, product, created_at FROM orders WHERE customer_id = $1
           ORDER BY created_at DESC LIMIT $2""",
        customer_id, limit,
    )  # fmt: skip
    return [dict(r) for r in rows]


async def recent_calls(conn: Any, number: str, before: str, limit: int = 5) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT f.linkedid, f.started_at, f.did, f.answered_by, f.abandoned, d.outcome, d.note
           FROM call_facts f LEFT JOIN dispositions d ON d.linkedid = f.linkedid
           WHERE f.caller_num = $1 AND f.linkedid <> $2 ORDER BY f.started_at DESC LIMIT $3""",
        number, before, limit,
    )  # fmt: skip
    return [dict(r) for r in rows]


async def callback(conn: Any, callback_id: int) -> dict[str, Any] | None:
    r = await conn.fetchrow(
        "SELECT id, number, did, kind, call_count, first_call_at, status FROM callbacks WHERE id = $1",
        callback_id,
    )
    return dict(r) if r else None


async def route_reason(conn: Any, linkedid: str, around: datetime) -> str | None:
    """`preferred_reason` of the route decision (requested | did | order_owner), if it is stored yet
    (events carry no secondary index: the ts range lets the primary key find it)."""
    return await conn.fetchval(
        """SELECT payload->>'preferred_reason' FROM events WHERE type = 'route' AND linkedid = $1
           AND ts BETWEEN $2 AND $3 LIMIT 1""",
        linkedid, around - timedelta(minutes=10), around + timedelta(minutes=1),
    )  # fmt: skip


async def insert_disposition(conn: Any, **row: Any) -> int:
    cols = list(row)
    params = ", ".join(f"${i + 1}" for i in range(len(cols)))
    sql = (
        f"INSERT INTO dispositions ({', '.join(cols)}) VALUES ({params})"
        " ON CONFLICT (linkedid, agent) DO NOTHING RETURNING id"
    )
    return await conn.fetchval(sql, *row.values())


async def add_dnc(
    conn: Any, number: str, category: str, reason: str, linkedid: str, by: str, at: datetime
) -> None:
    """The agent's request (who, on which call) and, at once, the outbound list the dialer's
    eligibility and pre-dial claim read (cti.outbound.dnc, under its per-number lock)."""
    await conn.execute(
        """INSERT INTO dnc_requests (number, category, reason, linkedid, added_by, added_at)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (number, category) DO NOTHING""",
        number, category, reason, linkedid, by, at,
    )  # fmt: skip
    try:
        e164 = normalise_dialable(number)
    except NotAPhoneNumber:
        return  # a number we could never dial needs no outbound entry; the request row stays
    await outbound_dnc.add(conn, e164, category, at=at, by=by, reason=reason or f"disposition on {linkedid}")


async def my_callbacks(conn: Any, agent: str, limit: int = 20) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT id, number, kind, first_call_at, next_attempt_at, call_count FROM callbacks
           WHERE status = 'open' AND (preferred_agent = $1 OR preferred_agent IS NULL)
           ORDER BY (preferred_agent = $1) DESC NULLS LAST, first_call_at LIMIT $2""",
        agent, limit,
    )  # fmt: skip
    return [dict(r) for r in rows]


async def my_followups(conn: Any, agent: str, limit: int = 20) -> list[dict[str, Any]]:
    """Orders this agent owns, still moving or received (the customers to follow up, R-FOLLOWUP),
    the ones followed up longest ago (or never) first, with when that was."""
    rows = await conn.fetch(
        """SELECT o.id, o.status, o.product, c.number, f.last_at AS last_followup
           FROM orders o JOIN customers c ON c.id = o.customer_id
           LEFT JOIN LATERAL (SELECT max(called_at) AS last_at FROM followup_calls fc
                              WHERE fc.order_id = o.id) f ON true
           WHERE o.owner_agent = $1 AND o.status IN ('new', 'confirmed', 'shipped', 'received')
           ORDER BY f.last_at NULLS FIRST, o.created_at DESC LIMIT $2""",
        agent, limit,
    )  # fmt: skip
    return [dict(r) for r in rows]


async def record_followup(
    conn: Any, *, agent: str, linkedid: str, called_at: datetime, outcome: str, order_id: int | None
) -> None:
    """One follow-up call whose result the agent recorded (R-FOLLOWUP counts these); once per call."""
    await conn.execute(
        """INSERT INTO followup_calls (agent, called_at, linkedid, outcome, order_id)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT (linkedid) WHERE linkedid IS NOT NULL DO NOTHING""",
        agent, called_at, linkedid, outcome, order_id,
    )  # fmt: skip


async def followups_since(conn: Any, agent: str, since: datetime) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM followup_calls WHERE agent = $1 AND called_at >= $2", agent, since
        )
    )


async def number_for(conn: Any, kind: str, ref: int, agent: str) -> tuple[str, str | None] | None:
    """(number, did) of a record the agent may call: an open callback or an order they own."""
    if kind == "callback":
        r = await conn.fetchrow("SELECT number, did FROM callbacks WHERE id = $1 AND status = 'open'", ref)
    else:
        r = await conn.fetchrow(
            """SELECT c.number, NULL::text AS did FROM orders o JOIN customers c ON c.id = o.customer_id
               WHERE o.id = $1 AND o.owner_agent = $2""",
            ref, agent,
        )  # fmt: skip
    return (r["number"], r["did"]) if r else None


async def day_points(conn: Any, agent: str, since: datetime) -> dict[str, Any] | None:
    """Fines and points so far today from the fines work's ledger (`fine_ledger`, integer fen, waivers
    in `fine_waivers`) when this database has it; None otherwise."""
    if not await conn.fetchval("SELECT to_regclass('fine_ledger') IS NOT NULL"):
        return None
    r = await conn.fetchrow(
        """SELECT coalesce(sum(l.amount_fen), 0) AS fen, coalesce(sum(l.points), 0) AS points
           FROM fine_ledger l LEFT JOIN fine_waivers w ON w.ledger_id = l.id
           WHERE l.person = $1 AND l.role = 'agent' AND l.occurred_at >= $2 AND w.ledger_id IS NULL""",
        agent, since,
    )  # fmt: skip
    fen = int(r["fen"])
    return {"fines_yuan": f"{fen // 100}.{fen % 100:02d}", "points": int(r["points"])}


async def airings(conn: Any, start: datetime, end: datetime) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT channel, program, starts_at, duration_s, tail_minutes FROM media_airings
           WHERE starts_at < $2 AND starts_at + make_interval(secs => duration_s) > $1 ORDER BY starts_at""",
        start, end,
    )  # fmt: skip
    return [dict(r) for r in rows]


async def recording(conn: Any, rec_id: int) -> dict[str, Any] | None:
    r = await conn.fetchrow("SELECT id, linkedid, path FROM recordings WHERE id = $1", rec_id)
    return dict(r) if r else None


async def recent_recordings(conn: Any, limit: int = 20) -> list[dict[str, Any]]:
    """The latest finished recordings, newest first (the wallboard's player; numbers masked by the caller)."""
    rows = await conn.fetch(
        """SELECT r.id, r.number, r.did, r.queue, r.started_at, r.duration_s, f.answered_by
           FROM recordings r LEFT JOIN call_facts f ON f.linkedid = r.linkedid
           WHERE r.ended_at IS NOT NULL ORDER BY r.ended_at DESC LIMIT $1""",
        limit,
    )
    return [dict(r) for r in rows]


async def audit_recording(conn: Any, at: datetime, username: str, rec_id: int, reason: str) -> None:
    await conn.execute(
        "INSERT INTO number_reveals (at, username, subject, reason) VALUES ($1, $2, $3, $4)",
        at, username, f"recording:{rec_id}", reason,
    )  # fmt: skip

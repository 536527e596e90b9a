"""The `line_tests` table (db/081). Every function takes an asyncpg connection or pool."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

_PASS = """
UPDATE line_tests SET status = 'passed', finished_at = $2, inbound_linkedid = $3,
       duration_s = round(extract(epoch FROM $2 - started_at)::numeric, 3)
WHERE id = (SELECT id FROM line_tests WHERE did = $1 AND status = 'calling'
            ORDER BY started_at LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING id, round(extract(epoch FROM $2 - started_at)::numeric, 3) AS duration_s
"""


async def active_dids(conn: Any, configured: list[str]) -> list[str]:
    """The center's main numbers (settings) and every active agent's personal DID, each once."""
    rows = await conn.fetch("SELECT did FROM agents WHERE active AND did IS NOT NULL ORDER BY did")
    seen = dict.fromkeys(configured)
    seen.update(dict.fromkeys(r["did"] for r in rows))
    return list(seen)


async def recorded(conn: Any, day: date) -> set[tuple[str, str, date]]:
    rows = await conn.fetch(
        "SELECT did, shift, slot_date FROM line_tests WHERE slot_date = $1 AND shift IS NOT NULL", day
    )
    return {(r["did"], r["shift"], r["slot_date"]) for r in rows}


async def claim_scheduled(
    conn: Any, did: str, shift: str, day: date, scheduled_at: datetime, *, status: str, now: datetime,
    by: str, reason: str | None = None,
) -> int | None:  # fmt: skip
    """Insert the slot's row (status calling or skipped); None when another process already did."""
    started = now if status == "calling" else None
    finished = now if status == "skipped" else None
    return await conn.fetchval(
        """INSERT INTO line_tests (did, shift, slot_date, scheduled_at, status, reason, started_at,
                                  finished_at, via, claimed_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'schedule', $9)
           ON CONFLICT (did, shift, slot_date) DO NOTHING RETURNING id""",
        did,
        shift,
        day,
        scheduled_at,
        status,
        reason,
        started,
        finished,
        by,
    )


async def start_manual(conn: Any, did: str, *, now: datetime, via: str, by: str) -> int:
    return int(
        await conn.fetchval(
            """INSERT INTO line_tests (did, status, started_at, via, claimed_by)
               VALUES ($1, 'calling', $2, $3, $4) RETURNING id""",
            did,
            now,
            via,
            by,
        )
    )


async def set_channel(conn: Any, test_id: int, channel_id: str) -> None:
    await conn.execute("UPDATE line_tests SET channel_id = $2 WHERE id = $1", test_id, channel_id)


async def fail(conn: Any, test_id: int, reason: str, now: datetime) -> bool:
    """Mark a test still calling as failed; False if it finished meanwhile (the call came back)."""
    return bool(
        await conn.fetchval(
            """UPDATE line_tests SET status = 'failed', reason = $2, finished_at = $3,
                      duration_s = round(extract(epoch FROM $3 - started_at)::numeric, 3)
               WHERE id = $1 AND status = 'calling' RETURNING true""",
            test_id,
            reason[:500],
            now,
        )
    )


async def get(conn: Any, test_id: int) -> Any:
    return await conn.fetchrow("SELECT * FROM line_tests WHERE id = $1", test_id)


async def pass_inbound(conn: Any, did: str, linkedid: str, now: datetime) -> Any:
    """The test call of `did` came back in: the oldest test of it still calling passes (id, duration_s),
    and the inbound call gets its missed_calls row so no callback is made for it. None: no test was
    waiting (a late arrival after its timeout)."""
    async with conn.transaction():
        row = await conn.fetchrow(_PASS, did, now, linkedid)
        await conn.execute(
            """INSERT INTO missed_calls (linkedid, started_at, ended_at, reason)
               VALUES ($1, $2, $2, 'line_test') ON CONFLICT (linkedid) DO NOTHING""",
            linkedid,
            now,
        )
    return row


async def listing(conn: Any, *, since: datetime, did: str | None = None, limit: int = 500) -> list[Any]:
    return list(
        await conn.fetch(
            """SELECT id, did, shift, slot_date, scheduled_at, status, reason, started_at, finished_at,
                      duration_s, via
               FROM line_tests
               WHERE coalesce(started_at, scheduled_at) >= $1 AND ($2::text IS NULL OR did = $2)
               ORDER BY coalesce(started_at, scheduled_at) DESC, id DESC LIMIT $3""",
            since,
            did,
            limit,
        )
    )

"""The `line_test_runs` table (db/081). Every function takes an asyncpg connection or pool."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

_PASS = """
UPDATE line_test_runs SET status = 'passed', finished_at = $2, inbound_linkedid = $3,
       duration_s = round(extract(epoch FROM $2 - started_at)::numeric, 3)
WHERE id = (SELECT id FROM line_test_runs WHERE did = $1 AND status = 'calling'
            ORDER BY started_at LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING id, round(extract(epoch FROM $2 - started_at)::numeric, 3) AS duration_s
"""


async def active_dids(conn: Any, configured: list[str]) -> list[str]:
    """The lines owed a test: `test_lines` (db/061, which the fines read), after adding the center's
    main numbers (settings) and every active agent's personal DID that are not there yet. A line an
    operator set inactive there stays so."""
    await conn.execute(
        """INSERT INTO test_lines (line)
           SELECT d FROM unnest($1::text[]) AS d
           UNION SELECT did FROM agents WHERE active AND did IS NOT NULL
           ON CONFLICT (line) DO NOTHING""",
        configured,
    )
    rows = await conn.fetch("SELECT line FROM test_lines WHERE active ORDER BY line")
    return [r["line"] for r in rows]


async def record_slot_result(conn: Any, row: Any) -> None:
    """A scheduled test's result as the fines read it (db/061 `line_tests`: ok | failed per line, day
    and shift). A slot with no row there is a skipped test to the fines."""
    if row["shift"] is None or row["status"] not in ("passed", "failed"):
        return
    await conn.execute(
        """INSERT INTO line_tests (line, day, slot, tested_at, result) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (line, day, slot) DO NOTHING""",
        row["did"], row["slot_date"], row["shift"], row["started_at"],
        "ok" if row["status"] == "passed" else "failed",
    )  # fmt: skip


async def recorded(conn: Any, day: date) -> set[tuple[str, str, date]]:
    rows = await conn.fetch(
        "SELECT did, shift, slot_date FROM line_test_runs WHERE slot_date = $1 AND shift IS NOT NULL", day
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
        """INSERT INTO line_test_runs (did, shift, slot_date, scheduled_at, status, reason, started_at,
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
            """INSERT INTO line_test_runs (did, status, started_at, via, claimed_by)
               VALUES ($1, 'calling', $2, $3, $4) RETURNING id""",
            did,
            now,
            via,
            by,
        )
    )


async def set_channel(conn: Any, test_id: int, channel_id: str) -> None:
    await conn.execute("UPDATE line_test_runs SET channel_id = $2 WHERE id = $1", test_id, channel_id)


async def fail(conn: Any, test_id: int, reason: str, now: datetime) -> bool:
    """Mark a test still calling as failed; False if it finished meanwhile (the call came back)."""
    return bool(
        await conn.fetchval(
            """UPDATE line_test_runs SET status = 'failed', reason = $2, finished_at = $3,
                      duration_s = round(extract(epoch FROM $3 - started_at)::numeric, 3)
               WHERE id = $1 AND status = 'calling' RETURNING true""",
            test_id,
            reason[:500],
            now,
        )
    )


async def get(conn: Any, test_id: int) -> Any:
    return await conn.fetchrow("SELECT * FROM line_test_runs WHERE id = $1", test_id)


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
               FROM line_test_runs
               WHERE coalesce(started_at, scheduled_at) >= $1 AND ($2::text IS NULL OR did = $2)
               ORDER BY coalesce(started_at, scheduled_at) DESC, id DESC LIMIT $3""",
            since,
            did,
            limit,
        )
    )

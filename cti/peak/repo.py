"""Media schedule, supervisor switch and persisted peak state in PostgreSQL (db/030_peak.sql).

Async functions over an asyncpg connection (or pool): the CLI uses them now, the web layer later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cti.db.rows import from_row
from cti.peak.machine import SWITCH_MODES, Airing, PeakState, SwitchMode


class ScheduleError(ValueError):
    """An airing that cannot be stored (the message names the field); nothing was written."""


@dataclass(frozen=True)
class SwitchSetting:
    mode: SwitchMode
    updated_at: datetime
    updated_by: str


def _airing(r: Any) -> Airing:
    return from_row(Airing, r, duration_s=float(r["duration_s"]))


async def add_airing(
    conn: Any,
    *,
    channel: str,
    program: str,
    starts_at: datetime,
    duration_s: int,
    expected_calls: int = 0,
    tail_minutes: float | None = None,
    by: str,
) -> Airing:
    channel, program = channel.strip(), program.strip()
    if not channel or len(channel) > 100:
        raise ScheduleError("channel: 1 to 100 characters (e.g. CCTV-1)")
    if not program or len(program) > 200:
        raise ScheduleError("program: 1 to 200 characters")
    if starts_at.tzinfo is None:
        raise ScheduleError("start: needs a time zone (naive times are ambiguous)")
    if not 1 <= duration_s <= 86400:
        raise ScheduleError(f"duration: 1 to 86400 seconds, got {duration_s}")
    if expected_calls < 0:
        raise ScheduleError(f"expected calls: must be >= 0, got {expected_calls}")
    if tail_minutes is not None and not 0 <= tail_minutes <= 1440:
        raise ScheduleError(f"tail: 0 to 1440 minutes, got {tail_minutes}")
    r = await conn.fetchrow(
        """INSERT INTO media_airings (channel, program, starts_at, duration_s, expected_calls,
                                      tail_minutes, created_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *""",
        channel,
        program,
        starts_at,
        duration_s,
        expected_calls,
        tail_minutes,
        by,
    )
    return _airing(r)


async def list_airings(
    conn: Any, *, starting_after: datetime | None = None, starting_before: datetime | None = None
) -> list[Airing]:
    rows = await conn.fetch(
        """SELECT * FROM media_airings
           WHERE ($1::timestamptz IS NULL OR starts_at >= $1)
             AND ($2::timestamptz IS NULL OR starts_at < $2)
           ORDER BY starts_at, id""",
        starting_after,
        starting_before,
    )
    return [_airing(r) for r in rows]


async def airings_near(conn: Any, now: datetime) -> list[Airing]:
    """Airings whose window can cover `now` (a window lasts at most a day plus a day of tail)."""
    return await list_airings(
        conn, starting_after=now - timedelta(days=2), starting_before=now + timedelta(days=1)
    )


async def remove_airing(conn: Any, airing_id: int) -> bool:
    return await conn.fetchval("DELETE FROM media_airings WHERE id = $1 RETURNING true", airing_id) is True


async def get_switch(conn: Any) -> SwitchSetting:
    r = await conn.fetchrow("SELECT mode, updated_at, updated_by FROM peak_switch")
    return SwitchSetting(mode=r["mode"], updated_at=r["updated_at"], updated_by=r["updated_by"])


async def set_switch(conn: Any, mode: str, *, by: str, now: datetime) -> SwitchSetting:
    if mode not in SWITCH_MODES:
        raise ValueError(f"peak switch must be one of {', '.join(SWITCH_MODES)}, got {mode!r}")
    r = await conn.fetchrow(
        "UPDATE peak_switch SET mode = $1, updated_at = $2, updated_by = $3 RETURNING *", mode, now, by
    )
    return SwitchSetting(mode=r["mode"], updated_at=r["updated_at"], updated_by=r["updated_by"])


async def load_state(conn: Any) -> PeakState | None:
    r = await conn.fetchrow("SELECT * FROM peak_state")
    if r is None:
        return None
    return PeakState(
        in_peak=r["in_peak"],
        cause=r["cause"],
        since=r["since"],
        airing_id=r["airing_id"],
        calm_since=r["calm_since"],
    )


async def save_state(conn: Any, state: PeakState, *, now: datetime) -> None:
    await conn.execute(
        """INSERT INTO peak_state (singleton, in_peak, cause, since, airing_id, calm_since, updated_at)
           VALUES (true, $1, $2, $3, $4, $5, $6)
           ON CONFLICT (singleton) DO UPDATE SET in_peak = EXCLUDED.in_peak, cause = EXCLUDED.cause,
               since = EXCLUDED.since, airing_id = EXCLUDED.airing_id, calm_since = EXCLUDED.calm_since,
               updated_at = EXCLUDED.updated_at""",
        state.in_peak,
        state.cause,
        state.since,
        state.airing_id,
        state.calm_since,
        now,
    )


# ---- peak violations (the guard's record of a pause or logoff it undid) ---------------------------


async def record_violation(
    conn: Any, *, agent: str | None, interface: str | None, queue: str | None, kind: str,
    occurred_at: datetime | None, reason: str | None, peak_cause: str | None, fine_agent: Any,
    recorded_at: datetime,
) -> int | None:  # fmt: skip
    """Store a violation; None when another CTI process stored the same one first."""
    vid = await conn.fetchval(
        """INSERT INTO peak_violations (agent, interface, queue, kind, occurred_at, reason,
                                       peak_cause, fine_agent, recorded_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT (agent, queue, kind, occurred_at) DO NOTHING RETURNING id""",
        agent, interface, queue, kind, occurred_at, reason, peak_cause, fine_agent, recorded_at,
    )  # fmt: skip
    return None if vid is None else int(vid)


async def set_violation_undo(conn: Any, violation_id: int, status: str, error: str | None) -> None:
    """How undoing the violation went (`undone` / `failed` with Asterisk's message)."""
    await conn.execute(
        "UPDATE peak_violations SET undo_status = $2, undo_error = $3 WHERE id = $1",
        violation_id,
        status,
        error,
    )

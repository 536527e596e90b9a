"""R-DATA: supervisors assign contacts to an agent or a group (never a whole list handed over in one
file); every assignment is recalled after at most `outbound.assignment_recall_months` (≤ 10);
exports of customer data are a supervisor right and every attempt is logged, refused ones too."""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg

EXPORT_ROLES = frozenset({"supervisor", "manager", "admin"})


def recall_at(assigned_at: datetime, months: int) -> datetime:
    # 30-day months, as the caps count them (decision 0800): 10 months = 300 days, never more
    return assigned_at + timedelta(days=30 * months)


async def assign(
    conn: asyncpg.Connection,
    contact_ids: list[int],
    *,
    agent: str | None = None,
    group: str | None = None,
    by: str,
    at: datetime,
    months: int,
) -> int:
    """Assign (or re-assign) contacts; the previous live assignment of each is recalled now."""
    if (agent is None) == (group is None):
        raise ValueError("assign to exactly one of an agent or a group")
    async with conn.transaction():
        await conn.execute(
            """UPDATE contact_assignments SET recalled_at = $2
               WHERE contact_id = ANY($1::bigint[]) AND recalled_at IS NULL""",
            contact_ids,
            at,
        )
        r = await conn.execute(
            """INSERT INTO contact_assignments
                   (contact_id, agent, group_name, assigned_by, assigned_at, recall_at)
               SELECT id, $2, $3, $4, $5, $6 FROM contacts WHERE id = ANY($1::bigint[])""",
            contact_ids,
            agent,
            group,
            by,
            at,
            recall_at(at, months),
        )
    return int(r.split()[-1])


async def recall_due(conn: asyncpg.Connection, now: datetime) -> int:
    """Recall every assignment whose time is up (run by the site's leader, e.g. each hour)."""
    r = await conn.execute(
        "UPDATE contact_assignments SET recalled_at = $1 WHERE recall_at <= $1 AND recalled_at IS NULL", now
    )
    return int(r.split()[-1])


async def log_export(
    conn: asyncpg.Connection, *, username: str, role: str, what: str, rows: int, allowed: bool, at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO data_exports (at, username, role, what, rows, allowed) VALUES ($1, $2, $3, $4, $5, $6)",
        at,
        username,
        role,
        what,
        rows,
        allowed,
    )

"""Campaign rows: create, change status, windows, attach contact lists. Each change is an event
(the campaigns trigger writes it, whoever changes the row)."""

from __future__ import annotations

from datetime import time

import asyncpg

from cti.outbound.rules import Window

STATUSES = ("draft", "running", "paused", "stopped")
MODES = ("preview", "progressive", "predictive")


async def create(
    conn: asyncpg.Connection,
    *,
    name: str,
    product: str,
    queue: str,
    did: str,
    mode: str,
    by: str,
    max_attempts: int = 3,
    retry_backoff_s: int = 3600,
    windows: tuple[Window, ...] = (Window("default", time(9), time(21)),),
) -> int:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r} (one of: {', '.join(MODES)})")
    async with conn.transaction():
        cid = await conn.fetchval(
            """INSERT INTO campaigns (name, product, queue, did, mode, max_attempts, retry_backoff_s,
                                      updated_by)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id""",
            name,
            product,
            queue,
            did,
            mode,
            max_attempts,
            retry_backoff_s,
            by,
        )
        await set_windows(conn, cid, windows)
    return int(cid)


async def set_windows(conn: asyncpg.Connection, campaign_id: int, windows: tuple[Window, ...]) -> None:
    await conn.execute("DELETE FROM campaign_windows WHERE campaign_id = $1", campaign_id)
    await conn.executemany(
        "INSERT INTO campaign_windows (campaign_id, segment, start_local, end_local) VALUES ($1, $2, $3, $4)",
        [(campaign_id, w.segment, w.start, w.end) for w in windows],
    )


async def windows_of(conn: asyncpg.Connection, campaign_id: int) -> tuple[Window, ...]:
    rows = await conn.fetch(
        "SELECT segment, start_local, end_local FROM campaign_windows WHERE campaign_id = $1", campaign_id
    )
    return tuple(Window(r["segment"], r["start_local"], r["end_local"]) for r in rows)


async def set_status(conn: asyncpg.Connection, campaign_id: int, status: str, *, by: str) -> None:
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r} (one of: {', '.join(STATUSES)})")
    r = await conn.execute(
        "UPDATE campaigns SET status = $2, updated_by = $3, updated_at = now() WHERE id = $1",
        campaign_id,
        status,
        by,
    )
    if r == "UPDATE 0":
        raise LookupError(f"no campaign {campaign_id}")


async def attach_list(conn: asyncpg.Connection, campaign_id: int, list_id: int) -> int:
    """Add a list's contacts to a campaign; contacts already in it are left as they are."""
    r = await conn.execute(
        """INSERT INTO campaign_contacts (campaign_id, contact_id)
           SELECT $1, contact_id FROM list_members WHERE list_id = $2
           ON CONFLICT DO NOTHING""",
        campaign_id,
        list_id,
    )
    return int(r.split()[-1])

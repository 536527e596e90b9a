"""R-DNC: the do-not-call list by category. Adding a number takes the same per-number lock as the
pre-dial claim, so a dial re-checked after the add sees it, and one claimed before it is cancelled
by the dialer on its next look (the claim row says which dial holds the number)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, get_args

import asyncpg

from cti.outbound.eligibility import number_lock_key

Category = Literal["malicious", "do_not_disturb", "complaint", "refused_all", "public_phone", "special"]
CATEGORIES: tuple[str, ...] = get_args(Category)


class BadCategory(ValueError):
    pass


async def add(
    conn: asyncpg.Connection, number: str, category: str, *, at: datetime, by: str, reason: str | None = None
) -> bool:
    """Put `number` on the list under `category`. False when it already was (nothing changes)."""
    if category not in CATEGORIES:
        raise BadCategory(f"unknown DNC category {category!r} (one of: {', '.join(CATEGORIES)})")
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", number_lock_key(number))
        got = await conn.fetchval(
            """INSERT INTO dnc (number, category, reason, added_at, added_by) VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (number, category) WHERE removed_at IS NULL DO NOTHING RETURNING id""",
            number,
            category,
            reason,
            at,
            by,
        )
    return got is not None


async def remove(conn: asyncpg.Connection, number: str, category: str, *, at: datetime, by: str) -> bool:
    r = await conn.execute(
        """UPDATE dnc SET removed_at = $3, removed_by = $4
           WHERE number = $1 AND category = $2 AND removed_at IS NULL""",
        number,
        category,
        at,
        by,
    )
    return r != "UPDATE 0"


async def active(conn: asyncpg.Connection, number: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT category FROM dnc WHERE number = $1 AND removed_at IS NULL ORDER BY 1", number
    )
    return [r["category"] for r in rows]

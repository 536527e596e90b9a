"""Credited orders from PostgreSQL and the rewards table rebuilt from them."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

import asyncpg

from cti.orders.rewards import CreditedOrder, derive_rewards, period_start


async def credited_orders(conn: asyncpg.Connection, since: datetime, until: datetime) -> list[CreditedOrder]:
    rows = await conn.fetch(
        """SELECT id, owner_agent, created_at, status, duplicate_of FROM orders
           WHERE created_at >= $1 AND created_at < $2 AND owner_agent IS NOT NULL""",
        since,
        until,
    )
    return [
        CreditedOrder(r["id"], r["owner_agent"], r["created_at"], r["status"], r["duplicate_of"])
        for r in rows
    ]


async def rebuild_rewards(
    conn: asyncpg.Connection, since: datetime, until: datetime, tz: tzinfo, policy_at: Any
) -> int:
    """Rewards of every period that starts at/after the month of `since` (a month's champion needs
    the whole month) and ended by `until`."""
    month = period_start(since.astimezone(tz).date(), "month")
    week = period_start(month, "week")
    start = datetime.combine(min(month, week), datetime.min.time(), tz)
    rewards = [
        r
        for r in derive_rewards(await credited_orders(conn, start, until), policy_at, tz, until)
        if r.period_start >= (month if r.period != "week" else week)
    ]
    async with conn.transaction():
        await conn.execute(
            """DELETE FROM rewards WHERE (period <> 'week' AND period_start >= $1)
                                      OR (period = 'week' AND period_start >= $2)""",
            month,
            week,
        )
        await conn.executemany(
            """INSERT INTO rewards (id, kind, period, period_start, agent, orders, amount_fen, derived_at)
               VALUES ($1,$2,$3,$4,$5,$6,$7,$8)""",
            [
                (r.id, r.kind, r.period, r.period_start, r.agent, r.orders, r.amount_fen, until)
                for r in rewards
            ],
        )
    return len(rewards)

"""The data behind the report pages: a day's or a month's figures, fines and champions' race, in one
dict (the page renders it, the JSON API returns it, bench.reports times it)."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from cti.orders.rewards import period_end, period_start
from cti.policy import Policy
from cti.reports import figures as fig


def bounds(first: date, period: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    start = period_start(first, period)
    return datetime.combine(start, time(0), tz), datetime.combine(period_end(start, period), time(0), tz)


async def fines_summary(conn: asyncpg.Connection, since: datetime, until: datetime) -> dict[str, Any]:
    """Fen and points per rule and per person, waived rows excluded (and counted apart)."""
    rows = await conn.fetch(
        """SELECT l.rule, coalesce(l.person, '-') AS person, sum(l.amount_fen) AS fen,
                  sum(l.points) AS points,
                  count(*) AS n, count(w.ledger_id) AS waived
           FROM fine_ledger l LEFT JOIN fine_waivers w ON w.ledger_id = l.id
           WHERE l.occurred_at >= $1 AND l.occurred_at < $2 AND w.ledger_id IS NULL
           GROUP BY 1, 2 ORDER BY 1, 2""",
        since,
        until,
    )
    by_rule: dict[str, int] = {}
    by_person: dict[str, int] = {}
    points: dict[str, int] = {}
    for r in rows:
        by_rule[r["rule"]] = by_rule.get(r["rule"], 0) + int(r["fen"])
        by_person[r["person"]] = by_person.get(r["person"], 0) + int(r["fen"])
        if r["points"]:
            points[r["person"]] = points.get(r["person"], 0) + int(r["points"])
    return {"fen_by_rule": by_rule, "fen_by_person": by_person, "points_by_person": points}


async def race(conn: asyncpg.Connection, day: date, tz: ZoneInfo) -> dict[str, dict[str, int]]:
    """Effective orders per agent so far in the day, week and month containing `day`."""
    out = {}
    for period in ("day", "week", "month"):
        s, e = bounds(day, period, tz)
        out[period] = await fig.orders_by_agent(conn, s, e)
    return out


async def report(
    conn: asyncpg.Connection, day: date, period: str, tz: ZoneInfo, policy: Policy
) -> dict[str, Any]:
    """period: day (grouped by hour) or month (grouped by day)."""
    if period not in ("day", "month"):
        raise ValueError(f"period must be day or month, not {period!r}")
    since, until = bounds(day, period, tz)
    step = "hour" if period == "day" else "day"
    z = str(tz)
    f = await fig.figures_by(conn, since, until, ("total", step, "did", "queue", "agent"), z, policy)
    return {
        "period": period,
        "from": since.isoformat(),
        "to": until.isoformat(),
        "total": f["total"][0].as_dict() if f["total"] else None,
        "by_" + step: [x.as_dict() for x in f[step]],
        "by_did": [x.as_dict() for x in f["did"]],
        "by_queue": [x.as_dict() for x in f["queue"]],
        "by_agent": [x.as_dict() for x in f["agent"]],
        "occupancy": await fig.occupancy(conn, since, until),
        "callbacks": await fig.callbacks(conn, since, until),
        "handling": await fig.handling(conn, since, until, policy),
        "fines": await fines_summary(conn, since, until),
        "race": await race(conn, day, tz),
    }

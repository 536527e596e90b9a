"""Quality beside fines and rewards (issue 17): per agent or team (agents.group_name), per week or
month, in the site's time zone: the customers' survey ratings (seed 001 §51), the reviewed calls'
QA scores (seed 002), fines net of waivers, rewards. One query; CSV/XLSX through cti.reports.exports."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import asyncpg

from cti.fines.money import yuan

COLUMNS = (
    "周期 period",
    "坐席/组 agent/team",
    "评价数 surveys",
    "平均满意度 survey_avg (1-5)",
    "不满意 dissatisfied",
    "质检数 reviewed",
    "平均质检分 qa_avg",
    "致命项 fatal",
    "罚款 fines 元",
    "奖励 rewards 元",
)

# $1 since, $2 until, $3 tz, $4 'week'|'month', $5 reward periods counted, $6 dissatisfied at or below
_SQL = """
WITH who AS (SELECT id, group_name FROM agents),
s AS (SELECT agent, date_trunc($4, at AT TIME ZONE $3)::date AS b, count(score) AS n, avg(score) AS avg,
             count(*) FILTER (WHERE score <= $6) AS bad
        FROM survey_results WHERE at >= $1 AND at < $2 AND agent IS NOT NULL GROUP BY 1, 2),
q AS (SELECT s.agent, date_trunc($4, s.started_at AT TIME ZONE $3)::date AS b, count(*) AS n,
             avg(q.score) AS avg, count(q.fatal) AS fatal
        FROM qa_scores q JOIN qa_samples s ON s.id = q.sample_id
       WHERE s.started_at >= $1 AND s.started_at < $2 GROUP BY 1, 2),
f AS (SELECT l.person AS agent, date_trunc($4, l.occurred_at AT TIME ZONE $3)::date AS b,
             sum(l.amount_fen) AS fen
        FROM fine_ledger l LEFT JOIN fine_waivers w ON w.ledger_id = l.id
       WHERE l.occurred_at >= $1 AND l.occurred_at < $2 AND l.role = 'agent' AND l.person IS NOT NULL
         AND w.ledger_id IS NULL GROUP BY 1, 2),
r AS (SELECT agent, date_trunc($4, period_start::timestamp)::date AS b, sum(amount_fen) AS fen
        FROM rewards WHERE period = ANY($5::text[])
         AND period_start >= ($1 AT TIME ZONE $3)::date AND period_start < ($2 AT TIME ZONE $3)::date
       GROUP BY 1, 2),
k AS (SELECT agent, b FROM s UNION SELECT agent, b FROM q
      UNION SELECT agent, b FROM f UNION SELECT agent, b FROM r)
SELECT k.b, {key} AS key,
       coalesce(sum(s.n), 0) AS surveys, sum(s.avg * s.n) / nullif(sum(s.n), 0) AS survey_avg,
       coalesce(sum(s.bad), 0) AS bad,
       coalesce(sum(q.n), 0) AS reviewed, sum(q.avg * q.n) / nullif(sum(q.n), 0) AS qa_avg,
       coalesce(sum(q.fatal), 0) AS fatal,
       coalesce(sum(f.fen), 0) AS fines_fen, coalesce(sum(r.fen), 0) AS rewards_fen
  FROM k LEFT JOIN who ON who.id = k.agent
  LEFT JOIN s ON s.agent = k.agent AND s.b = k.b
  LEFT JOIN q ON q.agent = k.agent AND q.b = k.b
  LEFT JOIN f ON f.agent = k.agent AND f.b = k.b
  LEFT JOIN r ON r.agent = k.agent AND r.b = k.b
 GROUP BY 1, 2 ORDER BY 1, 2
"""
KEYS = {"agent": "k.agent", "team": "coalesce(who.group_name, '-')"}
REWARD_PERIODS = {"week": ["day", "week"], "month": ["day", "week", "month"]}


def _f(v: Any, nd: int) -> float | None:
    return None if v is None else round(float(v), nd)


async def quality_rows(
    conn: asyncpg.Connection,
    since: datetime,
    until: datetime,
    tz: str,
    bucket: str,
    by: str,
    dissatisfied_at_or_below: int = 2,
) -> list[dict[str, Any]]:
    if bucket not in REWARD_PERIODS or by not in KEYS:
        raise ValueError(f"bucket must be week or month and by agent or team (got {bucket!r}, {by!r})")
    rows = await conn.fetch(
        _SQL.format(key=KEYS[by]), since, until, tz, bucket, REWARD_PERIODS[bucket], dissatisfied_at_or_below
    )
    return [
        {
            "period": r["b"].isoformat(),
            "key": r["key"],
            "surveys": int(r["surveys"]),
            "survey_avg": _f(r["survey_avg"], 2),
            "dissatisfied": int(r["bad"]),
            "reviewed": int(r["reviewed"]),
            "qa_avg": _f(r["qa_avg"], 1),
            "fatal": int(r["fatal"]),
            "fines_fen": int(r["fines_fen"]),
            "rewards_fen": int(r["rewards_fen"]),
        }
        for r in rows
    ]


def as_cells(row: dict[str, Any]) -> list[Any]:
    """One row as the download shows it: money in 元 with two decimals, blanks for no data."""
    blank = "" if row["survey_avg"] is None else row["survey_avg"]
    qa = "" if row["qa_avg"] is None else row["qa_avg"]
    return [row["period"], row["key"], row["surveys"], blank, row["dissatisfied"], row["reviewed"], qa,
            row["fatal"], yuan(row["fines_fen"]), yuan(row["rewards_fen"])]  # fmt: skip


async def aiter_cells(rows: list[dict[str, Any]]) -> AsyncIterator[list[Any]]:
    for r in rows:
        yield as_cells(r)

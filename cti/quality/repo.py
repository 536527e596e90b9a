"""Quality data in PostgreSQL (db/090): forms and their versions, the period's samples, scores.
The decisions are in cti.quality.forms and cti.quality.sampling; this module only reads and writes."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, tzinfo
from typing import Any

import asyncpg

from cti.orders.rewards import period_end, period_start
from cti.policy import QaPolicy
from cti.quality.forms import DEFAULT_FORM, Form, parse_form, score
from cti.quality.sampling import Candidate, Plan, draw

DEFAULT_FORM_NAME = "default"
ALL_TIME = (datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC))


class QualityError(ValueError):
    """A request that cannot be done (no such call, no recording, not sampled): the message says why."""


def period_bounds(day: date, period: str, tz: tzinfo) -> tuple[date, datetime, datetime]:
    start = period_start(day, period)
    return (
        start,
        datetime.combine(start, time(0), tz),
        datetime.combine(period_end(start, period), time(0), tz),
    )


# Reviewable calls: a recording row and an agent. A callback (callback_attempts reached, its
# channel id is the calls' Linkedid) or a follow-up call (followup_calls) wins over the call_facts
# row of the same Linkedid.
_CANDIDATES = """
WITH c AS (
    SELECT channel_id AS linkedid, agent, 'callback' AS kind,
           coalesce(agent_answered_at, recorded_at) AS started_at, 1 AS pref
      FROM callback_attempts WHERE outcome = 'reached' AND recorded_at >= $1 AND recorded_at < $2
    UNION ALL
    SELECT linkedid, agent, 'outbound', called_at, 2
      FROM followup_calls WHERE linkedid IS NOT NULL AND called_at >= $1 AND called_at < $2
    UNION ALL
    SELECT linkedid, answered_by, 'inbound', started_at, 3
      FROM call_facts WHERE outcome = 'answered' AND answered_by IS NOT NULL
       AND started_at >= $1 AND started_at < $2
)
SELECT DISTINCT ON (c.linkedid) c.linkedid, c.agent, c.kind, c.started_at, r.id AS recording_id
  FROM c JOIN recordings r ON r.linkedid = c.linkedid
 WHERE {where}
 ORDER BY c.linkedid, c.pref
"""


async def candidates(conn: asyncpg.Connection, since: datetime, until: datetime) -> list[Candidate]:
    rows = await conn.fetch(_CANDIDATES.format(where="true"), since, until)
    return [Candidate(r["linkedid"], r["agent"], r["kind"], r["started_at"], r["recording_id"]) for r in rows]


async def extra_agents(
    conn: asyncpg.Connection, qa: QaPolicy, start: date, since: datetime, until: datetime, tz: tzinfo
) -> set[str]:
    """Agents who get more calls reviewed: last period's mean QA score below `low_score_below`, or
    a survey rating at or below `complaint_at_or_below` in this period."""
    prev_start = period_start(date.fromordinal(start.toordinal() - 1), qa.period)
    low = await conn.fetch(
        """SELECT s.agent FROM qa_scores q JOIN qa_samples s ON s.id = q.sample_id
           WHERE s.period = $1 AND s.period_start = $2 GROUP BY s.agent HAVING avg(q.score) < $3""",
        qa.period, prev_start, qa.low_score_below,
    )  # fmt: skip
    unhappy = await conn.fetch(
        """SELECT DISTINCT agent FROM survey_results
           WHERE agent IS NOT NULL AND score <= $1 AND at >= $2 AND at < $3""",
        qa.complaint_at_or_below, since, until,
    )  # fmt: skip
    return {r["agent"] for r in low} | {r["agent"] for r in unhappy}


async def draw_period(
    conn: asyncpg.Connection, qa: QaPolicy, day: date, tz: tzinfo, by: str, now: datetime
) -> tuple[Plan, list[dict[str, Any]]]:
    """Draw the period containing `day` and keep the picks (a pick already kept stays as it was).
    Returns the plan and the period's drawn samples."""
    start, since, until = period_bounds(day, qa.period, tz)
    plan = Plan.from_policy(qa, start, await extra_agents(conn, qa, start, since, until, tz))
    picks = draw(await candidates(conn, since, until), plan)
    async with conn.transaction():
        for p in picks:
            c = p.call
            await conn.execute(
                """INSERT INTO qa_samples (period, period_start, linkedid, agent, call_kind, started_at,
                       recording_id, reason, plan_digest, added_by, added_at)
                   VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)
                   ON CONFLICT (period, period_start, linkedid) DO NOTHING""",
                qa.period, start, c.linkedid, c.agent, c.kind, c.started_at, c.recording_id, p.reason,
                plan.digest(), by, now,
            )  # fmt: skip
    return plan, await samples(conn, qa.period, start)


async def add_by_hand(
    conn: asyncpg.Connection, qa: QaPolicy, linkedid: str, tz: tzinfo, by: str, now: datetime
) -> dict[str, Any]:
    """A supervisor adds a call to its period's sample (a complaint, a call worth showing)."""
    row = await conn.fetchrow(
        _CANDIDATES.format(where="c.linkedid = $3"), ALL_TIME[0], ALL_TIME[1], linkedid,
    )  # fmt: skip
    if row is None:
        raise QualityError(f"call {linkedid[:64]!r}: no answered call with a recording / 无此录音通话")
    start = period_start(row["started_at"].astimezone(tz).date(), qa.period)
    await conn.execute(
        """INSERT INTO qa_samples (period, period_start, linkedid, agent, call_kind, started_at, recording_id,
               reason, added_by, added_at) VALUES ($1,$2,$3,$4,$5,$6,$7,'manual',$8,$9)
           ON CONFLICT (period, period_start, linkedid) DO NOTHING""",
        qa.period, start, linkedid, row["agent"], row["kind"], row["started_at"], row["recording_id"],
        by, now,
    )  # fmt: skip
    got = await samples(conn, qa.period, start, linkedid=linkedid)
    return got[0]


async def samples(
    conn: asyncpg.Connection,
    period: str,
    start: date,
    *,
    agent: str | None = None,
    linkedid: str | None = None,
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT s.id, s.period, s.period_start, s.linkedid, s.agent, s.call_kind, s.started_at,
                  s.recording_id, s.reason, s.added_by, q.form_name, q.form_version, q.reviewer, q.answers,
                  q.score, q.fatal, q.comment, q.scored_at
           FROM qa_samples s LEFT JOIN qa_scores q ON q.sample_id = s.id
           WHERE s.period = $1 AND s.period_start = $2 AND ($3::text IS NULL OR s.agent = $3)
             AND ($4::text IS NULL OR s.linkedid = $4)
           ORDER BY s.agent, s.started_at, s.linkedid""",
        period, start, agent, linkedid,
    )  # fmt: skip
    return [_sample(r) for r in rows]


async def scores_of(conn: asyncpg.Connection, agent: str) -> list[dict[str, Any]]:
    """An agent's scored calls, newest first: what the agent's own page shows."""
    rows = await conn.fetch(
        """SELECT s.id, s.period, s.period_start, s.linkedid, s.agent, s.call_kind, s.started_at,
                  s.recording_id, s.reason, s.added_by, q.form_name, q.form_version, q.reviewer, q.answers,
                  q.score, q.fatal, q.comment, q.scored_at
           FROM qa_samples s JOIN qa_scores q ON q.sample_id = s.id
           WHERE s.agent = $1 ORDER BY q.scored_at DESC""",
        agent,
    )
    return [_sample(r) for r in rows]


def _sample(r: Any) -> dict[str, Any]:
    d = dict(r)
    d["answers"] = json.loads(d["answers"]) if d["answers"] else None
    d["score"] = float(d["score"]) if d["score"] is not None else None
    return d


async def sample(conn: asyncpg.Connection, sample_id: int) -> dict[str, Any] | None:
    r = await conn.fetchrow("SELECT period, period_start, linkedid FROM qa_samples WHERE id = $1", sample_id)
    if r is None:
        return None
    got = await samples(conn, r["period"], r["period_start"], linkedid=r["linkedid"])
    return got[0]


async def save_form(conn: asyncpg.Connection, name: str, definition: Any, by: str, now: datetime) -> int:
    """A new version of the form (the first is 1). Scores keep the version they were given with."""
    parse_form(definition)  # FormError names what is wrong
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('qa_forms:' || $1))", name)
        version = await conn.fetchval(
            "SELECT coalesce(max(version), 0) + 1 FROM qa_forms WHERE name = $1", name
        )
        await conn.execute(
            """INSERT INTO qa_forms (name, version, definition, created_by, created_at)
               VALUES ($1,$2,$3,$4,$5)""",
            name, version, json.dumps(definition, ensure_ascii=False), by, now,
        )  # fmt: skip
    return int(version)


async def form(
    conn: asyncpg.Connection, name: str, version: int | None = None
) -> tuple[int, Form, dict[str, Any]] | None:
    row = await conn.fetchrow(
        """SELECT version, definition FROM qa_forms WHERE name = $1 AND ($2::int IS NULL OR version = $2)
           ORDER BY version DESC LIMIT 1""",
        name, version,
    )  # fmt: skip
    if row is None:
        if name == DEFAULT_FORM_NAME and version in (None, 1):
            return 0, parse_form(DEFAULT_FORM), DEFAULT_FORM  # shipped, not yet saved
        return None
    definition = json.loads(row["definition"])
    return row["version"], parse_form(definition), definition


async def forms(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT DISTINCT ON (name) name, version, definition, created_by, created_at FROM qa_forms
           ORDER BY name, version DESC"""
    )
    out = [dict(r) | {"definition": json.loads(r["definition"])} for r in rows]
    if not any(f["name"] == DEFAULT_FORM_NAME for f in out):
        out.insert(0, {"name": DEFAULT_FORM_NAME, "version": 0, "definition": DEFAULT_FORM,
                       "created_by": "shipped", "created_at": None})  # fmt: skip
    return out


async def score_sample(
    conn: asyncpg.Connection,
    sample_id: int,
    form_name: str,
    answers: Any,
    comment: str,
    reviewer: str,
    now: datetime,
) -> dict[str, Any]:
    """Score a sampled call with the form's newest version; a call scored before is re-scored with
    the version it was first scored with, so its score stays comparable with its form."""
    async with conn.transaction():
        existing = await conn.fetchrow(
            "SELECT form_name, form_version FROM qa_scores WHERE sample_id = $1 FOR UPDATE", sample_id
        )
        if await conn.fetchval("SELECT 1 FROM qa_samples WHERE id = $1", sample_id) is None:
            raise QualityError(f"sample {sample_id} does not exist / 无此抽查记录")
        if existing is not None:
            form_name, version = existing["form_name"], existing["form_version"]
        else:
            version = None
        got = await form(conn, form_name, version)
        if got is None:
            raise QualityError(f"form {form_name[:64]!r} does not exist / 无此评分表")
        version, f, definition = got
        if version == 0:  # the shipped default, scored for the first time: keep it as version 1
            version = await save_form(conn, form_name, definition, "shipped", now)
        scored = score(f, answers)
        await conn.execute(
            """INSERT INTO qa_scores (sample_id, form_name, form_version, reviewer, answers, score, fatal,
                   comment, scored_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)
               ON CONFLICT (sample_id) DO UPDATE SET reviewer = $4, answers = $5, score = $6, fatal = $7,
                   comment = $8, scored_at = $9""",
            sample_id, form_name, version, reviewer, json.dumps(scored.answers), scored.score, scored.fatal,
            comment[:4000], now,
        )  # fmt: skip
    got_sample = await sample(conn, sample_id)
    assert got_sample is not None
    return got_sample

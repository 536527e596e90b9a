"""The fines ledger in PostgreSQL: gather the facts, run the pure rules, replace the rows of the
window in one transaction. Waivers live in their own table keyed by the deterministic row id, so they
survive every rebuild."""

from __future__ import annotations

import bisect
import json
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from cti.fines.attendance import logins, roster_between
from cti.fines.rules import (
    Call,
    FineInputs,
    LedgerRow,
    LineTest,
    NamedRequest,
    Pause,
    PeakPause,
    derive_ledger,
    dismissal_flags,
)
from cti.policy import Policy, load_policy

# one rebuild at a time (two CTI processes, or a manager's rebuild during the nightly one)
FINES_LOCK_KEY = 0x6374692D66696E65  # "cti-fine"
WAIVER_ROLES = ("supervisor", "manager", "admin")


class PolicyTimeline:
    """policy_at(t) from policy_value_history, one parsed Policy per distinct change point."""

    def __init__(self, changes: list[tuple[datetime, str, Any]], path: Path | None = None) -> None:
        self.path = path
        self.changes = sorted(changes, key=lambda c: c[0])
        self.times = [c[0] for c in self.changes]
        self._cache: dict[int, Policy] = {}

    @classmethod
    async def load(cls, conn: asyncpg.Connection, path: Path | None = None) -> PolicyTimeline:
        rows = await conn.fetch(
            "SELECT effective_from, key, value FROM policy_value_history ORDER BY effective_from, id"
        )
        return cls(
            [
                (r["effective_from"], r["key"], None if r["value"] is None else json.loads(r["value"]))
                for r in rows
            ],
            path,
        )

    def __call__(self, t: datetime) -> Policy:
        n = bisect.bisect_right(self.times, t)
        p = self._cache.get(n)
        if p is None:
            overrides: dict[str, Any] = {}
            for _at, key, value in self.changes[:n]:
                if value is None:
                    overrides.pop(key, None)
                else:
                    overrides[key] = value
            p = self._cache[n] = load_policy(self.path, overrides)
        return p


def _f(v: Any) -> float | None:
    return None if v is None else float(v)


async def gather(conn: asyncpg.Connection, since: datetime, until: datetime, tz: tzinfo) -> FineInputs:
    """Every fact a violation at/after `since` can come from. Calls start up to 2 h before `since`
    (a call is minutes long); roster and logins from the day before (shifts cross midnight); the
    follow-up week containing `since` from its Monday."""
    local_since = since.astimezone(tz).date()
    monday = local_since - timedelta(days=local_since.weekday())
    week_start = datetime.combine(monday, datetime.min.time(), tz)
    first_day = min(monday, local_since - timedelta(days=1))
    last_day = until.astimezone(tz).date()
    calls = await conn.fetch(
        """SELECT linkedid, started_at, outcome, answered_by, time_to_answer_s, hung_up_first,
                  agents_logged_in, left_queue_at, ended_at,
                  EXISTS (SELECT 1 FROM survey_results s
                          WHERE s.linkedid = call_facts.linkedid AND s.via = 'key') AS to_survey
           FROM call_facts WHERE started_at >= $1 AND started_at < $2""",
        since - timedelta(hours=2),
        until,
    )
    reqs = await conn.fetch(
        """SELECT linkedid, ts, payload->>'preferred' AS agent, payload->>'preferred_reason' AS reason
           FROM events WHERE source = 'agi' AND type = 'route' AND ts >= $1 AND ts < $2
             AND payload->>'preferred' IS NOT NULL""",
        since - timedelta(hours=2),
        until,
    )
    peak = await conn.fetch(
        "SELECT agent, queue, kind, occurred_at FROM peak_violations"
        " WHERE occurred_at >= $1 AND occurred_at < $2",
        since,
        until,
    )
    pauses = await conn.fetch(
        "SELECT agent, queue, reason, started_at FROM agent_pauses"
        " WHERE started_at >= $1 AND started_at < $2",
        since,
        until,
    )
    tests = await conn.fetch(
        "SELECT line, day, slot, result FROM line_tests WHERE day BETWEEN $1 AND $2", first_day, last_day
    )
    follow = await conn.fetch(
        "SELECT agent, called_at FROM followup_calls WHERE called_at >= $1 AND called_at < $2",
        week_start,
        until,
    )
    sup = await conn.fetch("SELECT id, supervisor FROM agents WHERE supervisor IS NOT NULL")
    lines = await conn.fetch("SELECT line FROM test_lines WHERE active ORDER BY line")
    n_days = (last_day - local_since).days + 1
    return FineInputs(
        calls=[
            Call(
                r["linkedid"],
                r["started_at"],
                r["outcome"],
                r["answered_by"],
                _f(r["time_to_answer_s"]),
                r["hung_up_first"],
                r["agents_logged_in"],
                r["left_queue_at"],
                r["ended_at"],
                r["to_survey"],
            )
            for r in calls
        ],
        requests=[
            NamedRequest(r["linkedid"], r["ts"], r["agent"], r["reason"] or "") for r in reqs if r["linkedid"]
        ],
        peak_pauses=[PeakPause(r["agent"], r["queue"], r["kind"], r["occurred_at"]) for r in peak],
        pauses=[Pause(r["agent"], r["queue"], r["reason"], r["started_at"]) for r in pauses],
        logins=await logins(conn, datetime.combine(first_day, datetime.min.time(), tz), until),
        roster=await roster_between(conn, first_day, last_day),
        lines=[r["line"] for r in lines],
        line_tests=[LineTest(r["line"], r["day"], r["slot"], r["result"]) for r in tests],
        followups=[(r["agent"], r["called_at"]) for r in follow],
        supervisor_of={r["id"]: r["supervisor"] for r in sup},
        days=[local_since + timedelta(days=i) for i in range(max(n_days, 0))],
    )


async def rebuild(
    conn: asyncpg.Connection, since: datetime, until: datetime, tz: tzinfo, policy_path: Path | None = None
) -> dict[str, int]:
    """Replace every ledger row that occurred in [since, until) with the rows derived again."""
    policy_at = await PolicyTimeline.load(conn, policy_path)
    inputs = await gather(conn, since, until, tz)
    rows = [r for r in derive_ledger(inputs, policy_at, tz, until) if since <= r.occurred_at < until]
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", FINES_LOCK_KEY)
        await conn.execute(
            "DELETE FROM fine_ledger WHERE occurred_at >= $1 AND occurred_at < $2", since, until
        )
        await conn.copy_records_to_table(
            "fine_ledger",
            records=[
                (
                    r.id,
                    r.violation_id,
                    r.rule,
                    r.person,
                    r.role,
                    r.amount_fen,
                    r.points,
                    r.occurred_at,
                    r.source_kind,
                    r.source_id,
                    orjson.dumps(r.detail, option=orjson.OPT_SORT_KEYS).decode(),
                    until,
                )
                for r in rows
            ],
            columns=[
                "id",
                "violation_id",
                "rule",
                "person",
                "role",
                "amount_fen",
                "points",
                "occurred_at",
                "source_kind",
                "source_id",
                "detail",
                "derived_at",
            ],
        )
        flags = await refresh_flags(conn, since, tz, policy_at)
    return {"rows": len(rows), "violations": len({r.violation_id for r in rows}), "dismissal_flags": flags}


async def refresh_flags(conn: asyncpg.Connection, since: datetime, tz: tzinfo, policy_at: Any) -> int:
    month = since.astimezone(tz).date().replace(day=1)
    start = datetime.combine(month, datetime.min.time(), tz)
    keys = sorted({k for t in (start, since) for k, r in policy_at(t).fines.items() if r.dismissal_after})
    rows = await ledger_rows(conn, start, None, rules=keys)
    waived = {r["ledger_id"] for r in await conn.fetch("SELECT ledger_id FROM fine_waivers")}
    flags = dismissal_flags(rows, waived, policy_at, tz)
    await conn.execute("DELETE FROM dismissal_flags WHERE month >= $1", month)
    await conn.executemany(
        "INSERT INTO dismissal_flags (agent, rule, month, count, flagged_at) VALUES ($1,$2,$3,$4,$5)",
        [(f.agent, f.rule, f.month, f.count, f.flagged_at) for f in flags],
    )
    return len(flags)


async def ledger_rows(
    conn: asyncpg.Connection, since: datetime, until: datetime | None, rules: list[str] | None = None
) -> list[LedgerRow]:
    rows = await conn.fetch(
        """SELECT * FROM fine_ledger WHERE occurred_at >= $1 AND ($2::timestamptz IS NULL OR occurred_at < $2)
             AND ($3::text[] IS NULL OR rule = ANY($3)) ORDER BY occurred_at, id""",
        since,
        until,
        rules,
    )
    return [
        LedgerRow(
            r["id"],
            r["violation_id"],
            r["rule"],
            r["person"],
            r["role"],
            r["amount_fen"],
            r["points"],
            r["occurred_at"],
            r["source_kind"],
            r["source_id"],
            json.loads(r["detail"]),
        )
        for r in rows
    ]


async def ledger_with_waivers(
    conn: asyncpg.Connection, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT l.*, w.waived_by, w.reason AS waiver_reason, w.waived_at
           FROM fine_ledger l LEFT JOIN fine_waivers w ON w.ledger_id = l.id
           WHERE l.occurred_at >= $1 AND l.occurred_at < $2 ORDER BY l.occurred_at, l.id""",
        since,
        until,
    )
    return [dict(r) for r in rows]


class WaiverError(ValueError):
    pass


async def waive(
    conn: asyncpg.Connection,
    ledger_id: str,
    actor: str,
    role: str,
    reason: str,
    at: datetime,
    tz: tzinfo,
    *,
    undo: bool = False,
    policy_path: Path | None = None,
) -> None:
    """A supervisor's or manager's right (an agent cannot waive their own fine); audited."""
    if role not in WAIVER_ROLES:
        raise WaiverError(f"role {role!r} may not waive fines (only {', '.join(WAIVER_ROLES)})")
    if not reason.strip():
        raise WaiverError("a waiver needs a reason")
    async with conn.transaction():
        row = await conn.fetchrow("SELECT occurred_at FROM fine_ledger WHERE id = $1", ledger_id)
        if row is None:
            raise WaiverError(f"no ledger row {ledger_id!r}")
        if undo:
            await conn.execute("DELETE FROM fine_waivers WHERE ledger_id = $1", ledger_id)
        else:
            await conn.execute(
                """INSERT INTO fine_waivers (ledger_id, waived_by, reason, waived_at) VALUES ($1,$2,$3,$4)
                   ON CONFLICT (ledger_id) DO UPDATE SET waived_by = $2, reason = $3, waived_at = $4""",
                ledger_id,
                actor,
                reason,
                at,
            )
        await conn.execute(
            "INSERT INTO fine_waiver_audit (ledger_id, action, actor, role, reason, at)"
            " VALUES ($1,$2,$3,$4,$5,$6)",
            ledger_id,
            "unwaive" if undo else "waive",
            actor,
            role,
            reason,
            at,
        )
        await refresh_flags(conn, row["occurred_at"], tz, await PolicyTimeline.load(conn, policy_path))


def day_bounds(day: date, tz: tzinfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, datetime.min.time(), tz)
    return start, datetime.combine(day + timedelta(days=1), datetime.min.time(), tz)

"""Contact-center figures from `call_facts`, grouped by queue, agent, hour, day, month or DID, in the
site's time zone. One SQL aggregate per request (the month page reads ~90k calls).

Definitions (SPEC "Fines, rewards and reports"):
- offered: calls that reached a queue; answered / abandoned (hung up in queue) / timeout (left unanswered)
- service level (two rings): answered with a queue wait below max_rings whole ring cycles (10 s with
  the China cadence), over offered
- 30-second rule (R-30S): answered within slow_response_s of arrival, over offered
- ASA: mean queue wait of answered calls; AHT: mean talk time (no wrap-up time is recorded yet)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from cti.facts.repo import thresholds
from cti.policy import Policy

GROUPS: dict[str, str] = {
    "total": "'total'",
    "queue": "coalesce(queue, '-')",
    "agent": "coalesce(answered_by, '-')",
    "did": "coalesce(did, '-')",
    "hour": "to_char(started_at AT TIME ZONE $3, 'YYYY-MM-DD HH24:00')",
    "day": "to_char(started_at AT TIME ZONE $3, 'YYYY-MM-DD')",
    "month": "to_char(started_at AT TIME ZONE $3, 'YYYY-MM')",
}


@dataclass(frozen=True, slots=True)
class Figures:
    key: str
    calls: int
    offered: int
    answered: int
    abandoned: int
    timeout: int
    abandon_wait_avg_s: float | None
    sl_two_rings: float | None
    within_30s: float | None
    asa_s: float | None
    aht_s: float | None
    talk_s: float

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


def _r(v: Any, nd: int = 3) -> float | None:
    return None if v is None else round(float(v), nd)


_AGGREGATES = """count(*) AS calls,
                   count(*) FILTER (WHERE outcome <> 'unqueued') AS offered,
                   count(*) FILTER (WHERE outcome = 'answered') AS answered,
                   count(*) FILTER (WHERE outcome = 'abandoned') AS abandoned,
                   count(*) FILTER (WHERE outcome = 'timeout') AS timeout,
                   avg(abandon_wait_s) FILTER (WHERE outcome = 'abandoned') AS abandon_wait,
                   count(*) FILTER (WHERE outcome = 'answered' AND hold_s < $4) AS in_sl,
                   count(*) FILTER (WHERE outcome = 'answered' AND time_to_answer_s <= $5) AS in_30,
                   avg(hold_s) FILTER (WHERE outcome = 'answered') AS asa,
                   avg(talk_s) FILTER (WHERE outcome = 'answered') AS aht,
                   coalesce(sum(talk_s), 0) AS talk"""


# the same figures from facts_hourly's sums and counts (an average is a sum over a count)
_ROLLUP_GROUPS: dict[str, str] = {
    "total": "'total'",
    "queue": "queue",
    "agent": "agent",
    "did": "did",
    "hour": "to_char(hour AT TIME ZONE $3, 'YYYY-MM-DD HH24:00')",
    "day": "to_char(hour AT TIME ZONE $3, 'YYYY-MM-DD')",
    "month": "to_char(hour AT TIME ZONE $3, 'YYYY-MM')",
}
_ROLLUP_AGGREGATES = """sum(calls) AS calls, sum(offered) AS offered, sum(answered) AS answered,
                   sum(abandoned) AS abandoned, sum(timeout) AS timeout,
                   sum(abandon_wait_s) / nullif(sum(abandon_wait_n), 0) AS abandon_wait,
                   sum(in_sl) AS in_sl, sum(in_30) AS in_30,
                   sum(hold_s) / nullif(sum(hold_n), 0) AS asa,
                   sum(answered_talk_s) / nullif(sum(answered_talk_n), 0) AS aht,
                   sum(talk_s) AS talk"""


def _figures(key: str, r: Any) -> Figures:
    off = int(r["offered"])
    return Figures(
        key, int(r["calls"]), off, int(r["answered"]), int(r["abandoned"]), int(r["timeout"]),
        _r(r["abandon_wait"]),
        _r(r["in_sl"] / off, 4) if off else None, _r(r["in_30"] / off, 4) if off else None,
        _r(r["asa"]), _r(r["aht"]), float(r["talk"]),
    )  # fmt: skip


async def figures(
    conn: asyncpg.Connection, since: datetime, until: datetime, group: str, tz: str, policy: Policy
) -> list[Figures]:
    return (await figures_by(conn, since, until, (group,), tz, policy))[group]


def _whole_hours(since: datetime, until: datetime, tz: str) -> bool:
    """Can UTC hours be regrouped into this window's local hours, days and months? Both ends on a
    UTC hour, and the zone a whole number of hours from UTC at both ends (Asia/Shanghai always is)."""
    z = ZoneInfo(tz)
    for t in (since, until):
        u = t.astimezone(UTC)
        off = t.astimezone(z).utcoffset()
        if (u.minute, u.second, u.microsecond) != (0, 0, 0) or off is None or off.total_seconds() % 3600:
            return False
    return True


async def _rollups_serve(
    conn: asyncpg.Connection, since: datetime, until: datetime, tz: str, policy: Policy
) -> bool:
    """The hourly rollups answer for this window when it is made of whole hours and every rollup row
    in it was counted with the thresholds in force now (a changed ring policy re-reads call_facts)."""
    if not _whole_hours(since, until, tz):
        return False
    stale = await conn.fetchval(
        """SELECT EXISTS (SELECT 1 FROM facts_hourly WHERE hour >= $1 AND hour < $2
                          AND (sl_s <> $3::numeric OR in_30_s <> $4::numeric))""",
        since, until, *thresholds(policy.ring),
    )  # fmt: skip
    return not stale


async def figures_by(
    conn: asyncpg.Connection,
    since: datetime,
    until: datetime,
    groups: Sequence[str],
    tz: str,
    policy: Policy,
    *,
    rollups: bool = True,
) -> dict[str, list[Figures]]:
    """Several groupings in ONE scan of the window (GROUPING SETS): a month page needs five. Read from
    the hourly rollups (`facts_hourly`, kept by the facts writer) when they can answer, else from
    call_facts; both give the same figures (tested)."""
    for g in groups:
        if g not in GROUPS:
            raise ValueError(f"group must be one of {', '.join(GROUPS)}, not {g!r}")
    sets = ", ".join(f"(g{i})" for i in range(len(groups)))
    gs = ", ".join(f"g{i}" for i in range(len(groups)))
    which = f"GROUPING({gs})"
    if rollups and await _rollups_serve(conn, since, until, tz, policy):
        cols = ", ".join(f"{_ROLLUP_GROUPS[g]} AS g{i}" for i, g in enumerate(groups))
        rows = await conn.fetch(
            f"""SELECT {which} AS which, {gs}, {_ROLLUP_AGGREGATES}
                FROM (SELECT *, {cols} FROM facts_hourly
                      WHERE hour >= $1 AND hour < $2 AND ($3::text IS NOT NULL)) c
                GROUP BY GROUPING SETS ({sets})""",
            since, until, tz,
        )  # fmt: skip
    else:
        cols = ", ".join(f"{GROUPS[g]} AS g{i}" for i, g in enumerate(groups))
        rows = await conn.fetch(
            f"""SELECT {which} AS which, {gs}, {_AGGREGATES}
                FROM (SELECT *, {cols} FROM call_facts
                      WHERE started_at >= $1 AND started_at < $2 AND ($3::text IS NOT NULL)) c
                GROUP BY GROUPING SETS ({sets})""",
            since, until, tz, *thresholds(policy.ring),
        )  # fmt: skip
    n = len(groups)
    out: dict[str, list[Figures]] = {g: [] for g in groups}
    for r in rows:
        # GROUPING() has a 1 bit for each column NOT in the row's set: the set is the one 0 bit
        i = next(i for i in range(n) if not (r["which"] >> (n - 1 - i)) & 1)
        out[groups[i]].append(_figures(r[f"g{i}"], r))
    for g in groups:
        out[g].sort(key=lambda f: f.key)
    return out


async def occupancy(conn: asyncpg.Connection, since: datetime, until: datetime) -> dict[str, float | None]:
    """Per agent: talk time over logged-in time within [since, until) (login facts via agent_sessions)."""
    rows = await conn.fetch(
        """WITH s AS (
             SELECT agent,
                    sum(extract(epoch FROM least(coalesce(logout_at, $2), $2) - greatest(login_at, $1)))
                    AS logged
             FROM (SELECT DISTINCT agent, login_at, logout_at FROM agent_sessions) x
             WHERE login_at < $2 AND (logout_at IS NULL OR logout_at > $1) GROUP BY agent),
           t AS (SELECT answered_by AS agent, sum(talk_s) AS talk FROM call_facts
                 -- started_at bounds: the index (a call is answered within an hour of its start)
                 WHERE started_at >= $1::timestamptz - interval '1 hour' AND started_at < $2
                   AND answered_at >= $1 AND answered_at < $2 AND answered_by IS NOT NULL GROUP BY 1)
           SELECT s.agent, s.logged, coalesce(t.talk, 0) AS talk
           FROM s LEFT JOIN t USING (agent) ORDER BY 1""",
        since,
        until,
    )
    return {
        r["agent"]: (round(float(r["talk"]) / float(r["logged"]), 4) if r["logged"] else None) for r in rows
    }


async def callbacks(conn: asyncpg.Connection, since: datetime, until: datetime) -> dict[str, Any]:
    r = await conn.fetchrow(
        """SELECT count(*) AS created,
                  count(*) FILTER (WHERE status = 'done') AS completed,
                  avg(extract(epoch FROM updated_at - first_call_at)) FILTER (WHERE status = 'done') AS ttc
           FROM callbacks WHERE created_at >= $1 AND created_at < $2""",
        since,
        until,
    )
    return {"created": r["created"], "completed": r["completed"], "time_to_callback_avg_s": _r(r["ttc"])}


async def orders_by_agent(conn: asyncpg.Connection, since: datetime, until: datetime) -> dict[str, int]:
    """Effective orders credited per agent (R-FIRST-OWNER: owner_agent) created in [since, until)."""
    rows = await conn.fetch(
        """SELECT owner_agent, count(*) AS n FROM orders
           WHERE created_at >= $1 AND created_at < $2 AND owner_agent IS NOT NULL AND duplicate_of IS NULL
             AND status NOT IN ('cancelled', 'returned') GROUP BY 1 ORDER BY 1""",
        since,
        until,
    )
    return {r["owner_agent"]: r["n"] for r in rows}


async def handling(
    conn: asyncpg.Connection, since: datetime, until: datetime, policy: Policy
) -> dict[str, Any]:
    """Per agent and call kind: answered calls and the share whose talk time is within the seed-004
    target (inquiry ≤ 3 min, booking ≤ 1 min, follow-up ≤ 3 min). A call is a follow-up when it is in
    `followup_calls`, a booking when the caller got an order from that agent between the answer and
    10 minutes after the call (no disposition is recorded yet), otherwise an inquiry."""
    t = policy.handling_targets_s
    rows = await conn.fetch(
        """WITH c AS (
             SELECT linkedid, answered_by, talk_s, caller_num, answered_at, ended_at FROM call_facts
             WHERE started_at >= $1::timestamptz - interval '1 hour' AND started_at < $2
               AND answered_at >= $1 AND answered_at < $2 AND answered_by IS NOT NULL),
           b AS (
             SELECT DISTINCT c.linkedid FROM c
             JOIN customers cu ON cu.number = c.caller_num
             JOIN orders o ON o.customer_id = cu.id AND o.owner_agent = c.answered_by
                          AND o.created_at >= c.answered_at
                          AND o.created_at < coalesce(c.ended_at, c.answered_at) + interval '10 minutes'),
           u AS (SELECT DISTINCT linkedid FROM followup_calls WHERE linkedid IN (SELECT linkedid FROM c)),
           k AS (
             SELECT c.answered_by AS agent, c.talk_s,
                    CASE WHEN u.linkedid IS NOT NULL THEN 'followup'
                         WHEN b.linkedid IS NOT NULL THEN 'booking' ELSE 'inquiry' END AS kind
             FROM c LEFT JOIN u USING (linkedid) LEFT JOIN b USING (linkedid))
           SELECT agent, kind, count(*) AS n,
                  count(*) FILTER (WHERE talk_s <= CASE kind WHEN 'booking' THEN $4::numeric
                                     WHEN 'followup' THEN $5::numeric ELSE $3::numeric END) AS within
           FROM k GROUP BY 1, 2 ORDER BY 1, 2""",
        since, until, t.inquiry, t.booking, t.followup,
    )  # fmt: skip
    out: dict[str, Any] = {}
    for r in rows:
        out.setdefault(r["agent"], {})[r["kind"]] = {
            "calls": r["n"],
            "within_target": _r(r["within"] / r["n"], 4),
        }
    return out

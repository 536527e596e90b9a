"""`cti compliance audit`: every dial in the log re-checked against the rules as they stood when it
was made (its stored rule set, the DNC list's add/remove history, the calls before it).

Written on purpose WITHOUT the eligibility SQL or `rules.quiet_until`: plain Python over the raw
rows, counting calls in sliding windows, so a bug in the dialer's query or in the cap summary shows
up here as a violation instead of being repeated."""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import orjson

from cti.masking import mask_number


@dataclass(frozen=True)
class Violation:
    dial_id: int
    dialed_at: datetime
    campaign_id: int
    number_masked: str
    rule: str  # R-DNC, R-CAPS, ...
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "dial_id": self.dial_id,
            "dialed_at": self.dialed_at.isoformat(),
            "campaign_id": self.campaign_id,
            "number": self.number_masked,
            "rule": self.rule,
            "reason": self.reason,
        }


def _count_in(times: Sequence[datetime], lo: datetime, hi: datetime) -> int:
    """How many of the sorted `times` lie in the open interval (lo, hi)."""
    a = bisect_left(times, lo)
    while a < len(times) and times[a] <= lo:
        a += 1
    return bisect_left(times, hi) - a


def _window_ok(rules: dict[str, Any], segment: str, at: datetime) -> tuple[bool, str]:
    local = at.astimezone(ZoneInfo(rules["tz"])).time()
    windows = [(s, time.fromisoformat(a), time.fromisoformat(b)) for s, a, b in rules["windows"]]
    use = [w for w in windows if w[0] == segment] or [w for w in windows if w[0] == "default"]
    return any(a <= local < b for _, a, b in use), local.strftime("%H:%M:%S")


def check_dials(
    dials: Iterable[dict[str, Any]],
    history: Iterable[dict[str, Any]],
    dnc_rows: Iterable[dict[str, Any]],
    rule_sets: dict[int, dict[str, Any]],
    max_attempts: dict[int, int],
) -> list[Violation]:
    """Pure: `dials` to judge; `history` every dial of the same numbers (including `dials`)."""
    by_number: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for h in history:
        by_number[h["number"]].append(h)
    for rows in by_number.values():
        rows.sort(key=lambda r: (r["dialed_at"], r["id"]))
    dnc_by_number: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for d in dnc_rows:
        dnc_by_number[d["number"]].append(d)

    out: list[Violation] = []
    for d in sorted(dials, key=lambda r: (r["dialed_at"], r["id"])):
        t, num, rules = d["dialed_at"], d["number"], rule_sets[d["rule_set_id"]]
        month = timedelta(days=rules["month_days"])
        year = timedelta(days=rules["year_days"])
        quiet = timedelta(days=rules["quiet_months"] * rules["month_days"])
        gap = timedelta(days=rules["product_gap_days"])
        answer_mode = rules["count_at"] == "answer"

        def bad(rule: str, reason: str, d: dict[str, Any] = d) -> None:
            out.append(
                Violation(d["id"], d["dialed_at"], d["campaign_id"], mask_number(d["number"]), rule, reason)
            )

        for entry in dnc_by_number.get(num, ()):
            if entry["added_at"] <= t and (entry["removed_at"] is None or entry["removed_at"] > t):
                bad("R-DNC", f"number on the {entry['category']} list since {entry['added_at'].isoformat()}")

        ok, local = _window_ok(rules, d["segment"], t)
        if not ok:
            bad("R-CAPS", f"outside the call window of segment {d['segment']!r} ({local} {rules['tz']})")

        before = [h for h in by_number[num] if (h["dialed_at"], h["id"]) < (t, d["id"])]
        counted = [
            h["dialed_at"]
            for h in before
            if not answer_mode or (h["answered_at"] is not None and h["answered_at"] <= t)
        ]
        if rules["per_month"] >= 1:
            n = _count_in(counted, t - month, t + timedelta(microseconds=1))
            if n >= rules["per_month"]:
                bad("R-CAPS", f"call {n + 1} within {rules['month_days']} days (max {rules['per_month']})")
            else:
                # a call that completed the month's cap starts a quiet period
                for c in counted:
                    if (
                        t < c + quiet
                        and _count_in(counted, c - month, c + timedelta(microseconds=1)) >= rules["per_month"]
                    ):
                        bad(
                            "R-CAPS",
                            f"within the {rules['quiet_months']}-month quiet period after {c.isoformat()}",
                        )
                        break
        n_year = _count_in(counted, t - year, t + timedelta(microseconds=1))
        if n_year >= rules["per_year"]:
            bad("R-CAPS", f"call {n_year + 1} within {rules['year_days']} days (max {rules['per_year']})")

        same = [h for h in before if h["product"] == d["product"]]
        last_same = [
            h["dialed_at"]
            for h in same
            if not answer_mode or (h["answered_at"] is not None and h["answered_at"] <= t)
        ]
        if last_same and t - max(last_same) < gap:
            days = (t - max(last_same)).total_seconds() / 86400
            bad(
                "R-CAPS",
                f"same product {d['product']!r} {days:.1f} days after the last call (min {gap.days})",
            )
        refusals = sum(1 for h in same if h["disposition"] == "refusal")
        if refusals >= rules["refusals_end_product"]:
            bad("R-CAPS", f"product {d['product']!r} refused {refusals} times before")

        live = [h for h in before if h["ended_at"] is None or h["ended_at"] > t]
        if live:
            bad("R-CAPS", f"dialed while dial {live[0]['id']} to the same number was still live")
        mine = [h for h in before if h["campaign_id"] == d["campaign_id"]]
        tries = len(mine)
        limit = max_attempts.get(d["campaign_id"])
        if limit is not None:
            # a hesitant customer (no_decision) keeps one attempt for the follow-up (R-FOLLOWUP):
            # the attempts up to the last such dial count at most limit - 1
            hesitant = [i for i, h in enumerate(mine) if h["disposition"] == "no_decision"]
            forgiven = max(0, hesitant[-1] + 1 - (limit - 1)) if hesitant else 0
            if tries - forgiven >= limit:
                bad("R-CAPS", f"attempt {tries + 1} for this contact in the campaign (max {limit})")
    return out


def agent_overlaps(dials: Iterable[dict[str, Any]]) -> list[Violation]:
    """R-PACE: a dial claimed for an agent while another dial still held that agent."""
    by_agent: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for d in dials:
        if d["agent"]:
            by_agent[d["agent"]].append(d)
    out: list[Violation] = []
    for agent, rows in by_agent.items():
        rows.sort(key=lambda r: (r["dialed_at"], r["id"]))
        holder: dict[str, Any] | None = None  # the dial that frees the agent last
        for d in rows:
            if holder is not None and (holder["ended_at"] is None or holder["ended_at"] > d["dialed_at"]):
                reason = f"agent {agent} already held by dial {holder['id']}"
                out.append(
                    Violation(
                        d["id"], d["dialed_at"], d["campaign_id"], mask_number(d["number"]), "R-PACE", reason
                    )
                )
            if holder is None or (
                holder["ended_at"] is not None
                and (d["ended_at"] is None or d["ended_at"] > holder["ended_at"])
            ):
                holder = d
    return out


_DIAL_COLS = ", ".join(
    [
        *("id", "campaign_id", "number", "product", "segment", "agent", "rule_set_id"),
        *("dialed_at", "answered_at", "ended_at", "disposition"),
    ]
)


async def audit(conn: asyncpg.Connection, since: datetime, until: datetime | None = None) -> list[Violation]:
    """Load what the check needs (dials since `since`, the history of their numbers, their DNC
    history, the rule sets) and run `check_dials`. Numbers are taken in chunks to bound memory."""
    until = until or datetime.max.replace(tzinfo=since.tzinfo)
    numbers = [
        r["number"]
        for r in await conn.fetch(
            "SELECT DISTINCT number FROM dials WHERE dialed_at >= $1 AND dialed_at < $2", since, until
        )
    ]
    rule_sets = {
        r["id"]: orjson.loads(r["body"])
        for r in await conn.fetch("SELECT id, body::text AS body FROM outbound_rule_sets")
    }
    max_attempts = {
        r["id"]: r["max_attempts"] for r in await conn.fetch("SELECT id, max_attempts FROM campaigns")
    }
    out: list[Violation] = []
    chunk = 20_000
    for i in range(0, len(numbers), chunk):
        part = numbers[i : i + chunk]
        history = [
            dict(r) for r in await conn.fetch(f"SELECT {_DIAL_COLS} FROM dials WHERE number = ANY($1)", part)
        ]
        dials = [h for h in history if since <= h["dialed_at"] < until]
        dnc_rows = [
            dict(r)
            for r in await conn.fetch(
                "SELECT number, category, added_at, removed_at FROM dnc WHERE number = ANY($1)", part
            )
        ]
        out += check_dials(dials, history, dnc_rows, rule_sets, max_attempts)
    # an agent's dials may span numbers in different chunks: checked over the whole period at once
    held = await conn.fetch(
        f"""SELECT {_DIAL_COLS} FROM dials
            WHERE agent IS NOT NULL AND dialed_at >= $1::timestamptz - interval '1 day' AND dialed_at < $2""",
        since,
        until,
    )
    out += [v for v in agent_overlaps(dict(r) for r in held) if v.dialed_at >= since]
    out.sort(key=lambda v: (v.dialed_at, v.dial_id))
    return out

"""Scheduled reports (seed 000 §17 §18): 11:30 and 16:30 inbound calls and orders so far today,
08:10 the call log of three days ago for after-sales, per-agent figures at each shift's end.

`due_slots` is pure (injected time); `run_due` claims each due slot with an INSERT on the
(kind, day) primary key, so with two CTI processes each slot runs once, and a process that starts
after a slot (restart, outage) runs it then: the catch-up. A report covers its slot's period (so far
today *as of the slot time*), not the moment it happened to run, so a late run says the same thing.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import structlog

from cti.clock import Clock, SystemClock
from cti.db.connect import CONNECT_TIMEOUT_S, close_bounded
from cti.policy import Policy
from cti.reports import figures as fig
from cti.tasks import stop_tasks

log = structlog.get_logger(__name__)

MIDDAY, AFTERNOON, CALL_LOG = time(11, 30), time(16, 30), time(8, 10)
CALL_LOG_DAYS_BACK = 3
STALE_CLAIM = timedelta(minutes=10)  # a claim this old without a result was left by a dead process


@dataclass(frozen=True, slots=True)
class Slot:
    kind: str
    day: date
    due_at: datetime


def slots_of(day: date, policy: Policy, tz: ZoneInfo) -> list[Slot]:
    out = [
        Slot("midday", day, datetime.combine(day, MIDDAY, tz)),
        Slot("afternoon", day, datetime.combine(day, AFTERNOON, tz)),
        Slot("after_sales_log", day, datetime.combine(day, CALL_LOG, tz)),
    ]
    for s in policy.shifts:
        end = datetime.combine(day, s.end, tz)
        if s.end <= s.start:
            end += timedelta(days=1)
        out.append(Slot(f"shift_end:{s.name}", day, end))
    return out


def due_slots(now: datetime, policy: Policy, tz: ZoneInfo, catch_up_days: int = 2) -> list[Slot]:
    """Slots due by `now` from the last `catch_up_days` days (older ones are history, not catch-up)."""
    today = now.astimezone(tz).date()
    out = []
    for i in range(catch_up_days, -1, -1):
        out += [s for s in slots_of(today - timedelta(days=i), policy, tz) if s.due_at <= now]
    return sorted(out, key=lambda s: (s.due_at, s.kind))


def _day(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tz)
    return start, datetime.combine(day + timedelta(days=1), time(0), tz)


async def build(conn: asyncpg.Connection, slot: Slot, policy: Policy, tz: ZoneInfo) -> dict[str, Any]:
    start, _end = _day(slot.day, tz)
    if slot.kind in ("midday", "afternoon"):
        (total,) = await fig.figures(conn, start, slot.due_at, "total", str(tz), policy) or [None]
        orders = await fig.orders_by_agent(conn, start, slot.due_at)
        return {
            "as_of": slot.due_at.isoformat(),
            "inbound": total.as_dict() if total else None,
            "orders": {"total": sum(orders.values()), "by_agent": orders},
        }
    if slot.kind == "after_sales_log":
        day = slot.day - timedelta(days=CALL_LOG_DAYS_BACK)
        s, e = _day(day, tz)
        n = await conn.fetchval(
            "SELECT count(*) FROM call_facts WHERE started_at >= $1 AND started_at < $2", s, e
        )
        return {"log_day": day.isoformat(), "calls": n}
    per_agent = await fig.figures(conn, start, slot.due_at, "agent", str(tz), policy)
    occ = await fig.occupancy(conn, start, slot.due_at)
    handling = await fig.handling(conn, start, slot.due_at, policy)
    return {
        "as_of": slot.due_at.isoformat(),
        "agents": {
            f.key: {**f.as_dict(), "occupancy": occ.get(f.key), "handling": handling.get(f.key, {})}
            for f in per_agent
            if f.key != "-"
        },
    }


def process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def run_due(
    conn: asyncpg.Connection, now: datetime, policy: Policy, tz: ZoneInfo, me: str | None = None
) -> list[Slot]:
    """Claim and run every due slot nobody has run; returns the slots this process ran."""
    me = me or process_name()
    ran = []
    for slot in due_slots(now, policy, tz):
        claimed = await conn.fetchval(
            """INSERT INTO report_runs (kind, day, due_at, claimed_by, claimed_at) VALUES ($1,$2,$3,$4,$5)
               ON CONFLICT (kind, day) DO UPDATE
                 SET claimed_by = EXCLUDED.claimed_by, claimed_at = EXCLUDED.claimed_at
                 WHERE report_runs.finished_at IS NULL AND report_runs.claimed_at < $5 - $6::interval
               RETURNING true""",
            slot.kind,
            slot.day,
            slot.due_at,
            me,
            now,
            STALE_CLAIM,
        )
        if not claimed:
            continue
        out = await build(conn, slot, policy, tz)
        await conn.execute(
            "UPDATE report_runs SET finished_at = $3, output = $4::jsonb WHERE kind = $1 AND day = $2",
            slot.kind,
            slot.day,
            now,
            json.dumps(out, ensure_ascii=False),
        )
        log.info("scheduled report", kind=slot.kind, day=slot.day.isoformat())
        ran.append(slot)
    return ran


class ReportScheduler:
    """Checks for due slots every `interval_s`; safe to run in every CTI process."""

    def __init__(
        self, dsn: str, policy: Policy, tz: ZoneInfo, clock: Clock | None = None, interval_s: float = 30
    ):
        self.dsn, self.policy, self.tz = dsn, policy, tz
        self.clock: Clock = clock or SystemClock()
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> list[Slot]:
        conn = await asyncpg.connect(self.dsn, timeout=CONNECT_TIMEOUT_S)
        try:
            return await run_due(conn, self.clock.now(), self.policy, self.tz)
        finally:
            await close_bounded(conn)

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except (OSError, asyncpg.PostgresError) as e:  # runs again at the next tick: catch-up
                log.warning("scheduled reports failed", error=type(e).__name__, detail=str(e)[:200])
            await self.clock.sleep(self.interval_s)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="report-scheduler")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await stop_tasks([task])  # called from the leadership task: its own cancel gets through

"""Scheduled reports: which slots are due when (site time zone), each run once by two processes
racing for it, and a claim left by a dead process taken over later."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from cti.policy import load_policy
from cti.reports.schedule import due_slots, run_due

TZ = ZoneInfo("Asia/Shanghai")


def test_due_slots_in_the_site_time_zone() -> None:
    p = load_policy()
    # 08:15 in Shanghai is 00:15 UTC: today's 08:10 call log is due, 11:30 is not
    now = datetime(2026, 11, 16, 8, 15, tzinfo=TZ)
    today = [
        (s.kind, s.due_at.astimezone(TZ).strftime("%H:%M")) for s in due_slots(now, p, TZ, catch_up_days=0)
    ]
    assert today == [("after_sales_log", "08:10")]
    # a process started at 08:15 after two days down catches up both earlier days' slots
    kinds = [(s.day, s.kind) for s in due_slots(now, p, TZ, catch_up_days=2)]
    assert kinds[:6] == [
        (date(2026, 11, 14), "after_sales_log"),
        (date(2026, 11, 14), "midday"),
        (date(2026, 11, 14), "afternoon"),
        (date(2026, 11, 14), "shift_end:morning"),
        (date(2026, 11, 14), "shift_end:middle"),
        (date(2026, 11, 15), "after_sales_log"),
    ]
    assert len(kinds) == 11


async def test_two_processes_racing_run_each_slot_once(db_url: str) -> None:
    p = load_policy()
    now = datetime(2026, 11, 16, 18, 5, tzinfo=TZ)
    a, b = await asyncpg.connect(db_url), await asyncpg.connect(db_url)
    try:
        ran_a, ran_b = await asyncio.gather(run_due(a, now, p, TZ, me="a"), run_due(b, now, p, TZ, me="b"))
        keys_a = {(s.kind, s.day) for s in ran_a}
        keys_b = {(s.kind, s.day) for s in ran_b}
        assert not keys_a & keys_b
        assert keys_a | keys_b == {(s.kind, s.day) for s in due_slots(now, p, TZ)}
        rows = await a.fetch("SELECT kind, day, claimed_by, finished_at FROM report_runs")
        assert len(rows) == 15 and all(r["finished_at"] is not None for r in rows)
        # the 08:10 call log of day D lists day D-3
        out = await a.fetchval(
            "SELECT output->>'log_day' FROM report_runs WHERE kind = 'after_sales_log' AND day = '2026-11-16'"
        )
        assert out == "2026-11-13"
        # a claim a crashed process left unfinished is taken over after 10 minutes, not before
        await a.execute(
            "UPDATE report_runs SET finished_at = NULL, output = NULL, claimed_by = 'dead', claimed_at = $1"
            " WHERE kind = 'midday' AND day = '2026-11-16'",
            now,
        )
        assert await run_due(b, now + timedelta(minutes=5), p, TZ, me="b") == []
        (again,) = await run_due(b, now + timedelta(minutes=11), p, TZ, me="b")
        assert (again.kind, again.day) == ("midday", date(2026, 11, 16))
    finally:
        await a.close()
        await b.close()

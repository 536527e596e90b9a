"""The ledger kept current under the leader (cti.fines.refresh): a call an agent hung up on this
morning is on the ledger — and on the agent's desk as today's fine — after the next refresh, without
anyone running `cti fines rebuild`; a waiver survives the refreshes that follow."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from cti.desk import repo as desk_repo
from cti.fines import refresh

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 18, 11, 0, tzinfo=TZ)


def test_the_window_is_yesterday_and_today_in_the_site_time_zone() -> None:
    since, until = refresh.window(NOW, TZ)
    assert since == datetime(2026, 11, 17, 0, 0, tzinfo=TZ) and until == NOW
    # 07:30 in Shanghai is still the previous evening in UTC: the day is the site's
    since, _ = refresh.window(datetime(2026, 11, 18, 7, 30, tzinfo=TZ).astimezone(ZoneInfo("UTC")), TZ)
    assert since == datetime(2026, 11, 17, 0, 0, tzinfo=TZ)


async def test_todays_fine_reaches_the_desk_and_a_waiver_stays(db: asyncpg.Connection) -> None:
    started = NOW - timedelta(hours=2)
    await db.execute(
        """INSERT INTO call_facts (linkedid, started_at, ended_at, outcome, answered_by, queue, hung_up_first)
           VALUES ('200.1', $1, $2, 'answered', 'agent1', 'sales', 'agent')""",
        started, started + timedelta(minutes=3),
    )  # fmt: skip
    day_start = datetime(2026, 11, 18, tzinfo=TZ)
    assert (await desk_repo.day_points(db, "agent1", day_start))["fines_yuan"] == "0.00"
    await refresh.refresh(db, NOW, TZ)
    assert (await desk_repo.day_points(db, "agent1", day_start))["fines_yuan"] == "20.00"
    ledger_id = await db.fetchval("SELECT id FROM fine_ledger WHERE person = 'agent1'")
    await db.execute(
        "INSERT INTO fine_waivers (ledger_id, waived_by, reason, waived_at)"
        " VALUES ($1, 'wang', '客户要求', $2)",
        ledger_id, NOW,
    )  # fmt: skip
    await refresh.refresh(db, NOW + refresh.EVERY, TZ)
    assert await db.fetchval("SELECT id FROM fine_ledger WHERE person = 'agent1'") == ledger_id
    assert (await desk_repo.day_points(db, "agent1", day_start))["fines_yuan"] == "0.00"  # waived, still

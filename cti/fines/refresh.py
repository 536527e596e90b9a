"""The ledger kept current while the center works: the leader rebuilds yesterday and today every few
minutes, so the desk's 今日罚款, the wallboard and the report pages show today's fines without anyone
running `cti fines rebuild` (which stays for corrections and older periods). A rebuild is idempotent
and deterministic (decision 0600); waivers survive it."""

from __future__ import annotations

from datetime import datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any

from cti.fines import repo

EVERY = timedelta(minutes=5)


def window(now: datetime, tz: tzinfo) -> tuple[datetime, datetime]:
    """[yesterday 00:00 local, now): yesterday too, for shifts that cross midnight and facts that
    arrive late; a week's follow-up shortfall (priced at Sunday's last instant) lands on Monday."""
    local = now.astimezone(tz)
    return datetime.combine(local.date() - timedelta(days=1), time.min, tz), now


async def refresh(conn: Any, now: datetime, tz: tzinfo, policy_path: Path | None = None) -> dict[str, int]:
    since, until = window(now, tz)
    return await repo.rebuild(conn, since, until, tz, policy_path)

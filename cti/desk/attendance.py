"""R-LATE and R-STATUS as pure decisions of (shift, the agent's facts, now): no clock, no I/O.

The shift an agent works comes from the roster when one exists for the day (the fines work's
`roster` table), else from the policy's first shift (`shift_for`). Each function answers one
question and returns a Violation or None; the desk's watcher turns them into events once each.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cti.policy import Shift

AFTER_SHIFT_GRACE = timedelta(minutes=15)  # R-STATUS: "not logged out within 15 min of shift end"
RNA_IN_A_ROW = 2  # R-STATUS: rung while ready and not answering twice in a row = left the seat
AUTO_PAUSE = "Auto-Pause"  # app_queue's reason when autopause pauses a member (capture 02)


@dataclass(frozen=True, slots=True)
class Violation:
    rule: str  # late_login | early_logout | left_seat | not_logged_out
    agent: str
    at: datetime
    detail: str


def shift_bounds(shift: Shift, day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, shift.start, tz)
    end = datetime.combine(day, shift.end, tz)
    if end <= start:  # a night shift ends the next day
        end += timedelta(days=1)
    return start, end


def shift_for(agent: str, group: str, roster: Iterable[Mapping[str, Any]], shifts: Sequence[Shift]) -> Shift:
    """The roster row naming the agent (or, failing that, the agent's group) wins; else the first
    policy shift, so attendance is judged even before anyone enters a roster."""
    by_name = {s.name: s for s in shifts}
    rows = list(roster)
    for r in rows:
        if agent in (r.get("agents") or ()) and r.get("shift") in by_name:
            return by_name[r["shift"]]
    for r in rows:
        if r.get("group_name") == group and not r.get("agents") and r.get("shift") in by_name:
            return by_name[r["shift"]]
    return shifts[0]


def late_login(agent: str, shift: Shift, login_at: datetime, tz: ZoneInfo) -> Violation | None:
    start, end = shift_bounds(shift, login_at.astimezone(tz).date(), tz)
    if start < login_at < end:
        late = round((login_at - start).total_seconds() / 60)
        return Violation(
            "late_login", agent, login_at, f"{shift.name} starts {shift.start:%H:%M}, {late} min late"
        )
    return None


def early_logout(agent: str, shift: Shift, logout_at: datetime, tz: ZoneInfo) -> Violation | None:
    start, end = shift_bounds(shift, logout_at.astimezone(tz).date(), tz)
    if start < logout_at < end:
        early = round((end - logout_at).total_seconds() / 60)
        return Violation(
            "early_logout", agent, logout_at, f"{shift.name} ends {shift.end:%H:%M}, {early} min early"
        )
    return None


def left_seat(agent: str, *, rna_streak: int, paused_reason: str | None, now: datetime) -> Violation | None:
    if paused_reason == AUTO_PAUSE:
        return Violation("left_seat", agent, now, "auto-paused by the queue (no pause reason chosen)")
    if rna_streak >= RNA_IN_A_ROW:
        return Violation("left_seat", agent, now, f"rung while ready, {rna_streak} rings unanswered in a row")
    return None


def not_logged_out(
    agent: str, shift: Shift, *, logged_in: bool, now: datetime, tz: ZoneInfo
) -> Violation | None:
    if not logged_in:
        return None
    local = now.astimezone(tz)
    for day in (local.date(), local.date() - timedelta(days=1)):
        _start, end = shift_bounds(shift, day, tz)
        if end + AFTER_SHIFT_GRACE <= now < end + timedelta(hours=12):
            return Violation(
                "not_logged_out", agent, now, f"{shift.name} ended {shift.end:%H:%M}, still logged in"
            )
    return None

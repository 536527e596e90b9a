"""R-LATE and R-STATUS as they happen: pure decisions of (shift window, the agent's facts, now, the
policy's `attendance` thresholds), no clock and no I/O. The desk's watcher turns them into events
and wallboard alarms at once; the fines ledger (cti.fines.rules) prices the same rules later from the
facts, with the same shift windows (`shift_window`) and thresholds, so the two agree.

Like the ledger, only agents the day's roster names are judged for late / early / no logout: without
a roster nobody is on a shift (an agent who logs in on their day off is not late)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from cti.fines.rules import RosterEntry, shift_window
from cti.policy import Policy

RNA_IN_A_ROW = 2  # R-STATUS: rung while ready and not answering twice in a row = left the seat
AUTO_PAUSE = "Auto-Pause"  # app_queue's reason when autopause pauses a member (capture 02)


@dataclass(frozen=True, slots=True)
class Violation:
    rule: str  # late_login | early_logout | left_seat | not_logged_out
    agent: str
    at: datetime
    detail: str


def shifts_of(agent: str, roster: Iterable[RosterEntry]) -> list[str]:
    """The shift names the day's roster rows (`roster` table) give this agent."""
    return [r.shift for r in roster if agent in r.agents]


def _windows(
    policy: Policy, agent: str, day: date, roster: Iterable[RosterEntry], tz: ZoneInfo
) -> list[tuple[datetime, datetime]]:
    out = [shift_window(policy, day, name, tz) for name in shifts_of(agent, roster)]
    return sorted(w for w in out if w is not None)


def late_login(
    policy: Policy, agent: str, roster: Iterable[RosterEntry], login_at: datetime, tz: ZoneInfo
) -> Violation | None:
    grace = timedelta(seconds=policy.attendance.late_grace_s)
    for start, end in _windows(policy, agent, login_at.astimezone(tz).date(), roster, tz):
        if start + grace < login_at < end:
            late = round((login_at - start).total_seconds() / 60)
            return Violation("late_login", agent, login_at, f"shift starts {start:%H:%M}, {late} min late")
    return None


def early_logout(
    policy: Policy, agent: str, roster: Iterable[RosterEntry], logout_at: datetime, tz: ZoneInfo
) -> Violation | None:
    for start, end in _windows(policy, agent, logout_at.astimezone(tz).date(), roster, tz):
        if start < logout_at < end:
            early = round((end - logout_at).total_seconds() / 60)
            return Violation("early_logout", agent, logout_at, f"shift ends {end:%H:%M}, {early} min early")
    return None


def left_seat(agent: str, *, rna_streak: int, paused_reason: str | None, now: datetime) -> Violation | None:
    if paused_reason == AUTO_PAUSE:
        return Violation("left_seat", agent, now, "auto-paused by the queue (no pause reason chosen)")
    if rna_streak >= RNA_IN_A_ROW:
        return Violation("left_seat", agent, now, f"rung while ready, {rna_streak} rings unanswered in a row")
    return None


def not_logged_out(
    policy: Policy, agent: str, roster: Iterable[RosterEntry], *, logged_in: bool, now: datetime,
    tz: ZoneInfo,
) -> Violation | None:  # fmt: skip
    """Still logged in `attendance.logout_grace_min` after the agent's last shift of the day ended."""
    if not logged_in:
        return None
    windows = _windows(policy, agent, now.astimezone(tz).date(), roster, tz)
    if not windows:
        return None
    end = max(e for _s, e in windows)
    if now >= end + timedelta(minutes=policy.attendance.logout_grace_min):
        return Violation("not_logged_out", agent, now, f"shift ended {end:%H:%M}, still logged in")
    return None

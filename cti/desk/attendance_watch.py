"""Attendance judged live for the wallboard (R-LATE, R-STATUS) and the line-test alarms: the parts of
the desk's alarm loop that read the roster and the shifts. Each fact is raised once as an event; the
fines ledger later prices the same facts from the same roster and shift windows (decision 0700)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from cti.agents.decide import Session
from cti.desk import alarms as alarm_rules
from cti.desk import attendance
from cti.desk.tracker import DeskTracker
from cti.fines.attendance import roster_between
from cti.fines.rules import shift_window
from cti.policy import Policy
from cti.state.live import LiveState

Emit = Callable[..., Awaitable[None]]


async def line_test_alarms_at(
    pool: Any, policy: Policy, tz: ZoneInfo, now: datetime
) -> list[alarm_rules.Alarm]:
    """Failed or skipped line tests of today's shifts that have ended (R-LINE-TEST)."""
    day = now.astimezone(tz).date()
    async with pool.acquire() as conn:
        lines = [r["line"] for r in await conn.fetch("SELECT line FROM test_lines WHERE active")]
        if not lines:
            return []
        rows = await conn.fetch("SELECT line, slot, result, tested_at FROM line_tests WHERE day = $1", day)
    ended = []
    for s in policy.shifts:
        w = shift_window(policy, day, s.name, tz)
        if w is not None and w[1] <= now:
            ended.append((s.name, w[1]))
    tests = [(r["line"], r["slot"], r["result"], r["tested_at"]) for r in rows]
    return alarm_rules.line_test_alarms(lines=lines, tests=tests, slots_ended=ended)


class AttendanceWatch:
    def __init__(
        self, pool: Any, policy: Policy, tz: ZoneInfo, tracker: DeskTracker, live: LiveState, emit: Emit
    ) -> None:
        self.pool, self.policy, self.tz = pool, policy, tz
        self.tracker, self.live, self._emit = tracker, live, emit
        self._judged_logins: set[int] = set()
        self._violations: set[tuple[Any, ...]] = set()  # attendance facts already raised as events

    async def _roster(self, day: Any) -> list[Any]:
        async with self.pool.acquire() as conn:
            return await roster_between(conn, day, day)

    async def check(self, sessions: list[Session], now: datetime) -> list[alarm_rules.Alarm]:
        """Late logins (once per login), leaving the seat, not logged out after shift."""
        out: list[alarm_rules.Alarm] = []
        p, tz = self.policy, self.tz
        today = await self._roster(now.astimezone(tz).date())
        for s in sessions:
            if s.id not in self._judged_logins:
                self._judged_logins.add(s.id)
                login_day = s.login_at.astimezone(tz).date()
                roster = today if login_day == now.astimezone(tz).date() else await self._roster(login_day)
                v = attendance.late_login(p, s.agent, roster, s.login_at, tz)
                if v:
                    await self._violation(v)
            desk = self.tracker.agents.get(s.agent)
            members = [m for m in self.live.state.members.values() if m.name == s.agent]
            auto = next((m.paused_reason for m in members if m.paused), None)
            v = attendance.left_seat(
                s.agent, rna_streak=desk.rna_streak if desk else 0, paused_reason=auto, now=now
            )
            if v and ("left_seat", s.agent) not in self._violations:
                self._violations.add(("left_seat", s.agent))
                await self._violation(v)
            elif v is None:
                self._violations.discard(("left_seat", s.agent))
            v = attendance.not_logged_out(p, s.agent, today, logged_in=True, now=now, tz=tz)
            if v:
                if ("not_logged_out", s.id) not in self._violations:
                    self._violations.add(("not_logged_out", s.id))
                    await self._violation(v)
                out.append(
                    alarm_rules.Alarm("after_shift", s.agent, now, "下班未退出 not logged out after shift")
                )
        return out

    async def judge_logout(self, agent: str, now: datetime) -> None:
        roster = await self._roster(now.astimezone(self.tz).date())
        v = attendance.early_logout(self.policy, agent, roster, now, self.tz)
        if v:
            await self._violation(v)

    async def _violation(self, v: attendance.Violation) -> None:
        await self._emit(
            "attendance_violation",
            {"rule": v.rule, "detail": v.detail, "at": v.at.isoformat()},
            agent=v.agent,
        )

"""Wallboard alarms as a pure function of what the desk knows now. Other parts add theirs through
`hooks` (the line test, R-LINE-TEST, is one): each hook returns alarms in the same shape."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from cti.agents.decide import Session, overrun

RNA_ALARM_AT = 2  # "an agent ringing unanswered again and again"
SPOOL_ALARM_FILES = 3  # the event spool holds this many unsent segments: Postgres is not keeping up


@dataclass(frozen=True, slots=True)
class Alarm:
    kind: str  # break_overrun | break_refused | peak_pause | ring_no_answer | ami_down | spool | ...
    agent: str | None
    since: datetime
    text: str  # Chinese first, English after

    def key(self) -> tuple[str, str | None, str]:
        return (self.kind, self.agent, self.since.isoformat())


def alarms(
    *,
    now: datetime,
    sessions: Sequence[Session],
    in_peak: bool,
    rna_streaks: Mapping[str, int],
    refusals: Iterable[tuple[str, datetime, str]],  # (agent, at, "break_limit"|"peak_mode")
    ami_connected: bool,
    spool_files: int,
    extra: Iterable[Alarm] = (),
) -> list[Alarm]:
    out: list[Alarm] = []
    for s in overrun(sessions, now):
        assert s.pause_until is not None
        mins = int((now - s.pause_until).total_seconds() // 60)
        out.append(Alarm("break_overrun", s.agent, s.pause_until,
                         f"休息超时 {mins} 分钟 break overrun ({s.pause_reason})"))  # fmt: skip
    if in_peak:
        for s in sessions:
            if s.paused and s.paused_at is not None:
                out.append(Alarm("peak_pause", s.agent, s.paused_at,
                                 f"高峰期暂停 paused during peak ({s.pause_reason})"))  # fmt: skip
    for agent, at, code in refusals:
        if code == "break_limit":
            out.append(Alarm("break_refused", agent, at, "第3人申请休息被拒 3rd break refused"))
        elif code == "peak_mode":
            out.append(Alarm("peak_pause_refused", agent, at, "高峰期申请暂停被拒 pause refused in peak"))
    for agent, n in rna_streaks.items():
        if n >= RNA_ALARM_AT:
            out.append(Alarm("ring_no_answer", agent, now, f"连续 {n} 次振铃未接 rang {n} times unanswered"))
    if not ami_connected:
        out.append(Alarm("ami_down", None, now, "与交换机断开 AMI disconnected"))
    if spool_files >= SPOOL_ALARM_FILES:
        out.append(Alarm("spool", None, now, f"事件缓存积压 {spool_files} 段 event spool growing"))
    out.extend(extra)
    return out


def line_test_alarms(
    *,
    lines: Iterable[str],
    tests: Iterable[tuple[str, str, str, datetime]],  # (line, slot, result, tested_at) of today
    slots_ended: Iterable[tuple[str, datetime]],  # (policy shift name, its end) of today, ended by now
) -> list[Alarm]:
    """R-LINE-TEST on the wallboard: a failed test at once; a slot that ended without a test of an
    active line. (The fines ledger prices the skipped ones from the same `line_tests` table.)"""
    out: list[Alarm] = []
    done = set()
    for line, slot, result, at in tests:
        done.add((line, slot))
        if result == "failed":
            out.append(Alarm("line_test_failed", None, at, f"线路测试失败 line test failed: {line} ({slot})"))
    for slot, end in slots_ended:
        for line in lines:
            if (line, slot) not in done:
                out.append(
                    Alarm("line_test_skipped", None, end, f"未做线路测试 line test skipped: {line} ({slot})")
                )
    return out


def overdue_callbacks_alarm(now: datetime, overdue: int, oldest_due: datetime | None) -> list[Alarm]:
    """R-NIGHT: night callers must be called back before 08:30; callbacks past their due time and
    still not reached are one alarm (with how many), raised at the oldest due time."""
    if overdue <= 0 or oldest_due is None:
        return []
    return [Alarm("callbacks_overdue", None, oldest_due,
                  f"回拨逾期 {overdue} 个 callbacks past their due time ({overdue})")]  # fmt: skip

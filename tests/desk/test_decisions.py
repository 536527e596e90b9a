"""Pure decisions of the desk: attendance (R-LATE, R-STATUS), the live day figures (two-ring service
level), natural agent order, and the demo's progress line in the site's time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from cti.commands.demo import _line
from cti.desk import attendance as att
from cti.desk.figures import DayFigures, natural_key
from cti.fines.rules import RosterEntry
from cti.policy import Attendance, load_policy

TZ = ZoneInfo("Asia/Shanghai")
POLICY = load_policy()


def local(h: int, m: int = 0, day: int = 29) -> datetime:
    return datetime(2026, 11, day, h, m, tzinfo=TZ)


def roster(shift: str, *agents: str) -> list[RosterEntry]:
    return [RosterEntry(date(2026, 11, 29), shift, "g1", "sup1", agents)]


def test_late_login_and_early_logout_against_the_rostered_shift() -> None:
    r = roster("morning", "agent1")
    v = att.late_login(POLICY, "agent1", r, local(8, 7), TZ)
    assert v is not None and v.rule == "late_login" and "08:00, 7 min late" in v.detail
    assert att.late_login(POLICY, "agent1", r, local(7, 55), TZ) is None
    assert att.late_login(POLICY, "agent1", roster("middle", "agent1"), local(9, 59), TZ) is None
    v = att.early_logout(POLICY, "agent1", r, local(16, 30), TZ)
    assert v is not None and "30 min early" in v.detail
    assert att.early_logout(POLICY, "agent1", r, local(17, 0), TZ) is None
    # not on today's roster: not on a shift, so neither late nor early (as the fines ledger)
    assert att.late_login(POLICY, "agent2", r, local(9), TZ) is None
    assert att.early_logout(POLICY, "agent2", r, local(12), TZ) is None


def test_late_grace_comes_from_the_policy() -> None:
    lenient = POLICY.model_copy(update={"attendance": Attendance(late_grace_s=300, logout_grace_min=30)})
    assert att.late_login(lenient, "agent1", roster("morning", "agent1"), local(8, 4), TZ) is None
    assert att.late_login(lenient, "agent1", roster("morning", "agent1"), local(8, 6), TZ) is not None


def test_leaving_the_seat_and_not_logging_out_after_shift() -> None:
    now = local(11)
    assert att.left_seat("a", rna_streak=1, paused_reason=None, now=now) is None
    assert att.left_seat("a", rna_streak=2, paused_reason=None, now=now).rule == "left_seat"  # type: ignore[union-attr]
    assert att.left_seat("a", rna_streak=0, paused_reason="Auto-Pause", now=now) is not None
    assert att.left_seat("a", rna_streak=0, paused_reason="lunch", now=now) is None
    r = roster("morning", "a")
    grace = POLICY.attendance.logout_grace_min  # 17:00 + grace
    end = local(17) + timedelta(minutes=grace)
    assert att.not_logged_out(POLICY, "a", r, logged_in=True, now=end - timedelta(minutes=1), tz=TZ) is None
    assert att.not_logged_out(POLICY, "a", r, logged_in=True, now=end, tz=TZ) is not None
    assert att.not_logged_out(POLICY, "a", r, logged_in=False, now=end, tz=TZ) is None
    assert att.not_logged_out(POLICY, "b", r, logged_in=True, now=end, tz=TZ) is None


def test_day_figures_count_two_rings_from_asterisks_ringtime() -> None:
    f = DayFigures(POLICY.ring)  # 1 s on + 4 s off: ring 2 ends by 10 s
    for ev in (
        {"Event": "QueueCallerJoin"}, {"Event": "QueueCallerJoin"}, {"Event": "QueueCallerJoin"},
        {"Event": "AgentConnect", "MemberName": "agent1", "HoldTime": "4", "RingTime": "3"},
        {"Event": "AgentConnect", "MemberName": "agent2", "HoldTime": "20", "RingTime": "12"},
        {"Event": "QueueCallerAbandon"},
        {"Event": "AgentComplete", "MemberName": "agent1", "TalkTime": "100"},
        {"Event": "AgentComplete", "MemberName": "agent2", "TalkTime": "50"},
    ):  # fmt: skip
        f.apply(ev)
    assert f.summary() == {"offered": 3, "answered": 2, "abandoned": 1, "service_level": 0.5,
                           "abandon_rate": 0.333, "asa_s": 12.0, "aht_s": 75.0}  # fmt: skip
    assert f.agent_summary("agent1") == {"calls": 1, "service_level": 1.0, "aht_s": 100.0}


def test_agents_in_natural_order() -> None:
    assert sorted(["agent10", "agent2", "agent1", "Agent3"], key=natural_key) == [
        "agent1",
        "agent2",
        "Agent3",
        "agent10",
    ]


def test_demo_progress_prints_the_sites_time_not_utc() -> None:
    line = _line({"sim_time": datetime(2026, 11, 29, 11, 35, tzinfo=UTC), "callbacks_open": 0}, TZ)
    assert line.startswith("[19:35]")

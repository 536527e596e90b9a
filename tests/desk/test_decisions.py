"""Pure decisions of the desk: attendance (R-LATE, R-STATUS), the live day figures (two-ring service
level), natural agent order, and the demo's progress line in the site's time zone."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from cti.commands.demo import _line
from cti.desk import attendance as att
from cti.desk.figures import DayFigures, natural_key
from cti.policy import load_policy

TZ = ZoneInfo("Asia/Shanghai")
POLICY = load_policy()
MORNING, MIDDLE = POLICY.shifts


def local(h: int, m: int = 0, day: int = 29) -> datetime:
    return datetime(2026, 11, day, h, m, tzinfo=TZ)


def test_late_login_and_early_logout_against_the_shift() -> None:
    v = att.late_login("agent1", MORNING, local(8, 7), TZ)
    assert v is not None and v.rule == "late_login" and "7 min late" in v.detail
    assert att.late_login("agent1", MORNING, local(7, 55), TZ) is None
    assert att.late_login("agent1", MIDDLE, local(9, 59), TZ) is None
    v = att.early_logout("agent1", MORNING, local(16, 30), TZ)
    assert v is not None and "30 min early" in v.detail
    assert att.early_logout("agent1", MORNING, local(17, 0), TZ) is None


def test_roster_decides_the_shift_else_the_first_policy_shift() -> None:
    roster = [{"shift": "middle", "group_name": "g1", "agents": ["agent2"]}]
    assert att.shift_for("agent2", "g1", roster, POLICY.shifts).name == "middle"
    assert att.shift_for("agent1", "g1", roster, POLICY.shifts).name == "morning"
    assert att.shift_for("agent1", "g1", [{"shift": "middle", "group_name": "g1", "agents": []}],
                         POLICY.shifts).name == "middle"  # fmt: skip


def test_leaving_the_seat_and_not_logging_out_after_shift() -> None:
    now = local(11)
    assert att.left_seat("a", rna_streak=1, paused_reason=None, now=now) is None
    assert att.left_seat("a", rna_streak=2, paused_reason=None, now=now).rule == "left_seat"  # type: ignore[union-attr]
    assert att.left_seat("a", rna_streak=0, paused_reason="Auto-Pause", now=now) is not None
    assert att.left_seat("a", rna_streak=0, paused_reason="lunch", now=now) is None
    assert att.not_logged_out("a", MORNING, logged_in=True, now=local(17, 14), tz=TZ) is None
    assert att.not_logged_out("a", MORNING, logged_in=True, now=local(17, 15), tz=TZ) is not None
    assert att.not_logged_out("a", MORNING, logged_in=False, now=local(18), tz=TZ) is None


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

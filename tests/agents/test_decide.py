"""R-LOGIN / R-BREAK / R-PEAK decisions: pure functions with injected time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from cti.agents.decide import (
    AgentInfo,
    Session,
    decide_login,
    decide_logout,
    decide_pause,
    decide_unpause,
    overrun,
    reason_for_code,
)
from cti.peak.guard import REFUSAL
from cti.policy import load_policy

TZ = ZoneInfo("Asia/Shanghai")
BREAKS = load_policy().breaks
NOW = datetime(2026, 11, 29, 2, 30, tzinfo=UTC)  # 10:30 in Shanghai
A1 = AgentInfo("agent1", "Agent One", "PJSIP/agent1", "default")


def _s(
    agent: str, paused: bool = False, reason: str | None = None, until_min: int = 5, group: str = "default"
) -> Session:
    return Session(
        id=hash(agent) & 0xFFFF,
        agent=agent,
        group=group,
        queues=("sales",),
        penalty=0,
        login_at=NOW - timedelta(hours=1),
        paused=paused,
        pause_reason=reason if paused else None,
        paused_at=NOW if paused else None,
        pause_until=NOW + timedelta(minutes=until_min) if paused else None,
    )


def test_login_needs_an_active_agent_and_a_second_login_reapplies_membership() -> None:
    assert decide_login(None, None, "agent7").code == "unknown_agent"
    off = AgentInfo("agent1", "x", "PJSIP/agent1", "default", active=False)
    assert not decide_login(off, None, "agent1").allowed
    assert decide_login(A1, None, "agent1").code == "logged_in"
    again = decide_login(A1, _s("agent1"), "agent1")
    assert again.allowed and again.code == "already_logged_in"
    assert A1.endpoint == "agent1"  # PJSIPQualify Endpoint (capture 17)


def test_no_pause_and_no_logout_in_peak_mode_with_the_guards_words() -> None:
    d = decide_pause(
        _s("agent1"), "agent1", "break", group_sessions=[], policy=BREAKS, in_peak=True, now=NOW, tz=TZ
    )
    assert (d.allowed, d.code, d.message) == (False, "peak_mode", REFUSAL)
    d = decide_logout(_s("agent1"), "agent1", in_peak=True)
    assert (d.allowed, d.code) == (False, "peak_mode")
    assert decide_logout(_s("agent1"), "agent1", in_peak=False).allowed
    assert decide_logout(None, "agent1", in_peak=False).code == "not_logged_in"


def test_third_agent_of_a_group_on_break_is_refused_naming_who_is_out_until_when() -> None:
    group = [_s("agent2", True, "lunch", 3), _s("agent3", True, "break", 9), _s("agent4"), _s("agent1")]
    d = decide_pause(
        _s("agent1"), "agent1", "toilet", group_sessions=group, policy=BREAKS, in_peak=False, now=NOW, tz=TZ
    )
    assert not d.allowed and d.code == "break_limit"
    assert d.out == (
        {"agent": "agent2", "reason": "lunch", "until": "10:33"},
        {"agent": "agent3", "reason": "break", "until": "10:39"},
    )
    assert "agent2 (lunch, until 10:33)" in d.message and "agent3 (break, until 10:39)" in d.message
    # one of them back: allowed, for at most max_minutes
    d = decide_pause(
        _s("agent1"),
        "agent1",
        "toilet",
        group_sessions=group[1:],
        policy=BREAKS,
        in_peak=False,
        now=NOW,
        tz=TZ,
    )
    assert d.allowed and d.pause_until == NOW + timedelta(minutes=BREAKS.max_minutes)


def test_pause_reasons_come_from_the_policy_and_phone_codes_map_onto_them() -> None:
    d = decide_pause(
        _s("agent1"), "agent1", "nap", group_sessions=[], policy=BREAKS, in_peak=False, now=NOW, tz=TZ
    )
    assert d.code == "unknown_reason" and "lunch" in d.message
    assert reason_for_code("", BREAKS.pause_reasons) == "break"
    assert reason_for_code("2", BREAKS.pause_reasons) == BREAKS.pause_reasons[1]
    assert reason_for_code("9", BREAKS.pause_reasons) is None
    assert reason_for_code("x", BREAKS.pause_reasons) is None


def test_unpause_and_already_paused_and_overrun() -> None:
    assert decide_unpause(None, "agent1").code == "not_logged_in"
    assert decide_unpause(_s("agent1"), "agent1").code == "not_paused"
    assert decide_unpause(_s("agent1", True, "lunch"), "agent1").allowed
    d = decide_pause(
        _s("agent1", True, "lunch"),
        "agent1",
        "break",
        group_sessions=[],
        policy=BREAKS,
        in_peak=False,
        now=NOW,
        tz=TZ,
    )
    assert d.code == "already_paused"
    late = _s("agent2", True, "break", -1)
    assert overrun([late, _s("agent3", True, "break", 4), _s("agent4")], NOW) == [late]

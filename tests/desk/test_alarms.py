"""The wallboard's alarms as a pure function: what a supervisor sees for each situation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cti.agents.decide import Session
from cti.desk.alarms import alarms, line_test_alarms

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def session(agent: str, *, paused_min_ago: float | None = None, until_min: float = 10) -> Session:
    at = NOW - timedelta(minutes=paused_min_ago) if paused_min_ago is not None else None
    return Session(1, agent, "g1", ("sales",), 0, NOW - timedelta(hours=2), paused=at is not None,
                   pause_reason="break" if at else None, paused_at=at,
                   pause_until=at + timedelta(minutes=until_min) if at else None)  # fmt: skip


def kinds(**kw: object) -> list[tuple[str, str | None]]:
    base: dict[str, object] = dict(now=NOW, sessions=[], in_peak=False, rna_streaks={}, refusals=[],
                                   ami_connected=True, spool_files=0)  # fmt: skip
    base.update(kw)
    return [(a.kind, a.agent) for a in alarms(**base)]  # type: ignore[arg-type]


def test_a_calm_floor_has_no_alarm() -> None:
    assert kinds(sessions=[session("agent1"), session("agent2", paused_min_ago=5)]) == []


def test_break_overrun_only_past_the_limit() -> None:
    assert kinds(sessions=[session("agent1", paused_min_ago=11), session("agent2", paused_min_ago=9)]) == [
        ("break_overrun", "agent1")
    ]


def test_pauses_in_peak_refusals_ring_no_answers_ami_and_spool() -> None:
    got = kinds(
        sessions=[session("agent3", paused_min_ago=1)], in_peak=True, rna_streaks={"agent4": 2, "agent5": 1},
        refusals=[("agent6", NOW, "break_limit"), ("agent7", NOW, "peak_mode")], ami_connected=False,
        spool_files=3,
    )  # fmt: skip
    assert got == [("peak_pause", "agent3"), ("break_refused", "agent6"), ("peak_pause_refused", "agent7"),
                   ("ring_no_answer", "agent4"), ("ami_down", None), ("spool", None)]  # fmt: skip
    assert kinds(spool_files=2) == []


def test_line_tests_failed_and_skipped() -> None:
    end = NOW - timedelta(hours=1)
    tests = [("4008001234", "morning", "failed", NOW), ("4008005678", "morning", "ok", NOW)]
    got = line_test_alarms(lines=["4008001234", "4008005678"], tests=tests, slots_ended=[("morning", end)])
    assert [(a.kind, a.text) for a in got] == [
        ("line_test_failed", "线路测试失败 line test failed: 4008001234 (morning)")
    ]
    got = line_test_alarms(lines=["4008001234"], tests=[], slots_ended=[("morning", end)])
    assert [(a.kind, a.since) for a in got] == [("line_test_skipped", end)]
    assert line_test_alarms(lines=["4008001234"], tests=[], slots_ended=[]) == []

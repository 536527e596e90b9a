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


def test_night_callbacks_still_open_past_their_due_time_are_one_alarm() -> None:
    from cti.desk.alarms import overdue_callbacks_alarm

    assert overdue_callbacks_alarm(NOW, 0, None) == []
    due = NOW - timedelta(minutes=20)
    (a,) = overdue_callbacks_alarm(NOW, 3, due)
    assert (a.kind, a.agent, a.since) == ("callbacks_overdue", None, due)
    assert a.text.startswith("回拨逾期 3 个")


async def test_the_wallboard_raises_it_from_the_callbacks_table(db_url: str) -> None:
    """On the desk floor: a night callback due 08:30 and not reached by 10:30 is on the wallboard."""
    from cti.callbacks import repo as callbacks_repo
    from tests.desk.rig import CUSTOMER, floor

    async with floor(db_url) as fl:
        now = fl.clock.now()
        async with fl.pool.acquire() as conn:
            await callbacks_repo.create_or_join(
                conn, number=CUSTOMER, did="4008001234", kind="night", now=now - timedelta(hours=12),
                due_by=now - timedelta(hours=2),
            )  # fmt: skip
            await callbacks_repo.create_or_join(  # due later today: not overdue
                conn, number="13900001111", did="4008001234", kind="night", now=now,
                due_by=now + timedelta(hours=1),
            )  # fmt: skip
        current = await fl.desk.check_alarms()
        overdue = [a for a in current if a.kind == "callbacks_overdue"]
        assert [a.text for a in overdue] == ["回拨逾期 1 个 callbacks past their due time (1)"]
        board = await fl.desk.wallboard()
        assert any(a["kind"] == "callbacks_overdue" for a in board["alarms"])

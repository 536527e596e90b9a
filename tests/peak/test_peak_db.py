"""Media schedule, switch and the peak monitor against real PostgreSQL; the `cti peak` CLI."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from click.testing import CliRunner

from cti.cli import main
from cti.clock import ManualClock
from cti.peak import repo
from cti.peak.guard import PeakPauseGuard
from cti.peak.machine import LiveFigures
from cti.peak.monitor import PeakMonitor
from cti.policy import load_policy
from tests.fakes import ListSink

POLICY = load_policy()
P = POLICY.peak
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


async def test_schedule_roundtrip_and_validation(db):
    a = await repo.add_airing(
        db, channel="CCTV-1", program="晚间剧场", starts_at=T0, duration_s=60, expected_calls=3000, by="test"
    )
    b = await repo.add_airing(
        db,
        channel="湖南卫视",
        program="p",
        starts_at=T0 - timedelta(hours=1),
        duration_s=30,
        tail_minutes=5,
        by="t",
    )
    assert [x.id for x in await repo.list_airings(db)] == [b.id, a.id]
    assert (await repo.list_airings(db))[1].expected_calls == 3000
    with pytest.raises(repo.ScheduleError, match="time zone"):
        await repo.add_airing(
            db, channel="c", program="p", starts_at=T0.replace(tzinfo=None), duration_s=60, by="t"
        )
    with pytest.raises(repo.ScheduleError, match="duration"):
        await repo.add_airing(db, channel="c", program="p", starts_at=T0, duration_s=0, by="t")
    assert await repo.remove_airing(db, a.id) is True
    assert await repo.remove_airing(db, a.id) is False
    assert [x.id for x in await repo.list_airings(db)] == [b.id]


async def test_switch_defaults_to_auto_and_rejects_nonsense(db):
    assert (await repo.get_switch(db)).mode == "auto"
    s = await repo.set_switch(db, "on", by="王主管", now=T0)
    assert (s.mode, s.updated_by) == ("on", "王主管")
    with pytest.raises(ValueError, match="peak switch"):
        await repo.set_switch(db, "maybe", by="x", now=T0)
    assert (await repo.get_switch(db)).mode == "on"


async def test_monitor_events_and_restart_keeps_hysteresis(db_url, db):
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=2)
    try:
        clock = ManualClock(T0)
        figures = {"v": LiveFigures(0, 0)}
        sink = ListSink()
        mon = PeakMonitor(pool, policy=P, clock=clock, figures=lambda: figures["v"], events=sink)
        await mon.start()
        assert await mon.tick() is None and not mon.in_peak

        await repo.add_airing(
            db,
            channel="CCTV-1",
            program="p",
            starts_at=T0 + timedelta(seconds=10),
            duration_s=60,
            tail_minutes=1,
            by="t",
        )
        clock.advance(10)
        await mon.tick()
        assert mon.in_peak
        clock.advance(120)  # window over (60 s + 1 min tail), queue still busy
        figures["v"] = LiveFigures(P.enter_waiting_callers + 5, 40)
        await mon.tick()
        assert mon.in_peak and mon.state.cause == "auto_waiting_callers"
        figures["v"] = LiveFigures(0, 0)
        clock.advance(1)
        await mon.tick()  # calm starts now
        assert (await repo.load_state(db)).calm_since == clock.now()

        # restart: a new monitor resumes the calm timer instead of starting over
        mon2 = PeakMonitor(pool, policy=P, clock=clock, figures=lambda: figures["v"], events=sink)
        await mon2.start()
        assert mon2.in_peak
        clock.advance(P.exit_hold_s)
        await mon2.tick()
        assert not mon2.in_peak

        await repo.set_switch(db, "on", by="王主管", now=clock.now())
        clock.advance(1)
        await mon2.tick()
        causes = [(e.payload["in_peak"], e.payload["cause"]) for e in sink.of_type("peak_mode")]
        assert causes == [
            (True, "schedule"),
            (True, "auto_waiting_callers"),
            (False, "queue_drained"),
            (True, "switch_on"),
        ]
        last = sink.events[-1]
        assert last.source == "cti" and last.payload["switch_by"] == "王主管" and last.ts == clock.now()
        assert len({e.key for e in sink.events}) == len(sink.events)
    finally:
        await pool.close()


async def test_monitor_survives_missing_figures(db_url):
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=1)
    try:

        def broken() -> LiveFigures:
            raise ConnectionError("live state not ready")

        sink = ListSink()
        mon = PeakMonitor(pool, policy=P, clock=ManualClock(T0), figures=broken, events=sink)
        async with pool.acquire() as c:
            await repo.set_switch(c, "on", by="t", now=T0)
        await mon.tick()
        assert mon.in_peak and sink.events[0].payload["cause"] == "switch_on"
    finally:
        await pool.close()


async def test_cli_schedule_switch_status(db_url):
    runner = CliRunner()
    env = {"CTI_DATABASE_URL": db_url, "CTI_TIMEZONE": "Asia/Shanghai"}

    def cli(*args: str):
        return runner.invoke(main, list(args), env=env, catch_exceptions=False)

    start = (datetime.now(UTC) + timedelta(hours=2)).astimezone().strftime("%Y-%m-%dT%H:%M:%S%z")
    r = await asyncio.to_thread(
        cli,
        "peak",
        "schedule",
        "add",
        "--channel",
        "CCTV-1",
        "--program",
        "晚间剧场",
        "--start",
        start,
        "--duration",
        "60",
        "--expected",
        "3000",
    )
    assert r.exit_code == 0, r.output
    assert "added airing" in r.output
    r = await asyncio.to_thread(cli, "peak", "schedule", "list")
    assert "CCTV-1 / 晚间剧场" in r.output and "3000" in r.output
    r = await asyncio.to_thread(
        cli,
        "peak",
        "schedule",
        "add",
        "--channel",
        "c",
        "--program",
        "p",
        "--start",
        "tomorrow",
        "--duration",
        "60",
    )
    assert r.exit_code != 0 and "not a date-time" in r.output
    r = await asyncio.to_thread(
        cli,
        "peak",
        "schedule",
        "add",
        "--channel",
        "c",
        "--program",
        "p",
        "--start",
        "2026-11-23 20:00",
        "--duration",
        "0",
    )
    assert r.exit_code != 0 and "duration" in r.output
    r = await asyncio.to_thread(cli, "peak", "on", "--by", "王主管")
    assert r.exit_code == 0 and "peak switch: on (by 王主管)" in r.output
    r = await asyncio.to_thread(cli, "peak", "status")
    assert "switch: on" in r.output and "next airing" in r.output and "not decided yet" in r.output
    r = await asyncio.to_thread(cli, "peak", "schedule", "remove", "999")
    assert r.exit_code != 0 and "no airing with id 999" in r.output


async def test_service_for_the_web_layer(db_url):
    from cti.peak.service import PeakService

    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=2)
    try:
        clock = ManualClock(T0)
        svc = PeakService(pool, clock=clock, policy=P)
        s = await svc.status()
        assert (s["active"], s["mode"], s["airing"]) == (False, "auto", None)
        async with pool.acquire() as c:
            await repo.add_airing(c, channel="CCTV-1", program="p", starts_at=T0, duration_s=60, by="t")
        s = await svc.set_switch("on", "王主管")
        assert s["mode"] == "on" and s["switch_by"] == "王主管" and s["airing"]["channel"] == "CCTV-1"
        mon = PeakMonitor(pool, policy=P, clock=clock, figures=lambda: LiveFigures(0, 0), events=ListSink())
        await mon.tick()
        assert (await svc.status())["active"] is True
        with pytest.raises(ValueError):
            await svc.set_switch("bogus", "x")
    finally:
        await pool.close()


async def test_a_pause_is_judged_at_its_frame_timestamp(db_url, db):
    """Issue 10 item 3: a QueueMemberPause stamped inside peak but read after peak ended is still a
    violation; one stamped before peak began but read during peak is not."""
    from tests.peak.test_guard import LUNCH

    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=2)
    try:
        clock = ManualClock(T0)
        mon = PeakMonitor(pool, policy=P, clock=clock, figures=lambda: LiveFigures(0, 0), events=ListSink())
        await mon.start()
        await mon.tick()
        await repo.set_switch(db, "on", by="王主管", now=T0)
        clock.advance(10)
        await mon.tick()
        on_at = clock.now()
        await repo.set_switch(db, "off", by="王主管", now=on_at)
        clock.advance(10)
        await mon.tick()
        assert not mon.in_peak

        sent: list[str] = []

        async def ami_action(name, headers):
            sent.append(name)
            return {"Response": "Success"}

        guard = PeakPauseGuard(
            pool, policy=POLICY, clock=clock, events=ListSink(),
            in_peak=mon.was_in_peak, ami_action=ami_action, peak_cause=mon.cause_at,
        )  # fmt: skip
        during = {**LUNCH, "Timestamp": f"{on_at.timestamp() + 5:.6f}"}
        before = {**LUNCH, "Timestamp": f"{on_at.timestamp() - 5:.6f}", "Interface": "PJSIP/agent3"}
        assert (await guard.handle_ami(during)).action == "undo_pause"
        assert (await guard.handle_ami(before)).action == "ignore"
        row = await db.fetchrow("SELECT peak_cause, occurred_at FROM peak_violations")
        assert row["peak_cause"] == "switch_on"
        assert sent == ["QueuePause"]
    finally:
        await pool.close()

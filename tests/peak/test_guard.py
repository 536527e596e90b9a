"""No pause / log-off during peak: real QueueMemberPause / QueueMemberRemoved frames (captures 02, 07)."""

from __future__ import annotations

from datetime import UTC, datetime

from cti.clock import ManualClock
from cti.peak.guard import PeakPauseGuard, guard_decision, refuse_pause
from cti.policy import load_policy
from tests.captures import ami_text_frames
from tests.fakes import ListSink

POLICY = load_policy()
T0 = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)


def capture_frames(scenario: str, event: str) -> list[dict[str, str]]:
    return ami_text_frames(scenario, event=event)


LUNCH = next(f for f in capture_frames("07", "QueueMemberPause") if f.get("PausedReason") == "lunch")
UNPAUSE = next(f for f in capture_frames("07", "QueueMemberPause") if f.get("Paused") == "0")
REMOVED = capture_frames("07", "QueueMemberRemoved")[0]
AUTO = next(f for f in capture_frames("02", "QueueMemberPause") if f.get("PausedReason") == "Auto-Pause")


def test_refuse_pause_request_only_in_peak():
    assert refuse_pause(True) and "R-PEAK" in refuse_pause(True)
    assert refuse_pause(False) is None


def test_decisions_on_real_frames():
    d = guard_decision(LUNCH, in_peak=True, now=T0)
    assert d.action == "undo_pause" and d.agent == "agent2" and d.paused_reason == "lunch"
    assert d.undo == ("QueuePause", {"Queue": "sales", "Interface": "PJSIP/agent2", "Paused": "false"})
    assert d.occurred_at == datetime.fromtimestamp(float(LUNCH["Timestamp"]), UTC)
    assert guard_decision(LUNCH, in_peak=False, now=T0).action == "ignore"
    assert guard_decision(UNPAUSE, in_peak=True, now=T0).reason == "unpause"
    assert guard_decision(AUTO, in_peak=True, now=T0).reason == "auto_pause"
    assert guard_decision(LUNCH, in_peak=True, now=T0, exempt_reasons=frozenset({"lunch"})).action == "ignore"
    d = guard_decision(REMOVED, in_peak=True, now=T0)
    assert d.action == "undo_logoff"
    assert d.undo == (
        "QueueAdd",
        {
            "Queue": "sales",
            "Interface": "PJSIP/agent3",
            "Penalty": REMOVED["Penalty"],
            "MemberName": "agent3",
            "StateInterface": "PJSIP/agent3",
        },
    )


async def test_guard_undoes_records_once_and_emits(pool, db):
    sent: list[tuple[str, dict]] = []

    async def ami_action(name, headers):
        sent.append((name, dict(headers)))
        return {"Response": "Success", "Message": "Interface unpaused successfully"}

    sinks = [ListSink(), ListSink()]
    guards = [
        PeakPauseGuard(
            pool, policy=POLICY, clock=ManualClock(T0), events=s, in_peak=lambda at: True,
            ami_action=ami_action, peak_cause=lambda at: "schedule",
        )
        for s in sinks
    ]  # fmt: skip
    # two CTI processes see the same event: one violation, one undo
    await guards[0].handle_ami(LUNCH)
    assert (await guards[1].handle_ami(LUNCH)).reason == "already_recorded"
    await guards[0].handle_ami(AUTO)
    await guards[0].handle_ami(REMOVED)
    rows = await db.fetch("SELECT * FROM peak_violations ORDER BY id")
    assert [(r["agent"], r["kind"], r["undo_status"], r["peak_cause"]) for r in rows] == [
        ("agent2", "pause", "undone", "schedule"),
        ("agent3", "logoff", "undone", "schedule"),
    ]
    assert rows[0]["fine_agent"] == POLICY.fines["peak_pause"].agent
    assert [n for n, _ in sent] == ["QueuePause", "QueueAdd"]
    assert [e.payload["kind"] for e in sinks[0].of_type("peak_violation")] == ["pause", "logoff"]
    assert sinks[1].events == []


async def test_failed_undo_is_recorded(pool, db):
    async def ami_action(name, headers):
        raise ConnectionError("AMI down")

    g = PeakPauseGuard(
        pool,
        policy=POLICY,
        clock=ManualClock(T0),
        events=ListSink(),
        in_peak=lambda at: True,
        ami_action=ami_action,
    )
    await g.handle_ami(LUNCH)
    row = await db.fetchrow("SELECT undo_status, undo_error FROM peak_violations")
    assert (row["undo_status"], row["undo_error"]) == ("failed", "AMI down")

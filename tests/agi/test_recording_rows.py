"""Recording rows completed from what Asterisk reports (issue 10 item 7): real frames of captures 11,
12 and 16 through RecordingTracker into PostgreSQL; degraded calls from their spooled fact."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from cti.agi.recordings import RecordingTracker, import_degraded_recordings
from tests.facts.test_derive import stream

ROUTE_ROW = """INSERT INTO recordings (linkedid, uniqueid, path, number, did, queue, created_at)
               VALUES ($1, $1, $2, $3, '4008001234', 'sales', $4)"""


async def feed(tracker: RecordingTracker, capture: str) -> None:
    for _ts, _name, m in stream(capture):
        await tracker.handle_ami(m)


@pytest.mark.parametrize(
    ("capture", "linkedid", "preferred", "started", "ended"),
    [
        ("11-", "1795923322.0", None, 1795923325.182938, 1795923334.172288),
        ("12-", "1795923350.0", "agent3", 1795923353.287582, 1795923362.276089),
    ],
)
async def test_route_row_gets_times_and_preferred_agent(
    pool, db, capture, linkedid, preferred, started, ended
):
    path = f"/var/spool/asterisk/monitor/2026/11/29/{linkedid}.wav"
    await db.execute(ROUTE_ROW, linkedid, path, "13812345678", datetime.fromtimestamp(float(linkedid), UTC))
    tracker = RecordingTracker(pool)
    await feed(tracker, capture)
    row = await db.fetchrow("SELECT * FROM recordings WHERE linkedid = $1", linkedid)
    # MixMonitorStart on the agent leg; no MixMonitorStop when the call just ends (05b): the agent
    # leg's Hangup ends the recording
    assert row["started_at"].timestamp() == pytest.approx(started, abs=1e-6)
    assert row["ended_at"].timestamp() == pytest.approx(ended, abs=1e-6)
    assert row["duration_s"] == Decimal(f"{ended - started:.3f}")
    assert row["preferred_agent"] == preferred
    assert (row["path"], row["number"]) == (path, "13812345678")
    assert tracker.calls == {}  # nothing left behind once both legs are gone


async def test_callback_gets_a_row_of_its_own(pool, db):
    """Capture 16: the callback's MixMonitor in [callback-did]; no route row ever existed."""
    tracker = RecordingTracker(pool)
    await feed(tracker, "16-")
    row = await db.fetchrow("SELECT * FROM recordings WHERE linkedid = 'cti-cb-1-1'")
    assert row is not None
    assert row["path"] == "/var/spool/asterisk/monitor/2026/11/29/cti-cb-1-1.wav"
    assert (row["number"], row["did"]) == ("13812345678", "4008001234")
    assert row["duration_s"] == Decimal(f"{1795924038.084108 - 1795924028.068118:.3f}")
    assert row["started_at"] == row["created_at"]


async def test_degraded_call_gets_a_row_from_its_spooled_fact(db):
    t = datetime(2026, 11, 29, 3, 38, 39, tzinfo=UTC)
    payload = {"route": "queue", "queue": "sales", "number": "13812345678", "masked": "138****5678",
               "did": "4008001234", "record": "/var/spool/asterisk/monitor/2026/11/29/1795923519.0.wav",
               "degraded": True}  # fmt: skip
    night = {**payload, "route": "night", "record": None}
    await db.execute("SELECT cti_ensure_event_partitions($1, 1)", t.date())
    for uid, body in (("1795923519.0", payload), ("1795923600.0", night)):
        await db.execute(
            """INSERT INTO events (ts, source, type, payload, key, uniqueid, linkedid)
               VALUES ($1, 'agi', 'degraded_route', $2::jsonb, $3, $4, $4)""",
            t, json.dumps(body), f"agi:degraded_route:{uid}", uid,
        )  # fmt: skip
    assert await import_degraded_recordings(db, t - timedelta(hours=1)) == 1
    assert await import_degraded_recordings(db, t - timedelta(hours=1)) == 0
    row = await db.fetchrow("SELECT * FROM recordings")
    assert (row["linkedid"], row["number"], row["did"], row["queue"]) == (
        "1795923519.0", "13812345678", "4008001234", "sales",
    )  # fmt: skip

"""Retention: recordings past recording.retention_days lose file and row, with one event; recent
ones stay; a row whose path leads outside the recordings directory never costs anyone their file."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

from click.testing import CliRunner

from cti.cli import main
from cti.recording_retention import purge
from cti.store.sink import ConnEvents

NOW = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)


async def _rec(db, linkedid: str, path: str, age_days: float) -> int:
    return await db.fetchval(
        "INSERT INTO recordings (linkedid, path, created_at) VALUES ($1, $2, $3) RETURNING id",
        linkedid, path, NOW - timedelta(days=age_days),
    )  # fmt: skip


async def test_old_recordings_are_purged_file_and_row_with_an_event(db, tmp_path):
    root = tmp_path / "monitor"
    (root / "2026/05/01").mkdir(parents=True)
    old = root / "2026/05/01/old.wav"
    old.write_bytes(b"x" * 1000)
    new = root / "2026/05/01/new.wav"
    new.write_bytes(b"y" * 10)
    victim = tmp_path / "not-a-recording.txt"
    victim.write_text("keep me")
    (root / "link.wav").symlink_to(victim)
    old_id = await _rec(db, "l-old", str(old), 181)
    await _rec(db, "l-new", str(new), 179)
    await _rec(db, "l-escape", str(root / "../not-a-recording.txt"), 200)
    await _rec(db, "l-link", str(root / "link.wav"), 200)
    await _rec(db, "l-gone", str(root / "already-deleted.wav"), 400)
    # a reviewed call keeps its score when its recording goes
    await db.execute(
        """INSERT INTO qa_samples (period, period_start, linkedid, agent, call_kind, started_at, recording_id,
                                   reason, added_by, added_at)
           VALUES ('week', '2026-05-04', 'l-old', 'agent1', 'inbound', $1, $2, 'drawn', 'wang', $1)""",
        NOW - timedelta(days=181), old_id,
    )  # fmt: skip

    r = await purge(db, root, NOW, 180, ConnEvents(db))

    assert (r.rows, r.files, r.bytes, r.outside) == (4, 1, 1000, 2)
    assert not old.exists() and new.exists()
    assert victim.read_text() == "keep me"  # outside the directory: never deleted
    left = await db.fetch("SELECT linkedid FROM recordings")
    assert [x["linkedid"] for x in left] == ["l-new"]
    assert await db.fetchval("SELECT recording_id FROM qa_samples WHERE linkedid = 'l-old'") is None
    ev = await db.fetch("SELECT payload FROM events WHERE type = 'recordings_purged'")
    assert len(ev) == 1
    payload = json.loads(ev[0]["payload"])
    assert payload["rows"] == 4 and payload["files"] == 1 and payload["outside_root"] == 2
    # nothing left to do: no second event
    again = await purge(db, root, NOW, 180, ConnEvents(db))
    assert again.rows == 0
    assert await db.fetchval("SELECT count(*) FROM events WHERE type = 'recordings_purged'") == 1


def test_the_purge_command_applies_the_setting(db_url, tmp_path):
    import asyncio

    import asyncpg

    root = tmp_path / "monitor"
    root.mkdir()
    f = root / "a.wav"
    f.write_bytes(b"z" * 5)
    os.utime(f)

    async def seed() -> None:
        conn = await asyncpg.connect(db_url)
        await conn.execute(
            "INSERT INTO recordings (linkedid, path, created_at) VALUES ('a', $1, now() - interval '3 days')",
            str(f),
        )
        await conn.close()

    asyncio.run(seed())
    env = {"CTI_CONFIG": "", "CTI_DATABASE_URL": db_url, "CTI_RECORDING__RETENTION_DAYS": "2",
           "CTI_RECORDING__PATH_PATTERN": f"{root}/{{linkedid}}.wav"}  # fmt: skip
    r = CliRunner().invoke(main, ["recordings", "purge"], env=env, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "purged 1 recordings" in r.output and not f.exists()

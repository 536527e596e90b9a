"""Recording retention: recordings older than `recording.retention_days` are purged, file and row,
and each purge run leaves one `recordings_purged` event saying what went.

Files are deleted only inside the recordings directory (cti.recording_files.inside): a row whose path
leads elsewhere loses its row, never someone else's file. File before row, so a crash between the two
leaves a row whose file is gone, which the next run removes (unlink of a missing file is fine)."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from cti.recording_files import inside
from cti.store.events import Event
from cti.store.sink import EventSink, append_or_log

log = structlog.get_logger(__name__)


def cutoff(now: datetime, retention_days: int) -> datetime:
    """Recordings created before this are past retention."""
    return now - timedelta(days=retention_days)


@dataclass(frozen=True)
class PurgeResult:
    rows: int
    files: int
    bytes: int
    outside: int  # rows whose path led outside the recordings directory (file left alone)
    before: datetime


def _unlink(root: Path, path: str) -> tuple[int, int, int]:
    """(files deleted, bytes freed, 1 if the path led outside root)."""
    real = inside(root, path)
    if real is None:
        p = Path(path)
        outside = not Path(os.path.realpath(p if p.is_absolute() else root / p)).is_relative_to(
            Path(os.path.realpath(root))
        )
        return 0, 0, int(outside)
    size = real.stat().st_size
    real.unlink(missing_ok=True)
    return 1, size, 0


async def purge(
    conn: Any, root: Path, now: datetime, retention_days: int, events: EventSink, batch: int = 500
) -> PurgeResult:
    before = cutoff(now, retention_days)
    rows = files = freed = outside = 0
    while True:
        due = await conn.fetch(
            "SELECT id, path FROM recordings WHERE created_at < $1 ORDER BY created_at LIMIT $2",
            before,
            batch,
        )
        if not due:
            break
        for r in due:
            f, b, o = await asyncio.to_thread(_unlink, root, r["path"])
            files, freed, outside = files + f, freed + b, outside + o
            if o:
                log.warning("recording_purge_outside_root", recording=r["id"])
        ids = [r["id"] for r in due]
        async with conn.transaction():
            # a reviewed sample keeps its score; only the recording it pointed at is gone
            await conn.execute("UPDATE qa_samples SET recording_id = NULL WHERE recording_id = ANY($1)", ids)
            await conn.execute("DELETE FROM recordings WHERE id = ANY($1)", ids)
        rows += len(ids)
    result = PurgeResult(rows, files, freed, outside, before)
    if rows:
        payload = {"rows": rows, "files": files, "bytes": freed, "outside_root": outside,
                   "created_before": before.isoformat(), "retention_days": retention_days}  # fmt: skip
        await append_or_log(events, Event(ts=now, source="cti", type="recordings_purged", payload=payload),
                            "recordings_purged_event_failed")  # fmt: skip
    log.info("recordings_purged", rows=rows, files=files, bytes=freed, outside_root=outside)
    return result

"""Recording rows (R-REC) written in batches, off the call's critical path.

The `route` handler decides the file path and hands it to the dialplan at once; the row that ties the
path to the call (by Linkedid) is queued here and inserted with the next batch, a few milliseconds
later. A commit per call would be most of the route latency (bench/agi.py). If PostgreSQL is down the
rows wait in memory (bounded) and the `route` event, which carries the same path, is kept by the
event store's spool: nothing is lost.

The rest of the row comes from what Asterisk reports (issue 10 item 7), by `RecordingTracker`:
- `started_at` is MixMonitorStart (on the agent leg for queue and preferred calls, before the
  answer: captures 11-13; on our channel in `[callback-did]`), the path its `MIXMONITOR_FILENAME`
  VarSet; `ended_at` is MixMonitorStop or, as there is none when the call just ends (05b), the
  Hangup of the recorded channel; `duration_s` the span between them;
- `preferred_agent` is the CTI_PREFERRED the route set (empty: none);
- a callback (`cti-cb-…`, path from the Originate's CTI_RECORD) and a call routed while the CTI's
  FastAGI was down but AMI was watched get their row from these events alone (an upsert keyed by
  Linkedid); a degraded call nobody watched gets its row from the spooled `degraded_route` fact
  (`import_degraded_recordings`), without times.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import structlog

from cti.ami.headers import event_ts, first
from cti.db.later import retry_later
from cti.store.events import CONNECTION_ERRORS

log = structlog.get_logger(__name__)

# one statement per batch (columns as arrays): executemany would bind and execute once per row
_INSERT = """
INSERT INTO recordings (linkedid, uniqueid, path, number, did, queue, created_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::timestamptz[])
ON CONFLICT (linkedid) DO NOTHING
"""

Row = tuple[str, str | None, str, str | None, str | None, str | None, datetime]


class RecordingWriter:
    def __init__(
        self, pool: Any, *, batch_max: int = 500, max_delay_s: float = 0.05, max_pending: int = 50000
    ) -> None:
        self.pool = pool
        self.batch_max = batch_max
        self.max_delay_s = max_delay_s
        self.max_pending = max_pending
        self._pending: list[Row] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self.written = 0
        self.dropped = 0

    def add(self, row: Row) -> None:
        if len(self._pending) >= self.max_pending:
            self.dropped += 1  # the route event still carries the path
            log.error("recording rows backlog full; row left to the event log", linkedid=row[0])
            return
        self._pending.append(row)
        self._idle.clear()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="recording-writer")
        self._wake.set()

    async def flush(self) -> None:
        """Returns when every row added so far has been written (or the writer gave up on it) — the
        batch being written included: it has left `_pending` already, so waiting only while rows
        were pending returned before it was in (and close() then cancelled it mid-write)."""
        if not self._idle.is_set():
            self._wake.set()
            await self._idle.wait()

    async def close(self, timeout_s: float = 5.0) -> None:
        try:
            async with asyncio.timeout(timeout_s):
                await self.flush()
        except TimeoutError:
            log.error("recording rows not written at close", rows=len(self._pending))
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(self.max_delay_s)  # let a burst of calls share one batch
            while self._pending:
                batch, self._pending = self._pending[: self.batch_max], self._pending[self.batch_max :]
                try:
                    await self.pool.execute(_INSERT, *(list(col) for col in zip(*batch, strict=True)))
                    self.written += len(batch)
                except Exception as e:
                    if getattr(self.pool, "is_closing", lambda: False)():
                        # shutting down: the `route` events keep these paths
                        log.error(
                            "recording rows not written: pool closed", rows=len(self._pending) + len(batch)
                        )
                        self.dropped += len(batch) + len(self._pending)
                        self._pending = []
                        break
                    log.error("recording rows not written; retrying", rows=len(batch), error=str(e))
                    self._pending[:0] = batch
                    await asyncio.sleep(1.0)
            self._idle.set()


_UPSERT = """
INSERT INTO recordings (linkedid, uniqueid, path, number, did, queue, preferred_agent, created_at,
                        started_at, ended_at, duration_s)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10)
ON CONFLICT (linkedid) DO UPDATE SET
    started_at = EXCLUDED.started_at, ended_at = EXCLUDED.ended_at, duration_s = EXCLUDED.duration_s,
    preferred_agent = COALESCE(recordings.preferred_agent, EXCLUDED.preferred_agent),
    did = COALESCE(recordings.did, EXCLUDED.did), queue = COALESCE(recordings.queue, EXCLUDED.queue),
    number = COALESCE(recordings.number, EXCLUDED.number)
"""


@dataclass(slots=True)
class _Call:
    number: str | None = None
    did: str | None = None
    queue: str | None = None
    preferred: str | None = None
    path: str | None = None
    recorded_uid: str | None = None  # the channel MixMonitor runs on
    started: float | None = None
    caller_gone: bool = False


_s = first  # the first value of a header, "" when absent
_ts = event_ts


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


class RecordingTracker:
    """Completes recording rows from AMI events (feed every event to `handle_ami`)."""

    def __init__(self, pool: Any, *, max_tracked: int = 100_000) -> None:
        self.pool = pool
        self.max_tracked = max_tracked
        self.calls: dict[str, _Call] = {}
        self.written = 0

    def _call(self, linkedid: str) -> _Call | None:
        c = self.calls.get(linkedid)
        if c is None and linkedid and len(self.calls) < self.max_tracked:
            c = self.calls[linkedid] = _Call()
        return c

    async def handle_ami(self, frame: Mapping[str, Any]) -> None:
        ev, uid, lid = _s(frame, "Event"), _s(frame, "Uniqueid"), _s(frame, "Linkedid")
        if not lid:
            return
        if ev == "Newchannel":
            if uid == lid and not lid.startswith("cti-"):  # the inbound caller
                c = self._call(lid)
                if c is not None:
                    c.number = _s(frame, "CallerIDNum") or None
            return
        c = self.calls.get(lid)
        if ev == "VarSet":
            var, value = _s(frame, "Variable"), _s(frame, "Value")
            c = c or (self._call(lid) if var in ("CTI_DID", "MIXMONITOR_FILENAME") else None)
            if c is None:
                return
            if var in ("__CTI_DNIS", "CTI_DNIS", "CTI_DID") and value:
                c.did = value
            elif var == "CTI_QUEUE" and value:
                c.queue = value
            elif var == "CTI_PREFERRED":
                c.preferred = value or None
            elif var == "MIXMONITOR_FILENAME" and value:
                c.path = value
            if lid.startswith("cti-") and _s(frame, "Context") == "callback-did":
                c.number = c.number or _s(frame, "Exten") or None  # a callback: the customer
            return
        if c is None:
            return
        if ev == "MixMonitorStart":
            c.recorded_uid, c.started = uid, _ts(frame)
        elif ev in ("MixMonitorStop", "Hangup") and uid == c.recorded_uid:
            c.recorded_uid = None
            ended = _ts(frame)
            try:
                await self._write(lid, c, ended)
            except CONNECTION_ERRORS:  # an upsert: safe to write again when the database is back
                retry_later(lambda: self._write(lid, c, ended), "recording_row", linkedid=lid)
        if ev == "Hangup" and uid == lid:
            c.caller_gone = True
        # the caller's Hangup can come before the recorded agent leg's (11, 12): keep the call until both
        if c.caller_gone and c.recorded_uid is None:
            self.calls.pop(lid, None)

    async def _write(self, linkedid: str, c: _Call, ended: float | None) -> None:
        if c.path is None or c.started is None or ended is None:
            return
        duration = Decimal(f"{max(0.0, ended - c.started):.3f}")
        await self.pool.execute(
            _UPSERT, linkedid, linkedid, c.path, c.number, c.did, c.queue, c.preferred,
            _dt(c.started), _dt(ended), duration,
        )  # fmt: skip
        self.written += 1


_DEGRADED = """
INSERT INTO recordings (linkedid, uniqueid, path, number, did, queue, created_at)
SELECT COALESCE(e.linkedid, e.uniqueid), e.uniqueid, e.payload->>'record', e.payload->>'number',
       e.payload->>'did', e.payload->>'queue', e.ts
FROM events e
WHERE e.source = 'agi' AND e.type = 'degraded_route' AND e.ts >= $1
  AND COALESCE(e.payload->>'record', '') <> ''
ON CONFLICT (linkedid) DO NOTHING
"""


async def import_degraded_recordings(conn: Any, since: datetime) -> int:
    """A recording row for every call the degraded script routed with a recording path (R-REC: every
    call); idempotent. Returns how many rows were added."""
    status = await conn.execute(_DEGRADED, since)
    return int(status.split()[-1])

"""Recording rows (R-REC) written in batches, off the call's critical path.

The `route` handler decides the file path and hands it to the dialplan at once; the row that ties the
path to the call (by Linkedid) is queued here and inserted with the next batch, a few milliseconds
later. A commit per call would be most of the route latency (bench/agi.py). If PostgreSQL is down the
rows wait in memory (bounded) and the `route` event, which carries the same path, is kept by the
event store's spool: nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import Any

import structlog

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
        """Returns when every row added so far has been written (or the writer gave up on it)."""
        if self._pending:
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

"""Event store: a bounded in-memory queue, a batching writer, and a spool for database outages.

- `append()` awaits when the queue is full: a slow database slows producers, memory stays bounded.
- The writer COPYs a batch into a per-connection staging table and inserts it into the partitioned
  `events` table with ON CONFLICT DO NOTHING: replaying the same input stores it once.
- When PostgreSQL is unreachable, batches go to the on-disk spool (fsynced segments) and keep going
  there, in order, until the spool has been drained back into the database.
- Rows PostgreSQL refuses as data (a NUL byte in a caller name, a lone surrogate) are cleaned and
  retried one by one; whatever still fails goes to a dead-letter segment with the reason.

Durability point: `flush()` returns when everything appended before it is committed in PostgreSQL
or fsynced in the spool. `close()` flushes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import structlog

from cti.clock import Clock, SystemClock
from cti.store.spool import FIELDS, Spool

log = structlog.get_logger(__name__)

SOURCES = frozenset({"ami", "agi", "cti", "sim"})
_SURROGATE = re.compile("[\ud800-\udfff]")

# Errors that mean "the database is not there right now", as opposed to "this row is bad".
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.InternalClientError,  # seen when a terminated connection is reused
)


@dataclass(frozen=True, slots=True)
class Event:
    ts: datetime
    source: str
    type: str
    payload: Mapping[str, Any]
    key: str | None = None
    uniqueid: str | None = None
    linkedid: str | None = None
    agent: str | None = None
    queue: str | None = None

    def to_row(self) -> tuple[Any, ...]:
        """(ts, key, source, type, uniqueid, linkedid, agent, queue, payload_json) — spool.FIELDS."""
        if self.source not in SOURCES:
            raise ValueError(f"event source must be one of {sorted(SOURCES)}, got {self.source!r}")
        if self.ts.tzinfo is None:
            raise ValueError(f"event {self.type!r} has a naive timestamp; times must be timezone-aware")
        raw = encode_payload(self.payload)
        key = self.key
        if key is None:
            h = hashlib.blake2b(digest_size=16)
            # integer microseconds: cheaper than isoformat() and identical for identical times
            h.update(f"{self.source}\x1f{self.type}\x1f{round(self.ts.timestamp() * 1e6)}\x1f".encode())
            h.update(raw)
            key = h.hexdigest()
        payload = raw.decode()
        return (
            self.ts, key, self.source, self.type, self.uniqueid, self.linkedid, self.agent, self.queue,
            payload,
        )  # fmt: skip


_ORJSON_OPTS = orjson.OPT_NON_STR_KEYS


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    """JSON bytes (UTF-8, not escaped). Lone surrogates, which UTF-8 cannot carry, become U+FFFD
    here rather than failing the producer."""
    try:
        return orjson.dumps(payload, default=str, option=_ORJSON_OPTS)
    except orjson.JSONEncodeError:
        return orjson.dumps(_scrub(payload), default=str, option=_ORJSON_OPTS)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, Mapping):
        return {_scrub(k): _scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(v) for v in value]
    return value


class _Flush:
    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()


_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS events_stage (
    ord bigint, ts timestamptz, key text, source text, type text, uniqueid text, linkedid text,
    agent text, queue text, payload text
) ON COMMIT DELETE ROWS"""

_MOVE = """
INSERT INTO events (ts, key, source, type, uniqueid, linkedid, agent, queue, payload)
SELECT ts, key, source, type, uniqueid, linkedid, agent, queue, payload::jsonb
FROM events_stage ORDER BY ord
ON CONFLICT DO NOTHING"""

_INSERT_ONE = """
INSERT INTO events (ts, key, source, type, uniqueid, linkedid, agent, queue, payload)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb) ON CONFLICT DO NOTHING"""

_STAGE_COLUMNS = ("ord", *FIELDS)


def _by_day(rows: list[tuple[Any, ...]]) -> list[tuple[date, list[tuple[Any, ...]]]]:
    """Split rows into runs of the same UTC day, keeping their order."""
    runs: list[tuple[date, list[tuple[Any, ...]]]] = []
    for r in rows:
        d = r[0].astimezone(UTC).date()
        if runs and runs[-1][0] == d:
            runs[-1][1].append(r)
        else:
            runs.append((d, [r]))
    return runs


def _clean_text(s: str | None) -> str | None:
    if s is None:
        return None
    return _SURROGATE.sub("\ufffd", s.replace("\x00", "\ufffd"))


def _clean_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """Make a row PostgreSQL can store: no NUL (text and jsonb refuse it), no lone surrogates."""
    ts, *rest = row
    out = [ts, *(_clean_text(v) if isinstance(v, str) else v for v in rest)]
    out[-1] = out[-1].replace("\\u0000", "\\ufffd")  # JSON-escaped NUL, refused by jsonb
    return tuple(out)


class EventStore:
    def __init__(
        self,
        dsn: str,
        spool_dir: Path,
        *,
        batch_max: int = 5000,
        queue_max: int = 50000,  # ~1 KB a row: bounded at ~50 MB, deep enough to overlap a batch in flight
        retry_interval_s: float = 1.0,
        partitions_ahead_days: int = 7,
        connect_timeout_s: float = 5.0,
        clock: Clock | None = None,
    ) -> None:
        self.dsn = dsn
        self.clock: Clock = clock or SystemClock()
        self.spool = Spool(Path(spool_dir))
        self.batch_max = batch_max
        self.retry_interval_s = retry_interval_s
        self.partitions_ahead_days = partitions_ahead_days
        self.connect_timeout_s = connect_timeout_s
        self._queue: asyncio.Queue[tuple[Any, ...] | _Flush] = asyncio.Queue(maxsize=queue_max)
        self._conn: asyncpg.Connection | None = None
        self._known_days: set[date] = set()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.written = 0  # rows handed to PostgreSQL (duplicates included)
        self.spooled = 0  # rows written to the spool
        self.dead = 0  # rows in dead-letter segments
        self.batches = 0
        self.replayed_batches = 0  # batches that held already-stored keys
        self.db_up = False

    # ---- producer side -------------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("EventStore already started")
        self._task = asyncio.create_task(self._run(), name="event-store-writer")

    async def append(self, event: Event) -> None:
        """Queue one event (validated now, so a bad event fails its producer, not the batch)."""
        if self._closing:
            raise RuntimeError("EventStore is closed")
        self._check_writer()
        row = event.to_row()
        await self._queue.put(row)

    async def flush(self) -> None:
        self._check_writer()
        marker = _Flush()
        await self._queue.put(marker)
        await asyncio.shield(marker.done)

    async def close(self) -> None:
        if self._task is None:
            return
        if not self._task.done():
            await self.flush()
        self._closing = True
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        await self._disconnect()

    def _check_writer(self) -> None:
        if self._task is None:
            raise RuntimeError("EventStore not started")
        if self._task.done() and not self._task.cancelled() and self._task.exception():
            raise RuntimeError("event store writer died") from self._task.exception()

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    # ---- writer side ---------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            timeout = self.retry_interval_s if (not self.db_up or self.spool.has_segments()) else None
            rows, flushes = await self._next_batch(timeout)
            if not self.db_up or self.spool.has_segments():
                await self._try_recover()
            if rows:
                if self.db_up and not self.spool.has_segments():
                    try:
                        await self._write(rows)
                    except CONNECTION_ERRORS as e:
                        await self._went_down(e)
                        self._spool_rows(rows)
                    except Exception as e:  # never let the writer die holding accepted events
                        log.exception("event_store_write_failed_spooling", error=type(e).__name__)
                        await self._went_down(e)
                        self._spool_rows(rows)
                else:
                    self._spool_rows(rows)
            for f in flushes:
                if not f.done.done():
                    f.done.set_result(None)

    async def _next_batch(self, wait_s: float | None) -> tuple[list[tuple[Any, ...]], list[_Flush]]:
        rows: list[tuple[Any, ...]] = []
        flushes: list[_Flush] = []
        try:
            first = await asyncio.wait_for(self._queue.get(), wait_s) if wait_s else await self._queue.get()
        except TimeoutError:
            return rows, flushes
        items = [first]
        while len(items) < self.batch_max:
            try:
                items.append(self._queue.get_nowait())
            except asyncio.QueueEmpty:
                break
        for it in items:
            if isinstance(it, _Flush):
                flushes.append(it)
            else:
                rows.append(it)
        return rows, flushes

    def _spool_rows(self, rows: list[tuple[Any, ...]]) -> None:
        # A full disk here is fatal for the writer on purpose: the error surfaces through flush().
        self.spool.write(rows)
        self.spooled += len(rows)

    async def _try_recover(self) -> None:
        """Reconnect if needed, then drain spool segments oldest first."""
        try:
            await self._connect()
            for seg in self.spool.segments():
                await self._write(list(self.spool.read(seg)))
                self.spool.remove(seg)
                log.info("spool_segment_drained", segment=seg.name)
        except CONNECTION_ERRORS as e:
            await self._went_down(e)
        except Exception as e:  # the spool stays on disk; try again on the next interval
            log.exception("spool_drain_failed", error=type(e).__name__)
            await self._went_down(e)

    async def _went_down(self, e: BaseException) -> None:
        if self.db_up:
            log.warning("event_store_database_unreachable", error=type(e).__name__, detail=str(e)[:200])
        self.db_up = False
        await self._disconnect()

    async def _connect(self) -> None:
        if self._conn is not None and not self._conn.is_closed():
            self.db_up = True
            return
        self._conn = await asyncpg.connect(self.dsn, timeout=self.connect_timeout_s)
        await self._conn.execute(_STAGE)
        self._known_days.clear()
        first = self.clock.now().astimezone(UTC).date() - timedelta(days=1)
        ahead = self.partitions_ahead_days
        await self._conn.execute("SELECT cti_ensure_event_partitions($1, $2)", first, ahead)
        self._known_days.update(first + timedelta(days=i) for i in range(ahead))
        if not self.db_up:
            log.info("event_store_database_connected")
        self.db_up = True

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.terminate()

    async def _ensure_partitions(self, rows: list[tuple[Any, ...]]) -> None:
        assert self._conn is not None
        days = {r[0].astimezone(UTC).date() for r in rows} - self._known_days
        for d in sorted(days):
            await self._conn.execute("SELECT cti_ensure_event_partitions($1, 1)", d)
            self._known_days.add(d)

    async def _write(self, rows: list[tuple[Any, ...]]) -> None:
        await self._connect()
        assert self._conn is not None
        await self._ensure_partitions(rows)
        try:
            try:
                # Normal path: COPY straight into each day's partition (skips routing), in order.
                async with self._conn.transaction():
                    for day, part in _by_day(rows):
                        await self._conn.copy_records_to_table(
                            f"events_p{day:%Y%m%d}", records=part, columns=FIELDS
                        )
            except asyncpg.exceptions.UniqueViolationError:
                # A replay (reconnect, spool drain, restart): stage and keep only what is new.
                self.replayed_batches += 1
                async with self._conn.transaction():
                    await self._conn.copy_records_to_table(
                        "events_stage", records=[(i, *r) for i, r in enumerate(rows)], columns=_STAGE_COLUMNS
                    )
                    await self._conn.execute(_MOVE)
        except CONNECTION_ERRORS:
            raise
        except (asyncpg.exceptions.DataError, asyncpg.exceptions.CharacterNotInRepertoireError,
                UnicodeEncodeError, ValueError) as e:  # fmt: skip
            await self._write_one_by_one(rows, e)
        self.written += len(rows)
        self.batches += 1

    async def _write_one_by_one(self, rows: list[tuple[Any, ...]], batch_error: BaseException) -> None:
        assert self._conn is not None
        log.warning("event_batch_refused_retrying_rows", rows=len(rows), error=type(batch_error).__name__)
        for row in rows:
            try:
                await self._conn.execute(_INSERT_ONE, *_clean_row(row))
            except CONNECTION_ERRORS:
                raise
            except (asyncpg.PostgresError, UnicodeEncodeError, ValueError) as e:
                self.spool.dead_letter([row], f"{type(e).__name__}: {e}")
                self.dead += 1
                log.error("event_dead_lettered", type=row[3], key=row[1], error=type(e).__name__)

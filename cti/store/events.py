"""Event store: a bounded in-memory buffer, a batching writer, and a spool for database outages.

- `append()` awaits when the buffer is full: a slow database slows producers, memory stays bounded.
  It also yields to the event loop every `yield_every` events, so a producer in a tight loop cannot
  starve the writer's socket I/O (that starvation halved throughput: decision 0002).
- The writer COPYs each batch straight into the day's partition; only a batch that hits the primary
  key (a replay) goes through a staging table and ON CONFLICT DO NOTHING, so the same input is
  stored once.
- Payloads travel as orjson's UTF-8 bytes all the way into COPY (a binary jsonb codec on the
  writer's connection), never decoded to `str` and re-encoded.
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
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import structlog

from cti.clock import Clock, SystemClock
from cti.metrics import observe_event_lag
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
        """(ts, key, source, type, uniqueid, linkedid, agent, queue, payload JSON bytes) — spool.FIELDS."""
        if self.source not in SOURCES:
            raise ValueError(f"event source must be one of {sorted(SOURCES)}, got {self.source!r}")
        if self.ts.tzinfo is None:
            raise ValueError(f"event {self.type!r} has a naive timestamp; times must be timezone-aware")
        raw = encode_payload(self.payload)
        key = self.key
        if key is None:
            # The primary key is (ts, key): the time is already part of the identity, so the digest
            # covers only what else tells two events apart.
            h = _blake2b(f"{self.source}\x1f{self.type}\x1f".encode(), digest_size=16)
            h.update(raw)
            key = h.hexdigest()
        # orjson's bytes sit in an ~8 KB allocation each: a full buffer of them pinned 480 MB. A compact
        # copy costs 0.1 µs.
        payload = bytes(memoryview(raw))
        return (
            self.ts, key, self.source, self.type, self.uniqueid, self.linkedid, self.agent, self.queue,
            payload,
        )  # fmt: skip


_ORJSON_OPTS = orjson.OPT_NON_STR_KEYS
_blake2b = hashlib.blake2b


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


_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS events_stage (
    ord bigint, ts timestamptz, key text, source text, type text, uniqueid text, linkedid text,
    agent text, queue text, payload jsonb
) ON COMMIT DELETE ROWS"""

_MOVE = """
INSERT INTO events (ts, key, source, type, uniqueid, linkedid, agent, queue, payload)
SELECT ts, key, source, type, uniqueid, linkedid, agent, queue, payload
FROM events_stage ORDER BY ord
ON CONFLICT DO NOTHING"""

_INSERT_ONE = """
INSERT INTO events (ts, key, source, type, uniqueid, linkedid, agent, queue, payload)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb) ON CONFLICT DO NOTHING"""

_STAGE_COLUMNS = ("ord", *FIELDS)
_DAY = timedelta(days=1)


def _jsonb_encode(value: bytes | str) -> bytes:
    """Binary jsonb is a version byte and the JSON text: orjson's bytes go through untouched."""
    return b"\x01" + (value if isinstance(value, bytes) else value.encode())


def _jsonb_decode(data: bytes) -> str:
    return data[1:].decode()


def _by_day(rows: list[tuple[Any, ...]]) -> list[tuple[date, list[tuple[Any, ...]]]]:
    """Split rows into runs of the same UTC day, keeping their order (one date computation per run,
    a comparison per row)."""
    runs: list[tuple[date, list[tuple[Any, ...]]]] = []
    i, n = 0, len(rows)
    while i < n:
        day = rows[i][0].astimezone(UTC).date()
        lo = datetime(day.year, day.month, day.day, tzinfo=UTC)
        hi = lo + _DAY
        j = i + 1
        while j < n and lo <= rows[j][0] < hi:
            j += 1
        runs.append((day, rows[i:j] if (i, j) != (0, n) else rows))
        i = j
    return runs


def _clean_text(s: str | None) -> str | None:
    if s is None:
        return None
    return _SURROGATE.sub("\ufffd", s.replace("\x00", "\ufffd"))


def _clean_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """Make a row PostgreSQL can store: no NUL (text and jsonb refuse it), no lone surrogates."""
    ts, *rest = row
    if isinstance(rest[-1], bytes):
        rest[-1] = rest[-1].decode()
    out = [ts, *(_clean_text(v) if isinstance(v, str) else v for v in rest)]
    out[-1] = out[-1].replace("\\u0000", "\\ufffd")  # JSON-escaped NUL, refused by jsonb
    return tuple(out)


class WriterDied(RuntimeError):
    """The writer task stopped (e.g. the spool's disk refused a write); nothing more is accepted."""

    @classmethod
    def of(cls, cause: BaseException) -> WriterDied:
        err = cls(f"event store writer died: {cause!r}")
        err.__cause__ = cause
        return err


class EventStore:
    def __init__(
        self,
        dsn: str,
        spool_dir: Path,
        *,
        batch_max: int = 5000,
        queue_max: int = 50000,  # ~1 KB a row: bounded at ~50 MB, deep enough to overlap a batch in flight
        yield_every: int = 64,
        linger_s: float = 0.005,
        linger_rows: int = 256,
        retry_interval_s: float = 1.0,
        partitions_ahead_days: int = 7,
        connect_timeout_s: float = 5.0,
        # A COPY of one batch takes milliseconds. A connection that accepts and never answers (a
        # blackholed route, a hung server) would otherwise hold the writer forever with every event
        # since in memory: past this deadline the batch goes to the spool and the connection is dropped.
        write_timeout_s: float = 10.0,
        clock: Clock | None = None,
    ) -> None:
        self.dsn = dsn
        self.clock: Clock = clock or SystemClock()
        self.spool = Spool(Path(spool_dir))
        self.batch_max = batch_max
        self.queue_max = queue_max
        self.yield_every = yield_every
        self.linger_s = linger_s
        self.linger_rows = linger_rows
        self.retry_interval_s = retry_interval_s
        self.partitions_ahead_days = partitions_ahead_days
        self.connect_timeout_s = connect_timeout_s
        self.write_timeout_s = write_timeout_s
        # Accepted rows not yet taken by the writer, oldest first. A plain list: the writer takes a
        # batch as one slice, not row by row.
        self._buf: list[tuple[Any, ...]] = []
        self._appended = 0  # rows ever accepted
        self._handled = 0  # of those, rows committed, spooled or dead-lettered (always a prefix)
        self._flushes: list[tuple[int, asyncio.Future[None]]] = []
        self._wake: asyncio.Future[None] | None = None  # the idle writer waits on this
        self._room: list[asyncio.Future[None]] = []  # producers waiting for room in the buffer
        self._since_yield = 0
        self._writer_done = True  # until start()
        self._retry_at = 0.0  # monotonic time of the next reconnect attempt
        self._spool_known: bool | None = None  # are there segments to drain? None: look at the directory
        self._spool_checked_at = 0.0
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
        self._on_append: list[Callable[[tuple[Any, ...]], None]] = []
        self.spool_refused = False  # the spool's disk refused the last write (full): rows held in memory

    # ---- producer side -------------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("EventStore already started")
        self._task = asyncio.create_task(self._run(), name="event-store-writer")
        self._writer_done = False  # set by the writer as it stops; cheaper per append than the task

    async def append(self, event: Event) -> None:
        """Accept one event (validated now, so a bad event fails its producer, not the batch).
        Waits while the buffer is full."""
        if self._closing or self._writer_done:
            self._check_writer()
            raise RuntimeError("EventStore is closed")
        row = event.to_row()
        while len(self._buf) >= self.queue_max:
            await self._wait_for_room()
        self._buf.append(row)
        self._appended += 1
        for fn in self._on_append:
            fn(row)
        if self._wake is not None:
            self._wake_writer()
        self._since_yield += 1
        if self._since_yield >= self.yield_every:
            self._since_yield = 0
            await asyncio.sleep(0)

    def on_append(self, fn: Callable[[tuple[Any, ...]], None]) -> None:
        """`fn(row)` for every accepted event, in the order they will be stored (their seq order), as
        the row stored (spool.FIELDS): a consumer sees exactly what `cti facts rebuild` will read."""
        self._on_append.append(fn)

    async def flush(self) -> None:
        """Return once everything appended before this call is committed in PostgreSQL or fsynced in
        the spool (and the writer has had one turn at draining the spool)."""
        self._check_writer()
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._flushes.append((self._appended, fut))
        self._wake_writer()
        await asyncio.shield(fut)

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
        if self._task.done() and not self._task.cancelled() and (exc := self._task.exception()):
            raise WriterDied.of(exc)

    def _wake_writer(self) -> None:
        w = self._wake
        if w is not None:
            self._wake = None
            if not w.done():
                w.set_result(None)

    async def _wait_for_room(self) -> None:
        self._check_writer()
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._room.append(fut)
        try:
            await fut
        finally:
            if fut in self._room:
                self._room.remove(fut)

    @property
    def backlog(self) -> int:
        return len(self._buf)

    # ---- writer side ---------------------------------------------------------------------------
    async def _run(self) -> None:
        try:
            while True:
                if not self._buf and not self._flushes:
                    pending = not self.db_up or self._spool_waiting()
                    await self._idle(self.retry_interval_s if pending else None)
                if len(self._buf) < self.linger_rows and not self._flushes and self.db_up:
                    # A trickle (one event per AGI call) would cost a transaction per event: let a few
                    # more arrive and share the commit.
                    await asyncio.sleep(self.linger_s)
                rows = self._take()
                if self._should_recover():
                    await self._try_recover()
                if rows:
                    done = True
                    if self.db_up and not self._spool_waiting():
                        try:
                            await self._write(rows)
                        except CONNECTION_ERRORS as e:
                            await self._went_down(e)
                            done = self._spool_rows(rows)
                        except Exception as e:  # never let the writer die holding accepted events
                            log.exception("event_store_write_failed_spooling", error=type(e).__name__)
                            await self._went_down(e)
                            done = self._spool_rows(rows)
                    else:
                        done = self._spool_rows(rows)
                    if done:
                        self._handled += len(rows)
                    else:  # neither the database nor the disk: hold them, try both again shortly
                        self._settle_flushes()
                        await asyncio.sleep(self.retry_interval_s)
                        continue
                self._settle_flushes()
        except BaseException as e:
            # Cancelled (close) or a fatal error such as a full disk: nobody may wait forever.
            self._writer_done = True
            closed = isinstance(e, asyncio.CancelledError)
            err = WriterDied("event store closed") if closed else WriterDied.of(e)
            for fut in [f for _, f in self._flushes] + self._room:
                if not fut.done():
                    fut.set_exception(err)
            self._flushes.clear()
            self._room.clear()
            raise

    def _should_recover(self) -> bool:
        """Reconnect at most once per retry interval, or when someone flushes (a blackholed network
        costs a connect timeout each time; meanwhile rows go to the spool); drain the spool whenever
        connected."""
        if not self.db_up:
            return bool(self._flushes) or time.monotonic() >= self._retry_at
        return self._spool_waiting()

    def _spool_waiting(self) -> bool:
        """Are there spool segments to drain? Known exactly for our own; other processes' (the
        degraded-mode AGI script) are looked for once per retry interval or on a flush, not on every
        batch (a directory listing each time)."""
        now = time.monotonic()
        stale = now >= self._spool_checked_at + self.retry_interval_s
        if self._spool_known is None or self._flushes or stale:
            self._spool_known = self.spool.has_segments()
            self._spool_checked_at = now
        return self._spool_known

    async def _idle(self, wait_s: float | None) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._wake = fut
        try:
            if wait_s is None:
                await fut
            else:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait_s):
                        await fut
        finally:
            self._wake = None

    def _take(self) -> list[tuple[Any, ...]]:
        buf = self._buf
        if len(buf) <= self.batch_max:
            rows, self._buf = buf, []
        else:
            rows = buf[: self.batch_max]
            del buf[: self.batch_max]
        if rows:
            room, self._room = self._room, []
            for fut in room:
                if not fut.done():
                    fut.set_result(None)
        return rows

    def _settle_flushes(self) -> None:
        if not self._flushes:
            return
        keep = []
        for target, fut in self._flushes:
            if target <= self._handled:
                if not fut.done():
                    fut.set_result(None)
            else:
                keep.append((target, fut))
        self._flushes = keep

    def _spool_rows(self, rows: list[tuple[Any, ...]]) -> bool:
        """Spool the rows; False if the disk refused them (full, read-only), and then they are back at
        the head of the buffer, in order. The writer used to die here, and with it every producer
        (issue 16's spool-full drill: the AMI listener, routing events, callbacks all failed). Held in
        memory instead, the buffer's bound (queue_max) slows producers as a slow database does."""
        try:
            self.spool.write(rows)
        except OSError as e:
            if not self.spool_refused:
                log.error("event_spool_refused_holding_in_memory", error=e.strerror or type(e).__name__,
                          held=len(rows) + len(self._buf))  # fmt: skip
            self.spool_refused = True
            self._buf[:0] = rows
            return False
        if self.spool_refused:
            log.warning("event_spool_writable_again")
            self.spool_refused = False
        self._spool_known = True
        self.spooled += len(rows)
        return True

    async def _try_recover(self) -> None:
        """Reconnect if needed, then drain spool segments oldest first."""
        try:
            await self._connect()
            for seg in self.spool.segments():
                await self._write(list(self.spool.read(seg)))
                self.spool.remove(seg)
                log.info("spool_segment_drained", segment=seg.name)
            self._spool_known = None  # look again: another process may have added one meanwhile
            if self.spool_refused:
                log.warning("event_spool_writable_again")  # drained: the held rows go on normally
                self.spool_refused = False
        except CONNECTION_ERRORS as e:
            await self._went_down(e)
        except Exception as e:  # the spool stays on disk; try again on the next interval
            log.exception("spool_drain_failed", error=type(e).__name__)
            await self._went_down(e)

    async def _went_down(self, e: BaseException) -> None:
        if self.db_up:
            log.warning("event_store_database_unreachable", error=type(e).__name__, detail=str(e)[:200])
        self.db_up = False
        self._retry_at = time.monotonic() + self.retry_interval_s
        await self._disconnect()

    async def _connect(self) -> None:
        if self._conn is not None and not self._conn.is_closed():
            self.db_up = True
            return
        async with asyncio.timeout(self.connect_timeout_s + self.write_timeout_s):
            await self._open()

    async def _open(self) -> None:
        self._conn = await asyncpg.connect(self.dsn, timeout=self.connect_timeout_s)
        await self._conn.set_type_codec(
            "jsonb", schema="pg_catalog", encoder=_jsonb_encode, decoder=_jsonb_decode, format="binary"
        )
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

    async def _ensure_partitions(self, days: list[date]) -> None:
        assert self._conn is not None
        for d in sorted(set(days) - self._known_days):
            await self._conn.execute("SELECT cti_ensure_event_partitions($1, 1)", d)
            self._known_days.add(d)

    async def _write(self, rows: list[tuple[Any, ...]]) -> None:
        await self._connect()
        async with asyncio.timeout(self.write_timeout_s):  # TimeoutError: a CONNECTION_ERROR
            await self._write_batch(rows)

    async def _write_batch(self, rows: list[tuple[Any, ...]]) -> None:
        assert self._conn is not None
        runs = _by_day(rows)
        await self._ensure_partitions([day for day, _ in runs])
        try:
            try:
                # Normal path: COPY straight into each day's partition (skips routing), in order. One
                # day (nearly always) is one COPY, atomic by itself: no BEGIN/COMMIT round trips.
                atomic = self._conn.transaction() if len(runs) > 1 else contextlib.nullcontext()
                async with atomic:
                    for day, part in runs:
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
        ts = rows[0][0]  # the batch's oldest event: its lag is the batch's worst
        if isinstance(ts, datetime):
            observe_event_lag(self.clock.time() - ts.timestamp())

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

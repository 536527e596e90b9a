"""A call's facts written when it ends (issue 15), instead of re-deriving a window every minute.

`LiveFacts` keeps one long-lived `Deriver` fed with every AMI event the event store accepts, in the
order it stores them (`EventStore.on_append`) and as it stores them (the row's timestamp and JSON
payload): the same input, in the same order, that `cti facts rebuild` reads back from the `events`
table, so the incremental rows and a rebuild's are the same by construction (tested). When a call's
last channel hangs up (or a resync shows it gone), its facts, rings and ring-no-answers are queued and
a writer task upserts them with the hourly rollups they touch in one transaction (`repo.write_calls`).

Runs in every process that stores AMI events, not only under the leader (decision 0112): a call's
events are in the memory of the processes that heard it, and the write is idempotent per call.

Memory is bounded by the calls that are live: an ended call leaves the deriver as it is queued. After
a restart the deriver is warmed from the last `warm_s` of the events table before AMI connects, so a
call that was live across the restart still gets all its facts. Agent sessions and pauses are still
written by the slow sweep (`FactsUpdater`, leader only), which also catches any call whose end was
missed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Any

import asyncpg
import orjson
import structlog

from cti.ami.headers import first
from cti.clock import Clock, SystemClock
from cti.facts.derive import CallFact, Deriver, Ring, RingNoAnswer
from cti.facts.repo import ami_events, write_calls
from cti.policy import RingPolicy

log = structlog.get_logger(__name__)

_TS, _SOURCE, _TYPE, _PAYLOAD = 0, 2, 3, 8  # spool.FIELDS
_Ended = tuple[CallFact, list[Ring], list[RingNoAnswer]]


class LiveFacts:
    def __init__(
        self,
        pool: asyncpg.Pool,
        ring: RingPolicy,
        *,
        clock: Clock | None = None,
        retry_s: float = 1.0,
        batch_max: int = 500,
        recent_max: int = 20000,
    ) -> None:
        self.pool = pool
        self.ring = ring
        self.deriver = Deriver(ring)
        self.clock: Clock = clock or SystemClock()
        self.retry_s = retry_s
        self.batch_max = batch_max
        self._pending: list[_Ended] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._warming = False
        # Ended calls kept so that a later leg with the same Linkedid continues the call as a rebuild
        # would (the deriver reopens a call it thought over); legs come seconds apart, not hours.
        self._recent: OrderedDict[str, _Ended] = OrderedDict()
        self.recent_max = recent_max
        self.written = 0  # calls written (re-writes included)
        # fn(calls, clock time) after each committed batch: how long after its end a call was written
        self.on_written: list[Callable[[list[CallFact], float], None]] = []

    # ---- input: rows as the event store accepts them -------------------------------------------
    def on_row(self, row: tuple[Any, ...]) -> None:
        if row[_SOURCE] != "ami":
            return
        p = row[_PAYLOAD]
        self.feed(row[_TS], row[_TYPE], orjson.loads(p) if isinstance(p, bytes | str) else p)

    def feed(self, ts: datetime, typ: str, payload: Any) -> None:
        d = self.deriver
        if typ == "Newchannel":
            lid = first(payload, "Linkedid") or first(payload, "Uniqueid")
            back = self._recent.pop(lid, None) if lid not in d.f.calls else None
            if back is not None:  # a new leg of a call that had ended: the deriver carries on with it
                d.f.calls[lid] = back[0]
                d.f.rings.extend(back[1])
                d.f.ring_no_answer.extend(back[2])
        before = len(d.live_calls)
        d.feed(ts.timestamp(), typ, payload)
        if len(d.live_calls) >= before and typ not in ("Hangup", "resync"):
            return  # no call ended (only a Hangup, a resync or a line-test mark removes a live call)
        for lid in [lid for lid in d.f.calls if lid not in d.live_calls]:
            self._ended(lid)

    def _ended(self, lid: str) -> None:
        f = self.deriver.f
        call = f.calls.pop(lid)
        rings = [r for r in f.rings if r.linkedid == lid]
        rnas = [r for r in f.ring_no_answer if r.linkedid == lid]
        if rings:
            f.rings = [r for r in f.rings if r.linkedid != lid]
        if rnas:
            f.ring_no_answer = [r for r in f.ring_no_answer if r.linkedid != lid]
        # sessions and pauses are the sweep's: keep only the open ones (the deriver still updates them)
        if len(f.sessions) > 1000:
            f.sessions = [s for s in f.sessions if s.logout_at is None]
        if len(f.pauses) > 1000:
            f.pauses = [p for p in f.pauses if p.ended_at is None]
        if len(f.ring_no_answer) > 1000:  # of calls this process never saw begin: the sweep's
            f.ring_no_answer = [r for r in f.ring_no_answer if r.linkedid in f.calls]
        self._recent[lid] = (call, rings, rnas)
        if len(self._recent) > self.recent_max:
            self._recent.popitem(last=False)
        if self._warming:
            return  # ended before this process started: the previous one (or the sweep) wrote it
        self._pending.append((call, rings, rnas))
        self._idle.clear()
        self._wake.set()

    # ---- warm start ---------------------------------------------------------------------------
    async def warm(self, since: datetime) -> int:
        """Replay the events from `since` into the deriver (before AMI connects), so calls that were
        live when the previous process stopped are known when their Hangup comes."""
        n = 0
        self._warming = True
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                async for ts, type_, payload in ami_events(conn, since):
                    self.feed(ts, type_, payload)
                    n += 1
        finally:
            self._warming = False
        return n

    # ---- output: the writer task ---------------------------------------------------------------
    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch, self._pending = self._pending[: self.batch_max], self._pending[self.batch_max :]
                try:
                    async with self.pool.acquire() as conn:
                        await write_calls(conn, self.ring, [c for c, _r, _n in batch],
                                          [r for _c, rs, _n in batch for r in rs],
                                          [n for _c, _r, ns in batch for n in ns])  # fmt: skip
                except (OSError, asyncpg.PostgresError) as e:  # the database is back soon: keep them
                    log.warning("live facts write failed", error=type(e).__name__, detail=str(e)[:200])
                    self._pending[:0] = batch
                    await self.clock.sleep(self.retry_s)
                    continue
                self.written += len(batch)
                now = self.clock.time()
                for fn in self.on_written:
                    fn([c for c, _r, _n in batch], now)
            self._idle.set()

    async def drain(self) -> None:
        """Return once every call ended so far is written."""
        await self._idle.wait()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="live-facts")

    async def close(self, drain_s: float = 5.0) -> None:
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.drain(), drain_s)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

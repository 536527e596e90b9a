"""The slow sweep behind the live facts writer (`cti.facts.live`, decision 0112): every `interval_s`
it rebuilds the facts of the last `window_s` from the events log (the same code as `cti facts
rebuild`, so live facts and rebuilt history never disagree). It writes agent sessions and pauses, and
catches a call whose end the live writer missed (a gap, a restart). A call is re-derived as long as it
started inside the window; the window is far longer than any call (Queue() waits at most 60 s, talks
last minutes)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import structlog

from cti.clock import Clock, SystemClock
from cti.db.connect import CONNECT_TIMEOUT_S, close_bounded
from cti.facts.repo import rebuild
from cti.policy import RingPolicy
from cti.tasks import stop_tasks

log = structlog.get_logger(__name__)


class FactsUpdater:
    def __init__(
        self,
        dsn: str,
        ring: RingPolicy,
        *,
        clock: Clock | None = None,
        window_s: float = 6 * 3600,
        interval_s: float = 60.0,
        keep_ended: bool = True,
    ) -> None:
        self.keep_ended = keep_ended  # calls the live writer finished are its (repo.rebuild)
        self.dsn = dsn
        self.ring = ring
        self.clock: Clock = clock or SystemClock()
        self.window_s = window_s
        self.interval_s = interval_s
        self.last: dict[str, int] | None = None
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> dict[str, int]:
        since = self.clock.now() - timedelta(seconds=self.window_s)
        conn = await asyncpg.connect(self.dsn, timeout=CONNECT_TIMEOUT_S)
        try:
            self.last = await rebuild(conn, since, self.ring, keep_ended=self.keep_ended)
        finally:
            await close_bounded(conn)
        return self.last

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except (OSError, asyncpg.PostgresError) as e:  # the database is back soon; facts can wait
                log.warning("facts update failed", error=type(e).__name__, detail=str(e)[:200])
            await self.clock.sleep(self.interval_s)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="facts-updater")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await stop_tasks([task])  # called from the leadership task: its own cancel gets through

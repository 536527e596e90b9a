"""Wiring for the FastAGI side of `cti`: pool, caches, server, and the degraded-mode import loop.

`cti agi` runs it alone; a combined `cti serve` calls `start_agi` with its event store and live state.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import structlog

from cti.agi.context import AgiContext, CallbackAdvisor, create_pool, never_offer
from cti.agi.degraded_import import import_degraded_callbacks
from cti.agi.open_orders import OpenOrderNumbers
from cti.agi.recordings import import_degraded_recordings
from cti.agi.registry import default_registry
from cti.agi.server import FastAgiServer
from cti.clock import Clock, SystemClock
from cti.config import Settings
from cti.policy import Policy, load_policy
from cti.routing.snapshot import SnapshotSource, no_live_state
from cti.store.sink import EventSink

log = structlog.get_logger(__name__)

DEGRADED_IMPORT_EVERY_S = 60.0
DEGRADED_IMPORT_LOOKBACK = timedelta(days=7)


@dataclass
class AgiService:
    server: FastAgiServer
    ctx: AgiContext
    pool: Any | None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t
        await self.server.close()
        await self.ctx.aclose()
        if self.pool is not None:
            await self.pool.close()


async def start_agi(
    settings: Settings,
    *,
    events: EventSink,
    dsn: str | None,
    policy: Policy | None = None,
    clock: Clock | None = None,
    snapshot: SnapshotSource = no_live_state,
    callback_advisor: CallbackAdvisor = never_offer,
    agents: Any | None = None,
) -> AgiService:
    pool = await create_pool(dsn) if dsn else None
    open_orders = OpenOrderNumbers(dsn) if dsn else None
    if open_orders is not None:
        await open_orders.start()
    ctx = AgiContext(
        settings=settings,
        policy=policy or load_policy(settings.policy_file),
        clock=clock or SystemClock(),
        events=events,
        pool=pool,
        snapshot=snapshot,
        callback_advisor=callback_advisor,
        open_orders=open_orders,
        agents=agents,
    )
    if pool is not None:
        await ctx.directory.refresh()
    server = FastAgiServer(ctx, default_registry())
    await server.start()
    service = AgiService(server, ctx, pool)
    if pool is not None:
        service._tasks.append(asyncio.create_task(_import_loop(ctx), name="agi-degraded-import"))
    return service


async def _import_loop(ctx: AgiContext) -> None:
    while True:
        try:
            async with ctx.pool.acquire() as conn:
                since = ctx.clock.now() - DEGRADED_IMPORT_LOOKBACK
                await import_degraded_callbacks(conn, ctx.policy, since)
                await import_degraded_recordings(conn, since)
        except Exception as e:  # the database may be away; the events wait in the log
            log.warning("degraded-mode import failed; will retry", error=str(e))
        # a maintenance cadence, not domain time: a manual or scaled clock must not drive it
        await asyncio.sleep(DEGRADED_IMPORT_EVERY_S)

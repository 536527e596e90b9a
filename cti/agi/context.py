"""What an AGI handler may use: settings, policy, clock, the event store, a database pool, the live
state snapshot and cached reference data. Built once per server; handlers never open connections."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from cti.agi.open_orders import OpenOrderNumbers
from cti.agi.orders import OrderLookup
from cti.agi.recordings import RecordingWriter
from cti.clock import Clock, SystemClock
from cti.config import Settings
from cti.policy import Policy, load_policy
from cti.routing.inbound import AgentEntry, Directory
from cti.routing.snapshot import RoutingSnapshot, SnapshotSource, no_live_state
from cti.store.events import Event
from cti.store.sink import EventSink, MemoryEvents, append_or_log

log = structlog.get_logger(__name__)


AGI_COMMAND_TIMEOUT_S = 5.0


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 8) -> Any:
    """The pool AGI handlers share. synchronous_commit=off: a recording row lost in the last few ms
    before a PostgreSQL crash is rebuilt from the `route` event (the event store keeps it); waiting
    for a WAL flush on every call would be most of the route latency.

    No reset query on release: asyncpg's default (`RESET ALL; UNLISTEN *; ...`) is a second round
    trip after every query. AGI handlers set no session state, LISTEN nowhere and hold no
    session-level advisory locks; asyncpg still rolls back a transaction left open."""
    import asyncpg

    from cti.db.connect import bounded

    # A call's decision has a deadline of seconds (AgiSettings.session_timeout_s, then the fallback):
    # a query stuck longer on a dead connection only keeps that connection from being replaced.
    kw = bounded({"min_size": min_size, "max_size": max_size}, command_timeout_s=AGI_COMMAND_TIMEOUT_S)
    return await asyncpg.create_pool(
        dsn, reset=_keep_session, server_settings={"synchronous_commit": "off"}, **kw
    )


async def _keep_session(_conn: Any) -> None:
    return None


class DirectoryCache:
    """The agents table (ids, personal DIDs), loaded once and refreshed in the background when
    older than `ttl_s`, so no call waits on it after the first."""

    def __init__(self, pool: Any | None, ttl_s: float = 30.0) -> None:
        self.pool = pool
        self.ttl_s = ttl_s
        self._dir = Directory()
        self._loaded_at: float | None = None
        self._refreshing: asyncio.Task[None] | None = None

    def set(self, directory: Directory) -> None:
        self._dir = directory
        self._loaded_at = time.monotonic()

    async def get(self) -> Directory:
        if self.pool is None:
            return self._dir
        if self._loaded_at is None:
            await self.refresh()
        elif time.monotonic() - self._loaded_at > self.ttl_s and self._refreshing is None:
            self._refreshing = asyncio.create_task(self._refresh_in_background())
        return self._dir

    async def _refresh_in_background(self) -> None:
        try:
            await self.refresh()
        except Exception as e:  # keep serving the old copy; log and retry after the next ttl
            log.warning("agent directory refresh failed", error=str(e))
            self._loaded_at = time.monotonic()
        finally:
            self._refreshing = None

    async def refresh(self) -> None:
        rows = await self.pool.fetch("SELECT id, did, active FROM agents")
        self.set(Directory.of(AgentEntry(r["id"], r["did"], r["active"]) for r in rows))


# Issue 6 (peak mode) plugs its advice in here: (snapshot, now) -> offer a callback instead of queueing.
CallbackAdvisor = Callable[[RoutingSnapshot, datetime], bool]


def never_offer(_snapshot: RoutingSnapshot, _now: datetime) -> bool:
    return False


@dataclass
class AgiContext:
    settings: Settings
    policy: Policy = field(default_factory=load_policy)
    clock: Clock = field(default_factory=SystemClock)
    events: EventSink = field(default_factory=MemoryEvents)
    pool: Any | None = None  # asyncpg.Pool
    snapshot: SnapshotSource = no_live_state
    callback_advisor: CallbackAdvisor = never_offer
    open_orders: OpenOrderNumbers | None = None  # None: look every caller up
    agents: Any | None = None  # cti.agents.service.AgentService; None without AMI (`cti agi` alone)
    directory: DirectoryCache = field(init=False)
    recordings: RecordingWriter | None = field(init=False)
    orders: OrderLookup | None = field(init=False)

    def __post_init__(self) -> None:
        self.directory = DirectoryCache(self.pool)
        self.recordings = RecordingWriter(self.pool) if self.pool is not None else None
        self.orders = OrderLookup(self.pool) if self.pool is not None else None

    async def aclose(self) -> None:
        if self.open_orders is not None:
            await self.open_orders.close()
        if self.orders is not None:
            await self.orders.close()
        if self.recordings is not None:
            await self.recordings.close()

    async def emit(
        self,
        type_: str,
        payload: Mapping[str, Any],
        *,
        key: str | None = None,
        uniqueid: str | None = None,
        linkedid: str | None = None,
        agent: str | None = None,
        queue: str | None = None,
    ) -> None:
        """Append an agi event; a broken store is logged, never raised into the call path."""
        ev = Event(
            ts=self.clock.now(),
            source="agi",
            type=type_,
            payload=dict(payload),
            key=key,
            uniqueid=uniqueid or None,
            linkedid=linkedid or None,
            agent=agent,
            queue=queue,
        )
        await append_or_log(self.events, ev, "event not stored", uniqueid=uniqueid)

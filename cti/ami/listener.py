"""The AMI listener: every event -> live state (in order) and -> the event store (once per event).

On every (re)connect it resynchronises: `QueueStatus` + `CoreShowChannels` replace the live state, and
a `resync` event (source ami) marks the gap in the log, with the snapshot as its payload. Events that
arrive while the snapshot is being taken are stored at once and re-applied on top of the snapshot
(the reducer tolerates an event the snapshot already reflects).

Right after an Asterisk restart AMI accepts logins before app_queue is loaded: QueueStatus answers
`Response: Error` `Invalid/unknown command: QueueStatus...` for ~0.6 s (capture 17). That is an
answer on a healthy link, not a lost one: the connection is kept and the resync is retried on it
with backoff. Hooks registered with `after_resync` (e.g. putting logged-in agents back) run after
each resync that succeeded, never against a PBX whose queues are not there yet."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import structlog

from cti.ami.client import ActionError, AMIClient
from cti.ami.codec import Message
from cti.ami.events import KeyMaker, event_ts, to_event
from cti.clock import Clock, SystemClock
from cti.state.live import LiveState
from cti.store.events import Event, EventStore

log = structlog.get_logger(__name__)

ResyncHook = Callable[[AMIClient, LiveState], Awaitable[None]]
_NOT_LOADED = "Invalid/unknown command"


def module_not_loaded(e: BaseException) -> bool:
    """An action Asterisk does not know (yet): app_queue still loading after a restart (capture 17)."""
    return isinstance(e, ActionError) and _NOT_LOADED in (e.reply.first("Message") or "")


class AMIListener:
    def __init__(
        self,
        client: AMIClient,
        live: LiveState,
        store: EventStore | None = None,
        *,
        clock: Clock | None = None,
        resync_timeout: float = 30.0,
        resync_retry_s: float = 0.25,
        resync_retry_max_s: float = 5.0,
    ) -> None:
        self.client = client
        self.live = live
        self.store = store
        self.clock: Clock = clock or SystemClock()
        self.resync_timeout = resync_timeout
        self.events = 0
        self._keys = KeyMaker()
        self._buffer: list[tuple[Mapping[str, Any], float]] | None = None
        self._hooks: list[Callable[[Message, float], None]] = []
        self._after: list[ResyncHook] = []
        self.resync_retry_s = resync_retry_s
        self.resync_retry_max_s = resync_retry_max_s
        self.resyncs_deferred = 0
        self._retry: asyncio.Task[None] | None = None
        client.on_connect(self._on_connect)
        client.subscribe(self._on_event if store is not None else self._on_event_nostore)

    def on_event(self, fn: Callable[[Message, float], None]) -> None:
        """Extra synchronous consumer (e.g. live facts), called after the state was updated."""
        self._hooks.append(fn)

    def after_resync(self, hook: ResyncHook) -> None:
        """`await hook(client, live)` after every successful resync (first connect, reconnects, and a
        resync that had to wait for app_queue)."""
        self._after.append(hook)

    async def start(self, *, retry: bool = False) -> None:
        """Connect (see AMIClient.start); the first resync has happened when this returns."""
        await self.client.start(retry=retry)

    async def close(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._retry
        await self.client.close()
        if self.store is not None:
            await self.store.flush()

    # ---- hot path ------------------------------------------------------------------------
    def _ts(self, msg: Message) -> float:
        t = event_ts(msg)
        return self.clock.time() if t is None else t

    def _apply(self, msg: Message, ts: float) -> None:
        self.events += 1
        if self._buffer is not None:
            self._buffer.append((msg, ts))
        self.live.apply(msg, ts)
        for fn in self._hooks:
            fn(msg, ts)

    async def _on_event(self, msg: Message) -> None:
        ts = self._ts(msg)
        self._apply(msg, ts)
        assert self.store is not None
        await self.store.append(to_event(msg, ts, self._keys.key(msg.name, msg, ts)))

    def _on_event_nostore(self, msg: Message) -> None:
        self._apply(msg, self._ts(msg))

    # ---- resync ------------------------------------------------------------------------
    async def _on_connect(self, client: AMIClient) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        try:
            await self._resync(client)
        except ActionError as e:
            if not module_not_loaded(e):
                raise
            self.resyncs_deferred += 1
            log.warning("ami resync deferred: queue module not loaded yet", connects=client.connects)
            self._retry = asyncio.create_task(self._retry_resync(client, client.connects), name="ami-resync")
            return
        await self._run_after(client)

    async def _retry_resync(self, client: AMIClient, connects: int) -> None:
        delay = self.resync_retry_s
        while client.connected and client.connects == connects:
            await asyncio.sleep(delay)
            if not (client.connected and client.connects == connects):
                return  # a new connection does its own resync
            try:
                await self._resync(client)
            except ActionError as e:
                if not module_not_loaded(e):
                    log.warning("ami resync failed", error=str(e))
                delay = min(self.resync_retry_max_s, delay * 2)
                continue
            except Exception as e:  # connection lost meanwhile: the reconnect resyncs
                log.warning("ami resync failed", error=repr(e))
                return
            await self._run_after(client)
            return

    async def _run_after(self, client: AMIClient) -> None:
        for hook in list(self._after):
            try:
                await hook(client, self.live)
            except Exception:  # one consumer's failure must not cost the link or the others
                log.exception("after-resync hook failed")

    async def _resync(self, client: AMIClient) -> None:
        self._buffer = []
        try:
            q = await client.action("QueueStatus", timeout=self.resync_timeout)
            c = await client.action("CoreShowChannels", timeout=self.resync_timeout)
            now = self.clock.time()
            self.live.resync(q.items, c.items, now)
            for msg, ts in self._buffer:
                self.live.apply(msg, ts)
        finally:
            self._buffer = None
        summary = self.live.summary()
        log.info("ami resync", connects=client.connects, **summary)
        if self.store is not None:
            payload = {
                "connects": client.connects,
                "reason": "connect" if client.connects == 1 else "reconnect",
                "summary": summary,
                "QueueStatus": [dict(m) for m in q.items],
                "CoreShowChannels": [dict(m) for m in c.items],
            }
            await self.store.append(
                Event(
                    ts=datetime.fromtimestamp(now, UTC),
                    source="ami",
                    type="resync",
                    payload=payload,
                    key=f"resync:{client.connects}:{now:.6f}",
                )
            )

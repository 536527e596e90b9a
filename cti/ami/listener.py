"""The AMI listener: every event -> live state (in order) and -> the event store (once per event).

On every (re)connect it resynchronises: `QueueStatus` + `CoreShowChannels` replace the live state, and
a `resync` event (source ami) marks the gap in the log, with the snapshot as its payload. Events that
arrive while the snapshot is being taken are stored at once and re-applied on top of the snapshot
(the reducer tolerates an event the snapshot already reflects)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import structlog

from cti.ami.client import AMIClient
from cti.ami.codec import Message
from cti.ami.events import KeyMaker, event_ts, to_event
from cti.clock import Clock, SystemClock
from cti.state.live import LiveState
from cti.store.events import Event, EventStore

log = structlog.get_logger(__name__)


class AMIListener:
    def __init__(
        self,
        client: AMIClient,
        live: LiveState,
        store: EventStore | None = None,
        *,
        clock: Clock | None = None,
        resync_timeout: float = 30.0,
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
        client.on_connect(self._resync)
        client.subscribe(self._on_event if store is not None else self._on_event_nostore)

    def on_event(self, fn: Callable[[Message, float], None]) -> None:
        """Extra synchronous consumer (e.g. live facts), called after the state was updated."""
        self._hooks.append(fn)

    async def start(self, *, retry: bool = False) -> None:
        """Connect (see AMIClient.start); the first resync has happened when this returns."""
        await self.client.start(retry=retry)

    async def close(self) -> None:
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

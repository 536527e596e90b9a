"""Where a part appends its events: the `EventSink` protocol (EventStore satisfies it), a list-backed
sink for tests and `cti agi` without a database, and the one way to append an event whose loss must
not stop the caller."""

from __future__ import annotations

from datetime import UTC
from typing import Any, Protocol

import structlog

from cti.store.events import Event

log = structlog.get_logger(__name__)


class EventSink(Protocol):
    async def append(self, ev: Event) -> None: ...


class MemoryEvents:
    """An EventSink that keeps events in a list."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def append(self, ev: Event) -> None:
        self.events.append(ev)

    def of_type(self, type_: str) -> list[Event]:
        return [e for e in self.events if e.type == type_]


async def append_or_log(sink: EventSink, ev: Event, failed: str, **fields: Any) -> bool:
    """Append `ev`; a failure is logged as `failed` (with the event type) and swallowed, because the
    caller's own row or decision is the truth and must not be undone by a lost event."""
    try:
        await sink.append(ev)
    except Exception:
        log.exception(failed, type=ev.type, **fields)
        return False
    return True


class ConnEvents:
    """An EventSink writing each event at once on one connection: for one-shot commands (a purge run)
    that append a handful of events and have no EventStore writer running."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def append(self, ev: Event) -> None:
        from cti.store.events import _INSERT_ONE, _clean_row

        await self.conn.execute("SELECT cti_ensure_event_partitions($1, 1)", ev.ts.astimezone(UTC).date())
        await self.conn.execute(_INSERT_ONE, *_clean_row(ev.to_row()))

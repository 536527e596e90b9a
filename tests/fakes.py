"""Test doubles shared by the peak and callback tests."""

from __future__ import annotations

from cti.store.events import Event


class ListSink:
    """Collects appended events (the EventStore interface: `async append(event)`)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def append(self, event: Event) -> None:
        self.events.append(event)

    def of_type(self, type_: str) -> list[Event]:
        return [e for e in self.events if e.type == type_]

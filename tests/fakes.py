"""Test doubles shared by every test directory (one module, so a double is written once)."""

from __future__ import annotations

from cti.store.sink import MemoryEvents

# Collects appended events (the EventStore interface: `async append(event)`); `of_type(name)`.
ListSink = MemoryEvents

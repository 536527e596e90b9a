"""AMI message -> `cti.store.events.Event` row: time, natural key, indexed columns, full payload."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from cti.ami.headers import event_ts, first
from cti.store.events import Event

__all__ = ["KeyMaker", "digest", "event_ts", "to_event"]  # event_ts lives in cti.ami.headers


def digest(msg: Mapping[str, Any]) -> str:
    """Content hash of a frame: same headers and values in the same order -> same digest."""
    raw = getattr(msg, "raw", None)
    if raw is not None:  # the bytes as received: same frame, same bytes
        return hashlib.blake2b(raw, digest_size=12).hexdigest()
    try:
        data = orjson.dumps(msg)
    except orjson.JSONEncodeError:  # a lone surrogate: hash the escaped form instead
        data = repr(dict(msg)).encode("utf-8", "backslashreplace")
    return hashlib.blake2b(data, digest_size=12).hexdigest()


class KeyMaker:
    """Natural keys that make a replay of the same stream store each event once.

    key = `<Event>:<digest>` for the first frame with that content at that timestamp, then `…:2`,
    `…:3` for byte-identical repeats at the same timestamp (two identical FullyBooted in a row are two
    events, not one). The counter only remembers the current timestamp, so memory stays flat."""

    __slots__ = ("_seen", "_ts")

    def __init__(self) -> None:
        self._ts = -1.0
        self._seen: dict[str, int] = {}

    def key(self, name: str, msg: Mapping[str, Any], ts: float) -> str:
        if ts != self._ts:
            self._ts = ts
            self._seen = {}
        d = digest(msg)
        n = self._seen.get(d, 0) + 1
        self._seen[d] = n
        return f"{name}:{d}" if n == 1 else f"{name}:{d}:{n}"


def to_event(msg: Mapping[str, Any], ts: float, key: str) -> Event:
    return Event(
        datetime.fromtimestamp(ts, UTC),
        "ami",
        first(msg, "Event") or "Response",
        msg,
        key,
        first(msg, "Uniqueid") or None,
        first(msg, "Linkedid") or None,
        first(msg, "MemberName") or None,
        first(msg, "Queue") or None,
    )

"""Reading headers of an AMI frame: the one place that knows a repeated header is a list.

A frame is any mapping of header name -> value (`cti.ami.codec.Message`, a stored event's payload, a
dict in a test), where a header Asterisk repeats (`Variable`, `Output`) is a list of its values.
Pure and standard library only, so the simulator and the degraded script can use it too.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

Frame = Mapping[str, Any]


def first(frame: Frame, key: str, default: str = "") -> str:
    """The header's (first) value, or `default` when the frame does not have it."""
    v = frame.get(key)
    if v is None:
        return default
    if isinstance(v, str):
        return v
    return v[0] if v else default


def first_or_none(frame: Frame, key: str) -> str | None:
    """The header's (first) value, or None when absent. An empty value stays ""."""
    v = frame.get(key)
    if v is None or isinstance(v, str):
        return v
    return v[0] if v else None


def event_ts(frame: Frame) -> float | None:
    """Asterisk's `Timestamp: <epoch>.<µs>` (timestampevents=yes), or None when absent or garbled."""
    t = frame.get("Timestamp")
    if t is None:
        return None
    try:
        return float(t if isinstance(t, str) else t[0])
    except (ValueError, IndexError):
        return None


def event_time(frame: Frame, fallback: datetime) -> datetime:
    """The frame's Timestamp as an aware UTC datetime, or `fallback` when it has none."""
    ts = event_ts(frame)
    return fallback if ts is None else datetime.fromtimestamp(ts, UTC)

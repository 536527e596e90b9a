"""structlog set-up: JSON lines in production, readable in a terminal, phone numbers always masked."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from cti.masking import mask_value

_SAFE_KEYS = frozenset({"timestamp", "level", "logger", "uniqueid", "linkedid", "ts", "seq"})


def mask_phone_numbers(_logger: Any, _name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor (R-MASK): no log line ever carries a full phone number, in any field."""
    return {k: (v if k in _SAFE_KEYS else mask_value(v)) for k, v in event_dict.items()}


def configure(fmt: str = "auto", level: str = "info", stream: Any = None) -> None:
    stream = stream or sys.stderr
    if fmt == "auto":
        fmt = "console" if getattr(stream, "isatty", lambda: False)() else "json"
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=False)
        if fmt == "console"
        else structlog.processors.JSONRenderer(ensure_ascii=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            mask_phone_numbers,  # last before rendering: also masks exception text
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )

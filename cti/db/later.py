"""Retry a database write in the background until PostgreSQL answers again.

For AMI handlers: what they write was decided from an AMI frame that exists nowhere else, so a write
that fails because the database is away (restarting, blackholed) must not be dropped; and waiting
inline would hold that subscriber's queue and, once it is full, the AMI reader. Found by issue 16's
PostgreSQL-restart drill (a missed caller, recording rows and peak violations lost). Each write given
here must be idempotent (the rows have natural keys)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from cti.store.events import CONNECTION_ERRORS

log = structlog.get_logger(__name__)

_pending: set[asyncio.Task[None]] = set()  # held here so a task is not collected mid-retry


def pending() -> int:
    return len(_pending)


def retry_later(write: Callable[[], Awaitable[Any]], what: str, *, first_s: float = 1.0,
                max_s: float = 30.0, **fields: Any) -> asyncio.Task[None]:  # fmt: skip
    """Run `write()` again after first_s, doubling up to max_s, until it stops failing with a
    connection error (another error is logged and ends the retries). Real time: a database comes back
    in seconds whatever the simulated clock says."""

    async def run() -> None:
        delay = first_s
        while True:
            await asyncio.sleep(delay)
            try:
                await write()
            except CONNECTION_ERRORS:
                delay = min(max_s, delay * 2)
                continue
            except Exception:
                log.exception("deferred_write_failed", what=what, **fields)
                return
            log.info("deferred_write_done", what=what, **fields)
            return

    log.warning("database_write_deferred", what=what, **fields)
    task = asyncio.get_running_loop().create_task(run(), name=f"later-{what}")
    _pending.add(task)
    task.add_done_callback(_pending.discard)
    return task

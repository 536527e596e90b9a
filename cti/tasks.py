"""Stopping background tasks from inside another task without swallowing that task's own cancel."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import structlog

log = structlog.get_logger(__name__)

# A part that needs longer than this to stop is stuck on something without a deadline; waiting for
# it would hold up whoever stops it (a new election, the shutdown), so it is left to end by itself.
STOP_TIMEOUT_S = 5.0


async def stop_tasks(tasks: Iterable[asyncio.Task[Any]], timeout_s: float = STOP_TIMEOUT_S) -> None:
    """Cancel `tasks` and wait at most `timeout_s` for them to end; their errors are logged.

    Not `with suppress(CancelledError): await t`: that also swallows a cancel of the CALLER arriving
    while it waits. The leadership task, stopping the run-once parts when its connection failed, was
    cancelled by the shutdown right then, went on campaigning, and close() waited for it forever
    (issue 16's PostgreSQL drill). asyncio.wait never raises the tasks' errors and lets the caller's
    cancellation through."""
    tasks = list(tasks)
    if not tasks:
        return
    for t in tasks:
        t.cancel()
    done, pending = await asyncio.wait(tasks, timeout=timeout_s)
    for t in done:
        if not t.cancelled() and (e := t.exception()) is not None:
            log.warning("task_failed_while_stopping", task=t.get_name(), error=type(e).__name__)
    if pending:
        log.warning("tasks_not_stopped", tasks=sorted(t.get_name() for t in pending), waited_s=timeout_s)

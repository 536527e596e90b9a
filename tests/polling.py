"""Waiting, in real time, for a condition another task or process makes true."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


async def until(pred: Callable[[], bool], limit: float = 5.0) -> bool:
    """True once `pred()` holds, False when `limit` seconds pass first (the caller asserts)."""
    end = time.monotonic() + limit
    while not pred():
        if time.monotonic() > end:
            return False
        await asyncio.sleep(0.02)
    return True


async def until_awaited(cond: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    """Return once `await cond()` is true; fail the test when `timeout` seconds pass first."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not await cond():
        assert loop.time() < end, "condition not reached"
        await asyncio.sleep(0.05)

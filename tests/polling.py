"""Waiting, in real time, for a condition another task or process makes true."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def until(pred: Callable[[], bool], limit: float = 5.0) -> bool:
    """True once `pred()` holds, False when `limit` seconds pass first (the caller asserts)."""
    end = time.monotonic() + limit
    while not pred():
        if time.monotonic() > end:
            return False
        await asyncio.sleep(0.02)
    return True

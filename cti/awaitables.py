"""Callables that may answer at once or later: live-state views are plain functions, database-backed
ones coroutines; the loops that ask them accept both."""

from __future__ import annotations

import inspect
from typing import Any


async def maybe_await(v: Any) -> Any:
    """`v` itself, or what it resolves to when it is awaitable."""
    return await v if inspect.isawaitable(v) else v

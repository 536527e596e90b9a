"""The event loop cti runs on: uvloop (docs/decisions/0301-route-hot-path.md, "Event loop").

Entry points call `run(main())` instead of `asyncio.run(main())`. uvloop's loop and TCP transports
are C; on the FastAGI `route` path (eight command round trips a call, asyncpg beside them) it cut
the server's CPU per call by about 15 % and a bare echo server's by about 25 %.
`CTI_EVENT_LOOP=asyncio` runs the standard loop instead (debugging; comparisons).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's new_event_loop, or None (asyncio's default) when CTI_EVENT_LOOP=asyncio."""
    if os.environ.get("CTI_EVENT_LOOP", "uvloop") == "asyncio":
        return None
    import uvloop

    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T], *, debug: bool | None = None) -> T:
    with asyncio.Runner(debug=debug, loop_factory=loop_factory()) as runner:
        return runner.run(main)

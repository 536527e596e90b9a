"""What the desk's and the wallboard's websockets share: serve one socket until it closes, send one
text to many sockets, and run a pusher task for the app's life (aiohttp's cleanup context, so start
and stop cannot drift apart)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

from aiohttp import WSMsgType, web


async def serve(
    request: web.Request, first: str, sockets: set[web.WebSocketResponse]
) -> web.WebSocketResponse:
    """Send `first`, then keep the socket in `sockets` (where pushes find it) until it closes."""
    ws = web.WebSocketResponse(heartbeat=20)
    await ws.prepare(request)
    await ws.send_str(first)
    sockets.add(ws)
    try:
        async for msg in ws:
            if msg.type == WSMsgType.ERROR:
                break
    finally:
        sockets.discard(ws)
    return ws


def dumps(o: Any) -> str:
    """JSON as the pages read it: Chinese as is, dates and decimals as text."""
    return json.dumps(o, ensure_ascii=False, default=str)


async def send_all(sockets: Iterable[web.WebSocketResponse], text: str) -> None:
    for ws in list(sockets):
        with contextlib.suppress(ConnectionError, RuntimeError):  # a viewer just left
            await ws.send_str(text)


def run_pusher(
    app: web.Application,
    pusher: Callable[[web.Application], Awaitable[None]],
    name: str,
    sockets: Callable[[web.Application], Iterable[web.WebSocketResponse]],
) -> None:
    async def life(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(pusher(app), name=name)
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        for ws in list(sockets(app)):
            await ws.close()

    app.cleanup_ctx.append(life)

"""`/metrics` for Prometheus. No login cookie (a scraper has none): allowed from loopback, or with
`Authorization: Bearer <web.metrics_token>` when that setting is set. No phone number is in any
metric (DID labels are the center's own numbers)."""

from __future__ import annotations

import hmac

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from cti.metrics import CtiCollector, exposition

COLLECTOR = web.AppKey("metrics_collector", CtiCollector)
TOKEN = web.AppKey("metrics_token", str)
_LOOPBACK = frozenset({"127.0.0.1", "::1"})


def setup(app: web.Application) -> None:
    app.router.add_get("/metrics", metrics)


def attach(app: web.Application, collector: CtiCollector, token: str | None) -> None:
    """What the running process exposes (cti/app.py calls this after make_app)."""
    app[COLLECTOR] = collector
    if token:
        app[TOKEN] = token


def _allowed(request: web.Request) -> bool:
    token = request.app.get(TOKEN)
    if token:
        given = request.headers.get("Authorization", "")
        if hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return True
    return request.remote in _LOOPBACK


async def metrics(request: web.Request) -> web.Response:
    if not _allowed(request):
        raise web.HTTPForbidden(text="metrics: loopback or the metrics token only\n")
    body = await exposition(request.app.get(COLLECTOR))
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

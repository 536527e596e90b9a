"""The aiohttp application: login, the live monitor page, its JSON and websocket feeds, and the
supervisor's peak switch. Handlers stay thin; the snapshot is built once per tick for all viewers."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import structlog
from aiohttp import WSMsgType, web

from cti.clock import Clock, SystemClock
from cti.config import Settings
from cti.state.live import LiveState
from cti.web import admin, audit, auth, desk, wallboard
from cti.web import metrics as web_metrics
from cti.web.repo import record_reveal
from cti.web.security import (
    WebSecurity,
    client_address,
    login_failed,
    login_succeeded,
    login_throttle,
    security_middleware,
)
from cti.web.snapshot import build_snapshot

log = structlog.get_logger(__name__)
COOKIE = "cti_session"
PUBLIC = frozenset({"/login", "/healthz", "/metrics"})  # /metrics checks its own access


@dataclass
class Services:
    pool: asyncpg.Pool
    live: LiveState
    clock: Clock = field(default_factory=SystemClock)
    # optional parts, wired by the process that has them
    peak_status: Callable[[], Awaitable[dict[str, Any]]] | None = None
    set_peak: Callable[[str, str], Awaitable[dict[str, Any]]] | None = None
    callback_stats: Callable[[], Awaitable[dict[str, Any]]] | None = None
    # preview dialing (campaign id, contact id, agent) -> {"dial_id", "number"} or None if not claimed
    outbound_preview_dial: Callable[[int, int, str], Awaitable[dict[str, Any] | None]] | None = None
    outbound_status: Callable[[], dict[str, Any]] | None = None  # the pacer's live view (runner.status)
    push_interval_s: float = 0.5
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo(Settings.model_fields["timezone"].default))
    desk: Any = None  # cti.desk.service.DeskService: the agent panel and the wallboard
    security: WebSecurity = field(default_factory=WebSecurity)  # from [web] settings
    policy_file: Path | None = None  # the site's policy file (None: shipped), for /admin/policy


SERVICES = web.AppKey("services", Services)
VIEWERS = web.AppKey("viewers", set)
PUSHER = web.AppKey("pusher", asyncio.Task)
USER = web.RequestKey("user", auth.User)
_LOGIN_ERROR = '<p class="error">用户名或密码错误 Wrong user name or password</p>'
_LOCKED_ERROR = '<p class="error">尝试次数过多，请稍后再试 Too many attempts, try again later</p>'


def _static(name: str) -> str:
    return resources.files("cti.web").joinpath("static", name).read_text(encoding="utf-8")


@web.middleware
async def require_login(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.path in PUBLIC:
        return await handler(request)
    svc = request.app[SERVICES]
    async with svc.pool.acquire() as conn:
        user = await auth.session_user(
            conn, request.cookies.get(COOKIE), svc.clock.now(), idle=svc.security.session_idle
        )
    if user is None:
        if request.path.startswith("/api/") or request.path == "/ws":
            raise web.HTTPUnauthorized(
                text='{"error": "login required / 请先登录"}', content_type="application/json"
            )
        raise web.HTTPFound("/login")
    request[USER] = user
    return await handler(request)


def _need(request: web.Request, roles: frozenset[str]) -> auth.User:
    user: auth.User = request[USER]
    if not user.may(roles):
        raise web.HTTPForbidden(
            text=json.dumps({"error": f"role {user.role} may not do this / 无权限"}),
            content_type="application/json",
        )
    return user


async def login_page(request: web.Request) -> web.Response:
    return web.Response(text=_static("login.html"), content_type="text/html")


async def login_post(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    form = await request.post()
    username, password = str(form.get("username", ""))[:64], str(form.get("password", ""))
    sec, now = svc.security, svc.clock.now()
    address = client_address(request, sec)
    async with svc.pool.acquire() as conn:
        throttle = await login_throttle(conn, sec, username, address, now)
        if throttle.locked:  # no password check at all while locked: guessing gains nothing
            log.warning("web_login_locked", username=username, address=address)
            page = _static("login.html").replace("<!--error-->", _LOCKED_ERROR)
            return web.Response(text=page, content_type="text/html", status=429,
                                headers={"Retry-After": str(throttle.retry_after_s)})  # fmt: skip
        try:
            token, user = await auth.login(conn, username, password, now, ttl=sec.session_max)
        except auth.AuthError:
            await login_failed(conn, username, address, now, sec.login_window)
            log.info("web_login_failed", username=username)
            page = _static("login.html").replace("<!--error-->", _LOGIN_ERROR)
            return web.Response(text=page, content_type="text/html", status=401)
        await login_succeeded(conn, username)
    log.info("web_login", username=user.username, role=user.role)
    resp = web.HTTPFound("/")
    resp.set_cookie(
        COOKIE, token, httponly=True, samesite="Strict", max_age=int(sec.session_max.total_seconds())
    )
    raise resp


async def logout_post(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    async with svc.pool.acquire() as conn:
        await auth.logout(conn, request.cookies.get(COOKIE))
    resp = web.HTTPFound("/login")
    resp.del_cookie(COOKIE)
    raise resp


async def monitor_page(request: web.Request) -> web.Response:
    if request[USER].role == "agent":
        raise web.HTTPFound("/desk")  # agents land on their own panel
    _need(request, auth.MONITOR_ROLES)
    return web.Response(text=_static("monitor.html"), content_type="text/html")


async def _snapshot(app: web.Application) -> dict[str, Any]:
    svc = app[SERVICES]
    peak = await svc.peak_status() if svc.peak_status else None
    callbacks = await svc.callback_stats() if svc.callback_stats else None
    return build_snapshot(svc.live.state, svc.clock.time(), peak=peak, callbacks=callbacks)


async def api_snapshot(request: web.Request) -> web.Response:
    user = _need(request, auth.MONITOR_ROLES)
    snap = await _snapshot(request.app)
    snap["me"] = {"username": user.username, "role": user.role, "can_reveal": user.can_reveal_numbers}
    return web.json_response(snap, dumps=lambda o: json.dumps(o, ensure_ascii=False))


async def api_peak(request: web.Request) -> web.Response:
    user = _need(request, auth.STEER_ROLES)
    svc = request.app[SERVICES]
    if svc.set_peak is None:
        raise web.HTTPServiceUnavailable(
            text='{"error": "peak control not running"}', content_type="application/json"
        )
    body = await request.json()
    mode = body.get("mode") if isinstance(body, dict) else None
    if mode not in ("on", "off", "auto"):
        raise web.HTTPBadRequest(
            text='{"error": "mode must be on, off or auto"}', content_type="application/json"
        )
    result = await svc.set_peak(mode, user.username)
    log.info("peak_switch", mode=mode, by=user.username)
    return web.json_response(result)


async def api_reveal(request: web.Request) -> web.Response:
    """A full number, for a user granted it, with an audit row (R-MASK)."""
    user = _need(request, auth.MONITOR_ROLES)
    if not user.can_reveal_numbers:
        raise web.HTTPForbidden(
            text='{"error": "not granted / 无查看完整号码权限"}', content_type="application/json"
        )
    body = await desk.json_object(request)
    uniqueid, reason = str(body.get("uniqueid", "")), str(body.get("reason", "")).strip()
    if not reason:
        raise web.HTTPBadRequest(
            text='{"error": "a reason is required / 请填写原因"}', content_type="application/json"
        )
    svc = request.app[SERVICES]
    number = next((c.caller_num for c in svc.live.state.callers.values() if c.uniqueid == uniqueid), None)
    if number is None:
        raise web.HTTPNotFound(text='{"error": "no such waiting caller"}', content_type="application/json")
    async with svc.pool.acquire() as conn:
        await record_reveal(conn, at=svc.clock.now(), username=user.username, subject=uniqueid, reason=reason)
    log.info("number_revealed", by=user.username, subject=uniqueid)
    return web.json_response({"uniqueid": uniqueid, "number": number})


async def websocket(request: web.Request) -> web.WebSocketResponse:
    _need(request, auth.MONITOR_ROLES)
    ws = web.WebSocketResponse(heartbeat=20)
    await ws.prepare(request)
    await ws.send_str(json.dumps(await _snapshot(request.app), ensure_ascii=False))
    request.app[VIEWERS].add(ws)
    try:
        async for msg in ws:
            if msg.type == WSMsgType.ERROR:
                break
    finally:
        request.app[VIEWERS].discard(ws)
    return ws


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def _pusher(app: web.Application) -> None:
    """One snapshot per tick when something changed, sent to every viewer."""
    svc = app[SERVICES]
    dirty = asyncio.Event()
    unsubscribe = svc.live.subscribe(lambda _live, _ev: dirty.set())
    try:
        while True:
            await dirty.wait()
            dirty.clear()
            if app[VIEWERS]:
                text = json.dumps(await _snapshot(app), ensure_ascii=False)
                for ws in list(app[VIEWERS]):
                    with contextlib.suppress(ConnectionError, RuntimeError):
                        await ws.send_str(text)
            await asyncio.sleep(svc.push_interval_s)
    finally:
        unsubscribe()


async def _start_pusher(app: web.Application) -> None:
    app[PUSHER] = asyncio.create_task(_pusher(app), name="monitor-pusher")


async def _stop_pusher(app: web.Application) -> None:
    app[PUSHER].cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await app[PUSHER]
    for ws in list(app[VIEWERS]):
        await ws.close()


def make_app(services: Services) -> web.Application:
    # security first: its headers and CSRF check cover require_login's answers and every route
    app = web.Application(middlewares=[security_middleware, require_login])
    app[SERVICES] = services
    app[VIEWERS] = set()
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login_post)
    app.router.add_post("/logout", logout_post)
    app.router.add_get("/", monitor_page)
    app.router.add_get("/api/snapshot", api_snapshot)
    app.router.add_post("/api/peak", api_peak)
    app.router.add_post("/api/reveal", api_reveal)
    app.router.add_get("/ws", websocket)
    app.router.add_get("/healthz", healthz)
    # they import this module: registered here, not at import time
    from cti.web import outbound, policy_page, reports

    reports.setup(app)
    desk.setup(app)  # the agent panel (issue 12)
    wallboard.setup(app)  # the supervisor's wallboard (issue 12)
    outbound.setup(app)
    from cti.web import quality

    quality.setup(app)
    web_metrics.setup(app)
    admin.setup(app)
    audit.setup(app)  # reveals, recording plays and exports, for managers (issue 16)
    policy_page.setup(app)  # the house figures, for managers (cti policy's twin)
    app.on_startup.append(_start_pusher)
    app.on_cleanup.append(_stop_pusher)
    return app

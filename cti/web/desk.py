"""The agent panel (坐席面板): its page, JSON, requests and a websocket that pushes the agent's own view
the moment their phone rings, answers or hangs up. Agents only, each bound to an agent id; nothing
here carries a full customer number (R-MASK): calls and customers travel by opaque ids."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from aiohttp import web

from cti.desk.service import DeskError, DeskService
from cti.web import auth, push

log = structlog.get_logger(__name__)
AGENT_ROLES = frozenset({"agent"})
SOCKETS = web.AppKey("desk_sockets", dict)


def _desk(request: web.Request) -> DeskService:
    from cti.web.app import SERVICES

    desk = request.app[SERVICES].desk
    if desk is None:
        raise web.HTTPServiceUnavailable(
            text='{"error": "desk not running"}', content_type="application/json"
        )
    return desk


def _agent(request: web.Request) -> str:
    from cti.web.app import USER

    user: auth.User = request[USER]
    if user.role not in AGENT_ROLES or not user.agent_id:
        raise web.HTTPForbidden(
            text='{"error": "只有绑定坐席的账号可用 agents only"}', content_type="application/json"
        )
    return user.agent_id


def _bad(e: Exception) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=push.dumps({"error": str(e)}), content_type="application/json")


async def json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object, or 400 saying what is wrong (the wallboard's levers use it too)."""
    try:
        body = await request.json()
    except ValueError:
        raise _bad(ValueError("请求不是JSON body must be JSON")) from None
    if not isinstance(body, dict):
        raise _bad(ValueError("body must be a JSON object"))
    return body


async def page(request: web.Request) -> web.Response:
    _agent(request)
    from cti.web.app import _static

    return web.Response(text=_static("desk.html"), content_type="text/html")


async def state(request: web.Request) -> web.Response:
    agent = _agent(request)
    return web.json_response(await _desk(request).agent_view(agent), dumps=push.dumps)


async def act(request: web.Request) -> web.Response:
    """login / unpause (ready) / pause with a reason / logout: AgentService decides (R-BREAK, R-PEAK)."""
    agent = _agent(request)
    body = await json_object(request)
    op = body.get("op")
    if op not in ("login", "logout", "pause", "unpause"):
        raise _bad(ValueError("op must be login, logout, pause or unpause"))
    d = await _desk(request).request(agent, op, body.get("reason"), via="panel")
    out = {"op": d.op, "allowed": d.allowed, "code": d.code, "message": d.message, "reason": d.reason,
           "out": list(d.out)}  # fmt: skip
    return web.json_response(out, status=200 if d.allowed else 409, dumps=push.dumps)


async def disposition(request: web.Request) -> web.Response:
    agent = _agent(request)
    try:
        out = await _desk(request).dispose(agent, await json_object(request))
    except DeskError as e:
        raise _bad(e) from None
    return web.json_response(out, dumps=push.dumps)


async def records(request: web.Request) -> web.Response:
    agent = _agent(request)
    return web.json_response(await _desk(request).my_records(agent), dumps=push.dumps)


async def call(request: web.Request) -> web.Response:
    agent = _agent(request)
    body = await json_object(request)
    try:
        ref = int(body.get("id"))  # type: ignore[arg-type]
        out = await _desk(request).click_to_call(agent, str(body.get("kind")), ref)
    except (TypeError, ValueError) as e:
        raise _bad(e) from None
    return web.json_response(out, dumps=push.dumps)


async def day(request: web.Request) -> web.Response:
    agent = _agent(request)
    return web.json_response(await _desk(request).agent_day(agent), dumps=push.dumps)


async def websocket(request: web.Request) -> web.WebSocketResponse:
    agent = _agent(request)
    desk = _desk(request)
    first = push.dumps({"t_read": desk.last_read, "view": await desk.agent_view(agent)})
    return await push.serve(request, first, request.app[SOCKETS].setdefault(agent, set()))


async def _pusher(app: web.Application) -> None:
    """Push each changed agent's view to that agent's sockets, coalescing bursts of events."""
    from cti.web.app import SERVICES

    desk: DeskService | None = app[SERVICES].desk
    if desk is None:
        return
    pending: dict[str, float] = {}  # agent -> when their oldest unpushed change was read
    wake = asyncio.Event()

    def changed(agents: frozenset[str] | None) -> None:
        if agents:
            sockets = app[SOCKETS]
            for a in agents:
                if sockets.get(a) and a not in pending:
                    pending[a] = desk.last_read
                    wake.set()

    unsubscribe = desk.subscribe(changed)
    try:
        while True:
            await wake.wait()
            wake.clear()
            batch = dict(pending)
            pending.clear()
            for agent, t_read in batch.items():
                text = push.dumps({"t_read": t_read, "view": await desk.agent_view(agent)})
                await push.send_all(app[SOCKETS].get(agent, ()), text)
    finally:
        unsubscribe()


def setup(app: web.Application) -> None:
    app[SOCKETS] = {}
    r = app.router
    r.add_get("/desk", page)
    r.add_get("/api/desk/state", state)
    r.add_post("/api/desk/request", act)
    r.add_post("/api/desk/disposition", disposition)
    r.add_get("/api/desk/records", records)
    r.add_post("/api/desk/call", call)
    r.add_get("/api/desk/day", day)
    r.add_get("/api/desk/ws", websocket)
    push.run_pusher(app, _pusher, "desk-pusher", lambda app: [ws for g in app[SOCKETS].values() for ws in g])

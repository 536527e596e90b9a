"""The supervisor's wallboard (大屏): today's figures, every agent's state, alarms, and the levers
(pause / unpause / log out an agent through AgentService, listen / whisper / barge through ChanSpy,
play a recording). Pushed over a websocket; masked like the monitor (R-MASK)."""

from __future__ import annotations

import asyncio

import structlog
from aiohttp import web

from cti.desk import repo
from cti.desk.service import DeskError, DeskService
from cti.masking import mask_number
from cti.recording_files import inside
from cti.web import auth, push
from cti.web.desk import json_object

log = structlog.get_logger(__name__)
VIEWERS = web.AppKey("wallboard_viewers", set)
RECORDING_ROLES = frozenset({"supervisor", "manager", "admin"})


def _ctx(request: web.Request, roles: frozenset[str]) -> tuple[auth.User, DeskService]:
    from cti.web.app import SERVICES, _need

    user = _need(request, roles)
    desk = request.app[SERVICES].desk
    if desk is None:
        raise web.HTTPServiceUnavailable(
            text='{"error": "desk not running"}', content_type="application/json"
        )
    return user, desk


def _bad(msg: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=push.dumps({"error": msg}), content_type="application/json")


async def page(request: web.Request) -> web.Response:
    from cti.web.app import _static

    _ctx(request, auth.MONITOR_ROLES)
    return web.Response(text=_static("wallboard.html"), content_type="text/html")


async def board(request: web.Request) -> web.Response:
    user, desk = _ctx(request, auth.MONITOR_ROLES)
    out = await desk.wallboard()
    out["me"] = {"username": user.username, "role": user.role, "steer": user.may(auth.STEER_ROLES)}
    return web.json_response(out, dumps=push.dumps)


async def lever(request: web.Request) -> web.Response:
    """Pause / unpause / log out an agent: the same AgentService decisions as the phone and panel."""
    user, desk = _ctx(request, auth.STEER_ROLES)
    body = await json_object(request)
    agent, op = str(body.get("agent", "")), body.get("op")
    if op not in ("pause", "unpause", "logout"):
        raise _bad("op must be pause, unpause or logout")
    if agent not in desk.roster:
        raise _bad(f"no agent {agent!r}")
    d = await desk.request(agent, op, body.get("reason") or ("meeting" if op == "pause" else None), via="api")
    log.info("supervisor_lever", by=user.username, agent=agent, op=op, code=d.code)
    return web.json_response({"allowed": d.allowed, "code": d.code, "message": d.message},
                             status=200 if d.allowed else 409, dumps=push.dumps)  # fmt: skip


async def spy(request: web.Request) -> web.Response:
    user, desk = _ctx(request, auth.STEER_ROLES)
    body = await json_object(request)
    try:
        out = await desk.spy(
            user.agent_id, str(body.get("agent", "")), str(body.get("mode", "")), user.username
        )
    except DeskError as e:
        raise _bad(str(e)) from None
    return web.json_response(out, dumps=push.dumps)


async def recording(request: web.Request) -> web.StreamResponse:
    """A call's recording, seekable (FileResponse answers Range with 206), for roles allowed to listen;
    each playback (its first range) leaves an audit row."""
    from cti.web.quality import RECORDINGS_DIR

    user, desk = _ctx(request, RECORDING_ROLES)
    try:
        rec_id = int(request.match_info["id"])
    except ValueError:
        raise _bad("recording id must be a number") from None
    async with desk.pool.acquire() as conn:
        row = await repo.recording(conn, rec_id)
        # never a file outside the recordings directory (.., absolute paths, symlinks out)
        path = await asyncio.to_thread(inside, request.app[RECORDINGS_DIR], row["path"]) if row else None
        if path is None:
            raise web.HTTPNotFound(text='{"error": "no such recording"}', content_type="application/json")
        rng = request.headers.get("Range", "")
        if not rng or rng.startswith("bytes=0-"):
            await repo.audit_recording(conn, desk.clock.now(), user.username, rec_id, "play recording")
    log.info("recording_played", by=user.username, recording=rec_id)
    return web.FileResponse(path, headers={"Cache-Control": "no-store"})


async def recordings(request: web.Request) -> web.Response:
    """The latest recordings for the player on the wallboard: masked numbers, who answered, when."""
    _user, desk = _ctx(request, RECORDING_ROLES)
    async with desk.pool.acquire() as conn:
        rows = await repo.recent_recordings(conn)
    out = [{"id": r["id"], "number": mask_number(r["number"]), "did": r["did"], "queue": r["queue"],
            "agent": r["answered_by"], "duration_s": float(r["duration_s"] or 0),
            "started": r["started_at"].astimezone(desk.tz).strftime("%H:%M:%S") if r["started_at"] else ""}
           for r in rows]  # fmt: skip
    return web.json_response({"recordings": out}, dumps=push.dumps)


async def websocket(request: web.Request) -> web.WebSocketResponse:
    _user, desk = _ctx(request, auth.MONITOR_ROLES)
    first = push.dumps({"t_read": desk.last_read, "board": await desk.wallboard()})
    return await push.serve(request, first, request.app[VIEWERS])


async def _pusher(app: web.Application) -> None:
    """One board per burst of changes, the same text to every viewer (built once, not per viewer)."""
    from cti.web.app import SERVICES

    desk: DeskService | None = app[SERVICES].desk
    if desk is None:
        return
    wake = asyncio.Event()
    first = [0.0]  # when the oldest change not yet pushed was read (frames carry it: bench.push)

    def changed(_agents: frozenset[str] | None) -> None:
        if app[VIEWERS] and not wake.is_set():
            first[0] = desk.last_read
            wake.set()

    unsubscribe = desk.subscribe(changed)
    try:
        while True:
            await wake.wait()
            wake.clear()
            t_read = first[0]
            await push.send_all(app[VIEWERS], push.dumps({"t_read": t_read, "board": await desk.wallboard()}))
    finally:
        unsubscribe()


def setup(app: web.Application) -> None:
    app[VIEWERS] = set()
    r = app.router
    r.add_get("/wallboard", page)
    r.add_get("/api/wallboard", board)
    r.add_post("/api/wallboard/agent", lever)
    r.add_get("/api/wallboard/recordings", recordings)
    r.add_post("/api/wallboard/spy", spy)
    r.add_get("/api/recordings/{id}", recording)
    r.add_get("/api/wallboard/ws", websocket)
    push.run_pusher(app, _pusher, "wallboard-pusher", lambda app: app[VIEWERS])

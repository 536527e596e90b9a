"""Admin pages: provisioning agents and their phones (the same operations as `cti agents add/import/
list/disable/reset-password`, cti/agents/provision.py) and line-test results (R-LINE-TEST).

Agents: admin only. Line-test results: supervisor, manager, admin. A new or reset SIP password is in
the JSON answer once and never again. Personal DIDs are the center's own numbers, not customers'.
"""

from __future__ import annotations

import json
from datetime import timedelta
from importlib import resources
from typing import Any

from aiohttp import web

from cti.agents import provision
from cti.linetest import repo as linetest_repo
from cti.web import auth

ADMIN_ROLES = frozenset({"admin"})
MAX_CSV_BYTES = 2 * 1024 * 1024


def setup(app: web.Application) -> None:
    app.router.add_get("/admin/agents", agents_page)
    app.router.add_get("/api/admin/agents", api_list)
    app.router.add_post("/api/admin/agents", api_add)
    app.router.add_post("/api/admin/agents/import", api_import)
    app.router.add_post("/api/admin/agents/{agent_id}/disable", api_disable)
    app.router.add_post("/api/admin/agents/{agent_id}/reset-password", api_reset)
    app.router.add_get("/api/linetests", api_linetests)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(
        data, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False, default=str)
    )


def _need(request: web.Request, roles: frozenset[str]) -> Any:
    from cti.web.app import _need as need  # app.py registers this module: import at call time

    return need(request, roles)


def _services(request: web.Request) -> Any:
    from cti.web.app import SERVICES

    return request.app[SERVICES]


def _refused(e: provision.ProvisionError, status: int = 409) -> web.Response:
    return _json({"error": str(e)}, status)


async def agents_page(request: web.Request) -> web.Response:
    _need(request, ADMIN_ROLES)
    page = resources.files("cti.web").joinpath("static", "admin_agents.html").read_text(encoding="utf-8")
    return web.Response(text=page, content_type="text/html")


async def api_list(request: web.Request) -> web.Response:
    _need(request, ADMIN_ROLES)
    async with _services(request).pool.acquire() as conn:
        rows = await provision.list_agents(conn, include_disabled=True)
    return _json({"agents": [dict(r) for r in rows]})


async def api_add(request: web.Request) -> web.Response:
    user = _need(request, ADMIN_ROLES)
    try:
        body = await request.json()
        rec = provision.validate(body if isinstance(body, dict) else {})
    except (ValueError, provision.ProvisionError) as e:
        return _json({"error": str(e) or "body must be a JSON object"}, 400)
    svc = _services(request)
    try:
        async with svc.pool.acquire() as conn:
            password = await provision.add_agent(conn, rec, svc.clock.now())
    except provision.ProvisionError as e:
        return _refused(e)
    return _json({"id": rec.id, "password": password, "realm": provision.SIP_REALM, "by": user.username})


async def api_import(request: web.Request) -> web.Response:
    _need(request, ADMIN_ROLES)
    raw = await request.content.read(MAX_CSV_BYTES + 1)
    if len(raw) > MAX_CSV_BYTES:
        return _json({"error": "CSV larger than 2 MB"}, 413)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return _json({"error": "not UTF-8 text (save the CSV as UTF-8)"}, 400)
    svc = _services(request)
    try:
        async with svc.pool.acquire() as conn:
            result = await provision.import_csv(conn, text, svc.clock.now())
    except provision.ProvisionError as e:
        return _json({"error": str(e)}, 400)
    return _json({
        "added": [{"id": i, "password": p} for i, p in result.added],
        "errors": [{"line": n, "reason": r} for n, r in result.errors],
    })  # fmt: skip


async def api_disable(request: web.Request) -> web.Response:
    _need(request, ADMIN_ROLES)
    svc, aid = _services(request), request.match_info["agent_id"]
    try:
        async with svc.pool.acquire() as conn:
            await provision.disable_agent(conn, aid, svc.clock.now())
    except provision.ProvisionError as e:
        return _refused(e)
    return _json({"id": aid, "active": False})


async def api_reset(request: web.Request) -> web.Response:
    _need(request, ADMIN_ROLES)
    svc, aid = _services(request), request.match_info["agent_id"]
    try:
        async with svc.pool.acquire() as conn:
            password = await provision.reset_password(conn, aid, svc.clock.now())
    except provision.ProvisionError as e:
        return _refused(e, 404)
    return _json({"id": aid, "password": password, "realm": provision.SIP_REALM})


async def api_linetests(request: web.Request) -> web.Response:
    _need(request, auth.MONITOR_ROLES)
    try:
        days = int(request.query.get("days", "2"))
        assert 1 <= days <= 366
    except (ValueError, AssertionError):
        return _json({"error": "days must be 1-366"}, 400)
    svc = _services(request)
    async with svc.pool.acquire() as conn:
        rows = await linetest_repo.listing(
            conn, since=svc.clock.now() - timedelta(days=days), did=request.query.get("did") or None
        )
    return _json({"line_tests": [dict(r) for r in rows]})

"""The managers' page for the house figures (/admin/policy): the same changes as `cti policy`
(cti/policy_admin.py), made under the logged-in manager's name. Managers and admins only: a figure
prices every agent's fines."""

from __future__ import annotations

from importlib import resources
from typing import Any

from aiohttp import web

from cti import policy_admin
from cti.web.app import SERVICES, _need
from cti.web.replies import json_error, json_reply

POLICY_ROLES = frozenset({"manager", "admin"})


def _ctx(request: web.Request) -> tuple[Any, Any]:
    return _need(request, POLICY_ROLES), request.app[SERVICES]


async def page(request: web.Request) -> web.Response:
    _ctx(request)
    text = resources.files("cti.web").joinpath("static", "admin_policy.html").read_text(encoding="utf-8")
    return web.Response(text=text, content_type="text/html")


async def api_get(request: web.Request) -> web.Response:
    _, svc = _ctx(request)
    async with svc.pool.acquire() as conn:
        figs = await policy_admin.figures(conn, svc.policy_file, request.query.get("prefix", ""))
        hist = await policy_admin.history(conn, request.query.get("key"))
    return json_reply(
        {
            "figures": [{"key": f.key, "value": f.value, "by": f.overridden_by} for f in figs],
            "history": hist[-200:],
        }
    )


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("key"), str):
        raise json_error(web.HTTPBadRequest, "需要 key 与 value a JSON object with key and value")
    return body


async def api_set(request: web.Request) -> web.Response:
    user, svc = _ctx(request)
    body = await _body(request)
    try:
        async with svc.pool.acquire() as conn:
            stored = await policy_admin.set_figure(
                conn, svc.policy_file, body["key"], str(body.get("value", "")), user.username
            )
    except policy_admin.PolicyChangeError as e:
        return json_reply({"error": str(e)}, 400)
    return json_reply({"key": body["key"], "value": stored})


async def api_unset(request: web.Request) -> web.Response:
    user, svc = _ctx(request)
    body = await _body(request)
    try:
        async with svc.pool.acquire() as conn:
            await policy_admin.unset_figure(conn, body["key"], user.username)
    except policy_admin.PolicyChangeError as e:
        return json_reply({"error": str(e)}, 404)
    return json_reply({"key": body["key"]})


def setup(app: web.Application) -> None:
    app.router.add_get("/admin/policy", page)
    app.router.add_get("/api/admin/policy", api_get)
    app.router.add_post("/api/admin/policy", api_set)
    app.router.add_post("/api/admin/policy/unset", api_unset)

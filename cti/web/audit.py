"""The audit log a manager reads: every reveal of a full number, play of a recording and export.

One view over the tables that already record them (number_reveals, report_downloads; migration 095),
so no writer had to change and nothing is logged twice."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from cti.web import push

AUDIT_ROLES = frozenset({"manager", "admin"})
ACTIONS = ("number_reveal", "recording_play", "export")


def _bad(msg: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=push.dumps({"error": msg}), content_type="application/json")


async def api_audit(request: web.Request) -> web.Response:
    """`?since=ISO&action=export&user=wang&limit=200`, newest first."""
    from cti.web.app import SERVICES, _need

    _need(request, AUDIT_ROLES)
    q = request.query
    try:
        since = datetime.fromisoformat(q["since"]) if "since" in q else None
        limit = min(max(int(q.get("limit", "200")), 1), 5000)
    except ValueError:
        raise _bad("since must be an ISO time and limit a number / 参数格式错误") from None
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=request.app[SERVICES].tz)
    action = q.get("action")
    if action is not None and action not in ACTIONS:
        raise _bad(f"action must be one of {', '.join(ACTIONS)}")
    async with request.app[SERVICES].pool.acquire() as conn:
        rows = await conn.fetch(
            """SELECT at, username, action, subject, detail FROM audit_log
               WHERE ($1::timestamptz IS NULL OR at >= $1) AND ($2::text IS NULL OR action = $2)
                 AND ($3::text IS NULL OR username = $3)
               ORDER BY at DESC LIMIT $4""",
            since, action, q.get("user"), limit,
        )  # fmt: skip
    return web.json_response({"entries": [dict(r) for r in rows]}, dumps=push.dumps)


def setup(app: web.Application) -> None:
    app.router.add_get("/api/audit", api_audit)

"""JSON replies and query parameters shared by the web API modules (quality, reports, outbound).

One place for the wire form of an error (`{"error": ...}`, Chinese kept readable) and for
`?day=YYYY-MM-DD`, which defaults to today in the configured time zone.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from aiohttp import web

from cti.web.app import SERVICES


def json_error(cls: type[web.HTTPException], msg: str) -> web.HTTPException:
    return cls(text=json.dumps({"error": msg}, ensure_ascii=False), content_type="application/json")


def json_reply(data: Any, status: int = 200) -> web.Response:
    # ensure_ascii=False: Chinese names stay readable; default=str: dates, Decimals
    return web.json_response(
        data, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False, default=str)
    )


def day_param(request: web.Request) -> date:
    svc = request.app[SERVICES]
    raw = request.query.get("day")
    if not raw:
        return svc.clock.now().astimezone(svc.tz).date()
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise json_error(web.HTTPBadRequest, f"day {raw[:20]!r} is not YYYY-MM-DD / 日期格式错误") from None

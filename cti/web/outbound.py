"""HTTP API for outbound campaigns: campaigns and their status (every change an event), the DNC
list, agents' dispositions (the agent panel and the simulator's agents post here), contact
assignments (R-DATA), the funnel (R-FUNNEL) and the logged contact export. Registered by
`setup(app)` from cti.web.app."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, time, timedelta, tzinfo
from typing import Any

import asyncpg
import structlog
from aiohttp import web

from cti.masking import mask_number
from cti.outbound import assignments, campaigns, dnc, outcomes
from cti.outbound.eligibility import next_eligible
from cti.outbound.funnel import GROUPINGS, funnel, to_csv, to_json
from cti.outbound.rules import RuleSet, Window
from cti.policy import load_policy_from_db
from cti.routing.numbers import NotAPhoneNumber, normalise_dialable, trunk_form
from cti.web import auth
from cti.web.app import SERVICES, USER
from cti.web.replies import json_error, json_reply

log = structlog.get_logger(__name__)
MANAGE = frozenset({"supervisor", "manager", "admin"})


def _need(request: web.Request, roles: frozenset[str]) -> auth.User:
    user: auth.User = request[USER]
    if not user.may(roles):
        raise json_error(web.HTTPForbidden, f"role {user.role} may not do this / 无权限")
    return user


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise json_error(web.HTTPBadRequest, "body must be JSON / 请求体须为JSON") from None
    if not isinstance(body, dict):
        raise json_error(web.HTTPBadRequest, "body must be a JSON object")
    return body


def _when(value: Any, field: str, tz: tzinfo) -> datetime:
    try:
        dt = datetime.fromisoformat(str(value))
    except ValueError:
        raise json_error(web.HTTPBadRequest, f"{field} is not an ISO date/time") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=tz)


async def list_campaigns(request: web.Request) -> web.Response:
    _need(request, MANAGE)
    async with request.app[SERVICES].pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT id, name, product, queue, did, mode, status FROM campaigns ORDER BY id"
        )
    return json_reply([dict(r) for r in rows])


async def create_campaign(request: web.Request) -> web.Response:
    user = _need(request, MANAGE)
    b = await _body(request)
    try:
        windows = tuple(
            Window(str(w["segment"]), time.fromisoformat(w["start"]), time.fromisoformat(w["end"]))
            for w in b.get("windows") or [{"segment": "default", "start": "09:00", "end": "21:00"}]
        )
        async with request.app[SERVICES].pool.acquire() as conn:
            cid = await campaigns.create(
                conn,
                name=str(b["name"]),
                product=str(b["product"]),
                queue=str(b["queue"]),
                did=str(b["did"]),
                mode=str(b["mode"]),
                by=user.username,
                max_attempts=int(b.get("max_attempts", 3)),
                retry_backoff_s=int(b.get("retry_backoff_s", 3600)),
                windows=windows,
            )
    except KeyError as e:
        raise json_error(web.HTTPBadRequest, f"missing field {e.args[0]}") from None
    except (ValueError, TypeError, asyncpg.CheckViolationError) as e:
        raise json_error(web.HTTPBadRequest, str(e)) from None
    except asyncpg.UniqueViolationError:
        raise json_error(web.HTTPConflict, "a campaign with this name exists") from None
    return json_reply({"id": cid}, status=201)


async def campaign_status(request: web.Request) -> web.Response:
    user = _need(request, MANAGE)
    b = await _body(request)
    try:
        async with request.app[SERVICES].pool.acquire() as conn:
            await campaigns.set_status(
                conn, int(request.match_info["id"]), str(b.get("status")), by=user.username
            )
    except ValueError as e:
        raise json_error(web.HTTPBadRequest, str(e)) from None
    except LookupError as e:
        raise json_error(web.HTTPNotFound, str(e)) from None
    return json_reply({"id": int(request.match_info["id"]), "status": b["status"]})


async def add_dnc(request: web.Request) -> web.Response:
    user = _need(request, MANAGE)
    b = await _body(request)
    try:
        number = normalise_dialable(str(b.get("number", "")))
        svc = request.app[SERVICES]
        async with svc.pool.acquire() as conn:
            added = await dnc.add(
                conn,
                number,
                str(b.get("category")),
                at=svc.clock.now(),
                by=user.username,
                reason=b.get("reason"),
            )
    except (NotAPhoneNumber, dnc.BadCategory) as e:
        raise json_error(web.HTTPBadRequest, str(e)) from None
    log.info("dnc_added", number=mask_number(number), category=b.get("category"), by=user.username)
    return json_reply({"number": mask_number(number), "added": added})


async def disposition(request: web.Request) -> web.Response:
    """An agent's verdict on a call they took (supervisors may correct any)."""
    user: auth.User = request[USER]
    b = await _body(request)
    dial_id = int(request.match_info["id"])
    svc = request.app[SERVICES]
    async with svc.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT agent, connected_agent FROM dials WHERE id = $1", dial_id)
        if row is None:
            raise json_error(web.HTTPNotFound, f"no dial {dial_id}")
        if not user.may(MANAGE) and user.agent_id not in (row["agent"], row["connected_agent"]):
            raise json_error(web.HTTPForbidden, "not your call / 不是您的通话")
        cb = _when(b["callback_at"], "callback_at", svc.tz) if b.get("callback_at") else None
        days = (await load_policy_from_db(conn, svc.policy_file)).outbound.hesitant_followup_days
        try:
            await outcomes.record_disposition(
                conn, dial_id, str(b.get("disposition")), svc.clock.now(), by=user.username, callback_at=cb,
                hesitant_after=timedelta(days=days),
            )  # fmt: skip
        except ValueError as e:
            raise json_error(web.HTTPBadRequest, str(e)) from None
    return json_reply({"dial_id": dial_id, "disposition": b.get("disposition")})


async def pacing(request: web.Request) -> web.Response:
    """The dialer's live view per running campaign (mode, over-dial factor, dials in flight, abandon
    rate against its ceiling, why it is not dialing): what a supervisor watches while it paces."""
    _need(request, MANAGE)
    status = request.app[SERVICES].outbound_status
    if status is None:
        note = "外呼未启用 outbound is not running here"
        return json_reply({"pacing": False, "campaigns": [], "note": note})
    return json_reply(status())


async def assign(request: web.Request) -> web.Response:
    user = _need(request, MANAGE)
    b = await _body(request)
    svc = request.app[SERVICES]
    try:
        ids = [int(x) for x in b.get("contact_ids", [])]
        for name in ("agent", "group"):  # text or absent: anything else would reach the database
            if b.get(name) is not None and not isinstance(b.get(name), str):
                raise ValueError(f"{name} must be text")
        async with svc.pool.acquire() as conn:
            recall = (await load_policy_from_db(conn, svc.policy_file)).outbound.assignment_recall_months
            n = await assignments.assign(
                conn,
                ids,
                agent=b.get("agent"),
                group=b.get("group"),
                by=user.username,
                at=svc.clock.now(),
                months=recall,
            )
    except (ValueError, TypeError) as e:
        raise json_error(web.HTTPBadRequest, str(e)) from None
    return json_reply({"assigned": n})


async def funnel_report(request: web.Request) -> web.Response:
    _need(request, MANAGE)
    q = request.query
    by = q.get("by", "campaign")
    if by not in GROUPINGS:
        raise json_error(web.HTTPBadRequest, f"by must be one of {', '.join(GROUPINGS)}")
    svc = request.app[SERVICES]
    since = _when(q.get("since", ""), "since", svc.tz)
    until = _when(q["until"], "until", svc.tz) if q.get("until") else svc.clock.now()
    async with svc.pool.acquire() as conn:
        talk_s = (await load_policy_from_db(conn, svc.policy_file)).outbound.effective_talk_s
        rows = await funnel(conn, by, since, until, svc.tz.key, talk_s)
    if q.get("format") == "csv":
        return web.Response(text=to_csv(rows), content_type="text/csv", charset="utf-8")
    return json_reply(to_json(rows))


async def export_list(request: web.Request) -> web.Response:
    """Contacts of one list as CSV: a supervisor right, logged; numbers masked unless the user may
    see full numbers. Agents are refused (and the attempt is logged too)."""
    user: auth.User = request[USER]
    svc = request.app[SERVICES]
    name = request.query.get("list", "")
    allowed = user.role in assignments.EXPORT_ROLES
    async with svc.pool.acquire() as conn:
        if not allowed:
            await assignments.log_export(
                conn,
                username=user.username,
                role=user.role,
                what=f"list {name}",
                rows=0,
                allowed=False,
                at=svc.clock.now(),
            )
            log.warning("export_refused", by=user.username, role=user.role)
            raise json_error(web.HTTPForbidden, "agents may not export customer data / 坐席不得导出客户资料")
        rows = await conn.fetch(
            """SELECT c.number, c.name, c.segment FROM list_members m
               JOIN contact_lists l ON l.id = m.list_id JOIN contacts c ON c.id = m.contact_id
               WHERE l.name = $1 ORDER BY c.id""",
            name,
        )
        await assignments.log_export(
            conn,
            username=user.username,
            role=user.role,
            what=f"list {name}",
            rows=len(rows),
            allowed=True,
            at=svc.clock.now(),
        )
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["号码 number", "姓名 name", "类型 segment"])
    for r in rows:
        w.writerow(
            [r["number"] if user.can_reveal_numbers else mask_number(r["number"]), r["name"], r["segment"]]
        )
    log.info("export", by=user.username, what=f"list {name}", rows=len(rows))
    return web.Response(text=buf.getvalue(), content_type="text/csv", charset="utf-8")


async def preview_next(request: web.Request) -> web.Response:
    """Preview mode: the next eligible contact for this agent to look at, number masked (R-MASK)."""
    user: auth.User = request[USER]
    svc = request.app[SERVICES]
    cid = int(request.match_info["id"])
    async with svc.pool.acquire() as conn:
        pol = await load_policy_from_db(conn, svc.policy_file)
        rules = RuleSet.from_policy(pol, svc.tz.key, await campaigns.windows_of(conn, cid))
        found = await next_eligible(conn, cid, svc.clock.now(), rules, limit=1)
        if not found:
            return json_reply({"contact": None})
        name = await conn.fetchval("SELECT name FROM contacts WHERE id = $1", found[0].contact_id)
    log.info("preview_shown", campaign=cid, by=user.username)
    c = found[0]
    return json_reply(
        {
            "contact": {
                "id": c.contact_id,
                "number": mask_number(trunk_form(c.number)),
                "name": name,
                "segment": c.segment,
            }
        }
    )


async def preview_dial(request: web.Request) -> web.Response:
    user: auth.User = request[USER]
    svc = request.app[SERVICES]
    agent = user.agent_id
    if agent is None:
        raise json_error(web.HTTPForbidden, "only an agent with a phone can dial / 仅坐席可拨打")
    if svc.outbound_preview_dial is None:
        raise json_error(web.HTTPServiceUnavailable, "the dialer is not running in this process")
    try:
        got = await svc.outbound_preview_dial(
            int(request.match_info["id"]), int(request.match_info["cid"]), agent
        )
    except LookupError as e:
        raise json_error(web.HTTPNotFound, str(e)) from None
    if got is None:
        raise json_error(web.HTTPConflict, "not dialed: taken, no longer eligible, or inbound first / 未拨出")
    return json_reply(got)


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/outbound/campaigns", list_campaigns)
    r.add_post("/api/outbound/campaigns", create_campaign)
    r.add_post("/api/outbound/campaigns/{id:\\d+}/status", campaign_status)
    r.add_post("/api/outbound/dnc", add_dnc)
    r.add_post("/api/outbound/dials/{id:\\d+}/disposition", disposition)
    r.add_post("/api/outbound/assignments", assign)
    r.add_get("/api/outbound/funnel", funnel_report)
    r.add_get("/api/outbound/pacing", pacing)
    r.add_get("/api/outbound/export", export_list)
    r.add_get("/api/outbound/campaigns/{id:\\d+}/preview", preview_next)
    r.add_post("/api/outbound/campaigns/{id:\\d+}/preview/{cid:\\d+}/dial", preview_dial)

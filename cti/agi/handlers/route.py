"""`route`: decide where an inbound call goes and tell the dialplan through channel variables.

Reads: agi_callerid / agi_uniqueid from the environment, CTI_DNIS (the DID, set by the dialplan),
CTI_REQUESTED_AGENT (an IVR choice, optional), CHANNEL(linkedid). One database round trip (the
caller's orders, and the recording row for day calls); the agent directory is cached.
Sets: CALLERID(name) (masked, as in capture 01), CTI_MASKED, CTI_QUEUE, CTI_PREFERRED,
CTI_PREFERRED_TIMEOUT, CTI_RECORD, then CTI_ROUTE last: if the session dies before that, the
dialplan sees no CTI_ROUTE and falls back to the queue (capture 08a: AGISTATUS alone can't tell).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import structlog

from cti.agi.context import AgiContext
from cti.agi.session import AgiSession
from cti.routing.inbound import (
    DEFAULT_QUEUE,
    InboundCall,
    NumberKind,
    Order,
    Route,
    classify_number,
    decide_route,
    is_service_hours,
)

log = structlog.get_logger(__name__)

_SAFE_ID = re.compile(r"[^0-9A-Za-z._-]")
_AGENT_CHOICE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")

# Day calls: insert the recording row and read the caller's orders in one round trip.
_DAY_QUERY = """
WITH rec AS (
    INSERT INTO recordings (linkedid, uniqueid, path, number, did, queue, created_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT (linkedid) DO UPDATE SET uniqueid = recordings.uniqueid
    RETURNING path
)
SELECT rec.path AS rec_path, o.id, o.owner_agent, o.status, o.created_at, o.parent_order_id, o.duplicate_of
FROM rec
LEFT JOIN customers c ON c.number = $4
LEFT JOIN LATERAL (
    SELECT * FROM orders WHERE customer_id = c.id ORDER BY created_at, id LIMIT 200
) o ON true
"""


def recording_path(pattern: str, now_local: datetime, linkedid: str, uniqueid: str) -> str:
    """settings.recording.path_pattern: strftime fields of the local time plus {linkedid}/{uniqueid}."""
    safe_linked = _SAFE_ID.sub("_", linkedid) or "unknown"
    safe_unique = _SAFE_ID.sub("_", uniqueid) or "unknown"
    filled = pattern.replace("{linkedid}", safe_linked).replace("{uniqueid}", safe_unique)
    return now_local.strftime(filled)


async def handle(session: AgiSession, ctx: AgiContext) -> None:
    env = session.env
    uniqueid = env.get("agi_uniqueid")
    number = classify_number(env.get("agi_callerid"))
    did = await session.get_variable("CTI_DNIS") or env.get("agi_dnid") or env.get("agi_extension") or None
    requested = await session.get_variable("CTI_REQUESTED_AGENT")
    linkedid = await session.get_variable("CHANNEL(linkedid)") or uniqueid
    if requested and not _AGENT_CHOICE.match(requested):
        log.warning("ignoring malformed CTI_REQUESTED_AGENT", uniqueid=uniqueid, value=requested[:40])
        requested = None
    if number.kind is not NumberKind.VALID:
        # never the raw value in a log: it may be a number, or anything a carrier or attacker sent
        log.info("caller number unusable; no customer lookup", uniqueid=uniqueid, kind=number.kind)

    now = ctx.clock.now()
    tz = ctx.settings.tz
    day = is_service_hours(ctx.policy, now, tz)
    record_path: str | None = None
    orders: tuple[Order, ...] = ()
    if day:
        path = recording_path(ctx.settings.recording.path_pattern, now.astimezone(tz), linkedid, uniqueid)
        record_path, orders = await _record_and_orders(ctx, linkedid, uniqueid, path, number.number, did, now)

    call = InboundCall(number=number, did=did, requested_agent=requested or None, orders=orders)
    snapshot = ctx.snapshot()
    decision = decide_route(
        call,
        await ctx.directory.get(),
        snapshot,
        ctx.policy,
        now,
        tz,
        offer_callback=day and ctx.callback_advisor(snapshot, now),
    )

    await session.set_variable("CALLERID(name)", decision.masked)
    for name, value in decision.variables(record_path if decision.route is not Route.NIGHT else None).items():
        await session.set_variable(name, value)
    await session.set_variable("CTI_ROUTE", decision.route.value)

    log.info(
        "route decided",
        uniqueid=uniqueid,
        route=decision.route,
        preferred=decision.preferred,
        why=decision.reason,
        caller=decision.masked,
    )
    await ctx.emit(
        "route",
        {
            "route": decision.route.value,
            "queue": decision.queue,
            "preferred": decision.preferred,
            "preferred_reason": decision.preferred_reason,
            "preferred_timeout_s": decision.preferred_timeout_s,
            "skipped": [list(s) for s in decision.skipped],
            "reason": decision.reason,
            "number": number.number,
            "number_kind": number.kind.value,
            "masked": decision.masked,
            "did": did,
            "record": record_path,
            "live_state": snapshot.live,
        },
        key=f"agi:route:{uniqueid}" if uniqueid else None,
        uniqueid=uniqueid,
        linkedid=linkedid,
        agent=decision.preferred,
        queue=decision.queue,
    )


async def _record_and_orders(
    ctx: AgiContext,
    linkedid: str,
    uniqueid: str,
    path: str,
    number: str | None,
    did: str | None,
    now: datetime,
) -> tuple[str | None, tuple[Order, ...]]:
    if ctx.pool is None:
        return path, ()
    args = (linkedid, uniqueid, path, number, did, DEFAULT_QUEUE, now)
    rows: list[Any] = await ctx.pool.fetch(_DAY_QUERY, *args)
    rec_path = rows[0]["rec_path"] if rows else path
    orders = tuple(
        Order(
            id=r["id"],
            owner_agent=r["owner_agent"],
            status=r["status"],
            created_at=r["created_at"],
            parent_order_id=r["parent_order_id"],
            duplicate_of=r["duplicate_of"],
        )
        for r in rows
        if r["id"] is not None
    )
    return rec_path, orders

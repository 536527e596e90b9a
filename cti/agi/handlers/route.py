"""`route`: decide where an inbound call goes and tell the dialplan through channel variables.

A call from `linetest.caller_id` is our own line test coming back (cti/linetest/inbound.py).
Reads: agi_callerid / agi_uniqueid from the environment, then in one GET FULL VARIABLE: CTI_DNIS
(the DID, set by the dialplan), CTI_REQUESTED_AGENT (an IVR choice, optional), CHANNEL(linkedid).
The caller's orders are looked up concurrently with that round trip (cti/agi/orders.py: one
query for all the calls asking at the same time); the agent directory is cached; the recording row
goes to a batched writer (cti/agi/recordings.py).
Sets: CALLERID(name) (masked, as in capture 01), CTI_MASKED, CTI_QUEUE, CTI_PREFERRED,
CTI_PREFERRED_TIMEOUT, CTI_RECORD, then CTI_ROUTE last: if the session dies before that, the
dialplan sees no CTI_ROUTE and falls back to the queue (capture 08a: AGISTATUS alone can't tell).
"""

from __future__ import annotations

import asyncio

import structlog

from cti.agi.context import AgiContext
from cti.agi.session import AgiSession
from cti.linetest.inbound import handle as line_test_inbound
from cti.recording_files import recording_path
from cti.routing.inbound import (
    CallToRoute,
    NumberKind,
    Order,
    Route,
    classify_number,
    decide_route,
    is_service_hours,
)
from cti.routing.numbers import AGENT_ID

log = structlog.get_logger(__name__)


_VARS = "${CTI_DNIS}|${CTI_REQUESTED_AGENT}|${CHANNEL(linkedid)}"


async def handle(session: AgiSession, ctx: AgiContext) -> None:
    env = session.env
    uniqueid = env.get("agi_uniqueid")
    number = classify_number(env.get("agi_callerid"))
    now = ctx.clock.now()
    tz = ctx.settings.tz
    day = is_service_hours(ctx.policy, now, tz)
    # the customer lookup runs while we talk to Asterisk: its latency hides behind the round trip
    lookup = (
        ctx.orders.request(number.number)
        if day
        and ctx.orders is not None
        and number.number
        and (ctx.open_orders is None or ctx.open_orders.may_have_orders(number.number))
        else None
    )
    try:
        # one round trip for the three values; `|` cannot occur in a DID or a Linkedid, so a stray
        # one can only sit in the IVR choice, which is then rejected as malformed below
        got = (await session.get_full_variable(_VARS) or "").split("|")
        did = got[0] or env.get("agi_dnid") or None
        requested = "|".join(got[1:-1]) if len(got) >= 3 else ""
        linkedid = (got[-1] if len(got) >= 3 else "") or uniqueid
        orders = await _orders(lookup, uniqueid) if lookup is not None else ()
    finally:
        if lookup is not None:
            if not lookup.done():
                lookup.cancel()
            elif not lookup.cancelled():
                lookup.exception()  # retrieved: a failed lookup of a call that ended is not news
    if number.number is not None and number.number == ctx.settings.linetest.caller_id:
        # our own line test coming back through the carrier (R-LINE-TEST): no customer, no routing
        await line_test_inbound(session, ctx, did=did, linkedid=linkedid)
        return
    if requested and not AGENT_ID.match(requested):
        log.warning("ignoring malformed CTI_REQUESTED_AGENT", uniqueid=uniqueid, value=requested[:40])
        requested = None
    if number.kind is not NumberKind.VALID:
        # never the raw value in a log: it may be a number, or anything a carrier or attacker sent
        log.info("caller number unusable; no customer lookup", uniqueid=uniqueid, kind=number.kind)

    call = CallToRoute(number=number, did=did, requested_agent=requested or None, orders=orders)
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
    record_path: str | None = None
    if decision.route is not Route.NIGHT:
        record_path = recording_path(
            ctx.settings.recording.path_pattern, now.astimezone(tz), linkedid, uniqueid
        )

    await session.set_variable("CALLERID(name)", decision.masked)
    for name, value in decision.variables(record_path).items():
        await session.set_variable(name, value)
    await session.set_variable("CTI_ROUTE", decision.route.value)

    if record_path is not None and ctx.recordings is not None:
        ctx.recordings.add((linkedid, uniqueid, record_path, number.number, did, decision.queue, now))
    # no log line: the `route` event below records every decision (a log call per call costs more
    # than routing)
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
            "orders_seen": len(orders),
        },
        key=f"agi:route:{uniqueid}" if uniqueid else None,
        uniqueid=uniqueid,
        linkedid=linkedid,
        agent=decision.preferred,
        queue=decision.queue,
    )


async def _orders(lookup: asyncio.Future[tuple[Order, ...]], uniqueid: str) -> tuple[Order, ...]:
    """The caller's orders; a failed lookup routes without an owner rather than not at all."""
    try:
        return await lookup
    except Exception as e:
        log.warning(
            "customer lookup failed; routing without the order owner", uniqueid=uniqueid, error=str(e)
        )
        return ()

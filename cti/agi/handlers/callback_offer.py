"""`callback_offer` (R-PEAK): the route decision said nobody can answer within two rings, so offer a
callback. Key 1 -> confirm or key the number, store a `peak` callback, thank, CTI_ROUTE=hangup.
Anything else (or a failure) -> CTI_ROUTE=queue: the caller keeps waiting."""

from __future__ import annotations

import structlog

from cti.agi.context import AgiContext
from cti.agi.handlers.ivr import PROMPTS, confirm_number
from cti.agi.session import AgiSession
from cti.callbacks.repo import create_or_join
from cti.masking import mask_number
from cti.routing.inbound import DEFAULT_QUEUE, classify_number

log = structlog.get_logger(__name__)

TIMEOUT_S = 120.0
OFFER_TIMEOUT_MS = 5000


async def handle(session: AgiSession, ctx: AgiContext) -> None:
    env = session.env
    uniqueid = env.get("agi_uniqueid")
    caller = classify_number(env.get("agi_callerid"))
    did = await session.get_variable("CTI_DNIS") or env.get("agi_dnid") or None
    linkedid = await session.get_variable("CHANNEL(linkedid)") or uniqueid
    key = f"agi:callback_offer:{uniqueid}" if uniqueid else None

    choice = await session.get_data(PROMPTS.offer, OFFER_TIMEOUT_MS, 1)
    number = await confirm_number(session, caller) if choice == "1" else None
    if number is None:
        await session.set_variable("CTI_ROUTE", "queue")
        await ctx.emit(
            "callback_declined",
            {"choice": choice, "did": did, "number_kind": caller.kind.value},
            key=key,
            uniqueid=uniqueid,
            linkedid=linkedid,
            queue=DEFAULT_QUEUE,
        )
        return
    now = ctx.clock.now()
    callback_id: int | None = None
    if ctx.pool is not None:
        async with ctx.pool.acquire() as conn:
            ref = await create_or_join(
                conn,
                number=number,
                did=did,
                kind="peak",
                now=now,
                source_linkedid=linkedid,
                queue=DEFAULT_QUEUE,
            )
        callback_id = ref.id
    await ctx.emit(
        "callback_accepted",
        {"number": number, "did": did, "callback_id": callback_id},
        key=key,
        uniqueid=uniqueid,
        linkedid=linkedid,
        queue=DEFAULT_QUEUE,
    )
    log.info("peak callback stored", uniqueid=uniqueid, caller=mask_number(number), callback_id=callback_id)
    await session.stream_file(PROMPTS.thanks)
    await session.set_variable("CTI_ROUTE", "hangup")

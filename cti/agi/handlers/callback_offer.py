"""`callback_offer` (R-PEAK): the route decision said nobody can answer within two rings, so offer a
callback. The caller keys 1 (call me back on this number), another number ending with #, or 2 (I
will wait); cti.callbacks.offer interprets the keys. A callback -> store it (joining one already open
for the number), thank, CTI_ROUTE=hangup. Anything else, or any failure -> CTI_ROUTE=queue."""

from __future__ import annotations

import structlog

from cti.agi.context import AgiContext
from cti.agi.handlers.ivr import MAX_NUMBER_DIGITS, PROMPTS, ask, play, read_back, who_calls
from cti.agi.session import AgiSession
from cti.callbacks.offer import interpret_reply, open_callback
from cti.masking import mask_number
from cti.routing.inbound import DEFAULT_QUEUE, NumberKind

log = structlog.get_logger(__name__)

TIMEOUT_S = 120.0
OFFER_TIMEOUT_MS = 6000


async def handle(session: AgiSession, ctx: AgiContext) -> None:
    who = await who_calls(session)
    uniqueid, caller, did, linkedid = who.uniqueid, who.number, who.did, who.linkedid
    key = f"agi:callback_offer:{uniqueid}" if uniqueid else None

    tries = 0
    while True:
        tries += 1
        early = ""
        if caller.kind is NumberKind.VALID and caller.number:
            early = await read_back(session, caller.number)  # a `1` keyed meanwhile counts (capture 16)
        keyed = await ask(session, PROMPTS.offer, OFFER_TIMEOUT_MS, MAX_NUMBER_DIGITS, early)
        reply = interpret_reply(keyed, calling_number=caller.number, tries=tries)
        if reply.action != "reprompt":
            break
        await play(session, PROMPTS.invalid)

    if reply.action != "callback" or reply.number is None:
        await session.set_variable("CTI_ROUTE", "queue")
        await ctx.emit(
            "callback_declined",
            {"reason": reply.reason, "did": did, "number": caller.number, "number_kind": caller.kind.value},
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
            ref = await open_callback(
                conn,
                number=reply.number,
                did=did,
                kind="peak",
                now=now,
                policy=ctx.policy.callbacks,
                linkedid=linkedid,
                queue=DEFAULT_QUEUE,
            )
        callback_id = ref.id
    await ctx.emit(
        "callback_accepted",
        {"number": reply.number, "reason": reply.reason, "did": did, "callback_id": callback_id},
        key=key,
        uniqueid=uniqueid,
        linkedid=linkedid,
        queue=DEFAULT_QUEUE,
    )
    log.info(
        "peak callback stored", uniqueid=uniqueid, caller=mask_number(reply.number), callback_id=callback_id
    )
    await play(session, PROMPTS.thanks)
    await session.set_variable("CTI_ROUTE", "hangup")

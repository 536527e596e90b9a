"""`night` (R-NIGHT): outside service hours the caller leaves name and number; we owe a callback
before 08:30 (policy.service_hours.night_callback_due) the next morning.

Answer, welcome prompt, RECORD FILE the name, confirm the number by DTMF (1) or key another ending
with #, store the callback (joining one already open for the number), thank, hang up.
"""

from __future__ import annotations

import structlog

from cti.agi.context import AgiContext
from cti.agi.handlers.ivr import PROMPTS, confirm_number, play, who_calls
from cti.agi.session import AgiSession, recorded
from cti.callbacks.repo import create_or_join
from cti.masking import mask_number
from cti.recording_files import name_file_base
from cti.routing.inbound import DEFAULT_QUEUE, is_service_hours, next_night_due

log = structlog.get_logger(__name__)

TIMEOUT_S = 180.0  # prompts + a name + three confirmation tries
NAME_MAX_MS = 8000
NAME_SILENCE_S = 2


async def handle(session: AgiSession, ctx: AgiContext) -> None:
    who = await who_calls(session)
    uniqueid, caller, did, linkedid = who.uniqueid, who.number, who.did, who.linkedid
    now = ctx.clock.now()
    tz = ctx.settings.tz

    # also reached by day when the queue could not take the call (dialplan cti-queue: JOINEMPTY, the
    # wait ran out): then it is an ordinary callback, not a night one due before 08:30, and the caller
    # must not hear that we are closed (issue 10, capture 19)
    night = not is_service_hours(ctx.policy, now, tz)

    await session.answer()
    await play(session, PROMPTS.night_welcome if night else PROMPTS.day_busy)
    await play(session, PROMPTS.say_name)
    base = name_file_base(ctx.settings.recording.path_pattern, now.astimezone(tz), linkedid, uniqueid)
    rec = await session.record_file(base, "wav", NAME_MAX_MS, NAME_SILENCE_S)
    name_file: str | None = base + ".wav"
    if not recorded(rec):  # the callback must not point at a file that was never written
        why = rec.data or rec.result
        log.warning("caller's name not recorded", uniqueid=uniqueid, file=name_file, result=why)
        name_file = None

    number = await confirm_number(session, caller)
    if number is None:
        await play(session, PROMPTS.no_number)
        log.warning("night caller left no usable number", uniqueid=uniqueid, kind=caller.kind)
        await ctx.emit(
            "night_no_number",
            {"number_kind": caller.kind.value, "did": did, "name_file": name_file},
            key=f"agi:night:{uniqueid}" if uniqueid else None,
            uniqueid=uniqueid,
            linkedid=linkedid,
        )
        await session.hangup()
        return

    due = next_night_due(now, tz, ctx.policy.service_hours.night_callback_due) if night else None
    callback_id: int | None = None
    if ctx.pool is not None:
        async with ctx.pool.acquire() as conn:
            ref = await create_or_join(
                conn,
                number=number,
                did=did,
                kind="night" if night else "abandon",
                now=now,
                priority=ctx.policy.callbacks.night_priority if night else 0,
                due_by=due,
                caller_name_file=name_file,
                source_linkedid=linkedid,
                queue=DEFAULT_QUEUE,
            )
        callback_id = ref.id
    else:
        log.error("no database: night callback kept only as an event", uniqueid=uniqueid)
    await ctx.emit(
        "night_callback",
        {
            "number": number,
            "confirmed_caller_number": number == caller.number,
            "did": did,
            "kind": "night" if night else "abandon",
            "due_by": due.isoformat() if due else None,
            "name_file": name_file,
            "callback_id": callback_id,
        },
        key=f"agi:night:{uniqueid}" if uniqueid else None,
        uniqueid=uniqueid,
        linkedid=linkedid,
    )
    log.info("night callback stored", uniqueid=uniqueid, caller=mask_number(number), callback_id=callback_id)
    await play(session, PROMPTS.thanks)
    await session.hangup()

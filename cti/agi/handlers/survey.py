"""`survey` (issue 17): the agent left an answered call first, or sent the customer here with the
transfer-to-survey key; the customer rates the call with one key, and is thanked.

Arguments (agi_arg_1..4): the agent (`${MEMBERNAME}` after Queue, the agent's endpoint for a
callback), the call kind (`inbound` | `callback`), the queue (else `CTI_QUEUE`) and how the customer
got here: `key` when the agent's transfer-to-survey key marked the channel ([cti-survey-key] sets
SHARED(CTI_SURVEY_VIA)), empty when the agent hung up; the event says `via` key | hangup. The policy
(`[survey]`) says which calls are surveyed and with which scale (cti.quality.survey).

One key; no key or a key outside the scale asks again (`attempts` in all); a customer who hangs up
ends it. Whatever happened is one `survey_result` event tied to the call and the agent and one
`survey_results` row; a rating at or below `alarm_at_or_below` is also a `survey_alarm` event
for the supervisor carrying the call's recording id. Prompts: decision 0305 rules (via ivr).
"""

from __future__ import annotations

from typing import Any

import structlog

from cti.agi.context import AgiContext
from cti.agi.handlers.ivr import ask, play
from cti.agi.protocol import AgiHangup
from cti.agi.session import AgiSession
from cti.quality.survey import PROMPT, alarms, rating, surveys

log = structlog.get_logger(__name__)

TIMEOUT_S = 60.0
INVALID = "cti/survey-invalid"
THANKS = "cti/survey-thanks"
KINDS = ("inbound", "callback")


async def handle(session: AgiSession, ctx: AgiContext) -> None:
    env = session.env
    args = [*env.args, "", "", "", ""]
    uniqueid = env.get("agi_uniqueid")
    agent = args[0] or await session.get_variable("MEMBERNAME") or None
    kind = args[1] if args[1] in KINDS else "inbound"
    via = "key" if args[3] == "key" else "hangup"
    queue = args[2] or await session.get_variable("CTI_QUEUE") or None
    linkedid = await session.get_variable("CHANNEL(linkedid)") or uniqueid
    policy = ctx.policy.survey
    if not surveys(policy, kind, queue):
        log.info("call not surveyed by policy", uniqueid=uniqueid, queue=queue, kind=kind, via=via)
        await session.hangup()
        return

    keyed, outcome, got = "", "no_key", None
    try:
        for attempt in range(policy.attempts):
            keyed = await ask(session, PROMPT[policy.scale], policy.key_timeout_ms, 1)
            got = rating(keyed, policy.scale)
            if got is not None:
                outcome = "rated"
                break
            outcome = "invalid" if keyed else "no_key"
            if keyed and attempt + 1 < policy.attempts:
                await play(session, INVALID)
        if got is not None:
            await play(session, THANKS)
    except AgiHangup:
        if got is None:
            outcome = "hung_up"  # keys before the hangup that made no rating are not a rating
        await _record(ctx, uniqueid, linkedid, agent, queue, kind, via, keyed, got, outcome)
        raise
    await _record(ctx, uniqueid, linkedid, agent, queue, kind, via, keyed, got, outcome)
    await session.hangup()


async def _record(
    ctx: AgiContext,
    uniqueid: str,
    linkedid: str,
    agent: str | None,
    queue: str | None,
    kind: str,
    via: str,
    keyed: str,
    got: Any,
    outcome: str,
) -> None:
    policy = ctx.policy.survey
    score = got.score if got is not None else None
    alarm = alarms(score, policy)
    recording_id: int | None = None
    if ctx.pool is not None:
        try:
            async with ctx.pool.acquire() as conn:
                recording_id = await conn.fetchval("SELECT id FROM recordings WHERE linkedid = $1", linkedid)
                await conn.execute(
                    """INSERT INTO survey_results (linkedid, uniqueid, agent, queue, call_kind, scale, keyed,
                           score, outcome, alarm, recording_id, at, via)
                       VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)
                       ON CONFLICT (linkedid) DO NOTHING""",
                    linkedid, uniqueid, agent, queue, kind, policy.scale, keyed, score, outcome, alarm,
                    recording_id, ctx.clock.now(), via,
                )  # fmt: skip
        except Exception as e:  # the event below still carries the answer
            log.error("survey row not stored", uniqueid=uniqueid, error=str(e))
    payload = {
        "kind": kind,
        "via": via,
        "scale": policy.scale,
        "keyed": keyed,
        "score": score,
        "label": got.label if got is not None else None,
        "outcome": outcome,
        "recording_id": recording_id,
    }
    key = f"agi:survey:{linkedid}"
    await ctx.emit("survey_result", payload, key=key, uniqueid=uniqueid, linkedid=linkedid, agent=agent,
                   queue=queue)  # fmt: skip
    if alarm:
        await ctx.emit("survey_alarm", payload, key=f"{key}:alarm", uniqueid=uniqueid, linkedid=linkedid,
                       agent=agent, queue=queue)  # fmt: skip
        log.warning("very dissatisfied customer", agent=agent, linkedid=linkedid, recording_id=recording_id)

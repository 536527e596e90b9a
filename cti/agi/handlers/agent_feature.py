"""`agent_feature`: an agent's feature code (*11 login, *12 logout, *13[N] pause, *14 unpause,
*15 status), asked from the phone through `[cti-agent-feature]` in the dialplan.

Arguments (agi_arg_1..3): the operation, the authenticated endpoint (`${CHANNEL(endpoint)}`, not the
caller ID a phone may set) and the pause code N (1-based in policy breaks.pause_reasons). The agent
service (cti.agents) decides and records; here we only tell the phone: CTI_AGENT_RESULT = the result
code, and the prompt for it (cti.agents.prompts). No agent service (a `cti agi` without AMI): nothing
is set, and the dialplan plays `cti/agent-cti-unavailable`.
"""

from __future__ import annotations

import structlog

from cti.agents.decide import Decision, reason_for_code
from cti.agents.prompts import prompt_for
from cti.agi.context import AgiContext
from cti.agi.session import AgiSession

log = structlog.get_logger(__name__)

OPS = ("login", "logout", "pause", "unpause", "status")


async def decide(ctx: AgiContext, op: str, agent_id: str, code: str) -> str:
    """The result code for one request (a key of cti.agents.prompts.PROMPTS)."""
    svc = ctx.agents
    assert svc is not None
    d: Decision
    if op == "login":
        d = await svc.login(agent_id, via="phone")
    elif op == "logout":
        d = await svc.logout(agent_id, via="phone")
    elif op == "pause":
        d = await svc.pause(agent_id, reason_for_code(code, ctx.policy.breaks.pause_reasons), via="phone")
    elif op == "unpause":
        d = await svc.unpause(agent_id, via="phone")
    else:
        s = await svc.session(agent_id)
        return "status_out" if s is None else ("status_paused" if s.paused else "status_in")
    return d.code


async def handle(session: AgiSession, ctx: AgiContext) -> None:
    args = session.env.args
    op = args[0].strip().lower() if args else ""
    agent_id = args[1].strip() if len(args) > 1 else ""
    code = args[2].strip() if len(args) > 2 else ""
    if ctx.agents is None:
        log.warning("agent_feature_without_agent_service", op=op)
        return
    if op not in OPS or not agent_id:
        result = "pbx_error"
        log.warning("agent_feature_bad_request", op=op, agent=agent_id)
    else:
        result = await decide(ctx, op, agent_id, code)
    await session.set_variable("CTI_AGENT_RESULT", result)
    await session.stream_file(prompt_for(result))

"""Several Asterisk servers (issue 18, decision 0110): every agent's phone is on one PBX
(`agents.pbx`); a process is given its PBX(es) in settings (`pbx` names the one `ami` reaches,
`pbxes` adds more). Whatever rings an agent goes out through the AMI client of the agent's PBX, and
the dispatcher sees the free agents of every PBX this process serves.

With one PBX (no `pbxes` in settings) none of this is wired: the process runs as it always did."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence, Set
from typing import Any

from cti.callbacks.originate import OriginateNotSent

Send = Callable[[Any], Awaitable[Mapping[str, Any]]]
Action = Callable[[str, Mapping[str, str]], Awaitable[Mapping[str, Any]]]


def agent_of(interface: str | None) -> str | None:
    """PJSIP/agent3 -> agent3 (the agents table's id is the endpoint name)."""
    if not interface or "/" not in interface:
        return None
    return interface.split("/", 1)[1].split("@", 1)[0] or None


class AgentPbx:
    """agent -> PBX from `agents.pbx`, read once and again when an agent is not known yet."""

    def __init__(self, pool: Any, default: str) -> None:
        self.pool, self.default = pool, default
        self._map: dict[str, str] = {}

    async def of(self, agent: str | None) -> str:
        if agent is None:
            return self.default
        if agent not in self._map:
            async with self.pool.acquire() as conn:
                rows = await conn.fetch("SELECT id, pbx FROM agents")
            self._map = {r["id"]: r["pbx"] for r in rows}
        return self._map.get(agent, self.default)


class PbxRouter:
    """Originates and agent actions (QueueAdd/Remove/Pause carry the agent's Interface) sent through
    the client of the agent's PBX. An agent on a PBX this process does not serve is never sent to:
    OriginateNotSent (the attempt costs the customer nothing and another process can take it)."""

    def __init__(
        self, agents: AgentPbx, originates: Mapping[str, Send], actions: Mapping[str, Action]
    ) -> None:
        self.agents, self._originates, self._actions = agents, dict(originates), dict(actions)

    async def _pick(self, table: Mapping[str, Any], agent: str | None) -> Any:
        pbx = await self.agents.of(agent)
        fn = table.get(pbx)
        if fn is None:
            raise OriginateNotSent(f"PBX {pbx!r} of {agent} is not served by this process")
        return fn

    async def originate(self, req: Any) -> Mapping[str, Any]:
        """A callback/desk OriginateRequest (Channel: the agent) or an outbound one (`agent`, None
        for predictive: the default PBX, whose queue picks the agent)."""
        agent = getattr(req, "agent", None) if hasattr(req, "dial_id") else agent_of(req.channel)
        return await (await self._pick(self._originates, agent))(req)

    async def action(self, name: str, headers: Mapping[str, str]) -> Mapping[str, Any]:
        channel = headers.get("Channel") if name == "Originate" else None  # the desk's: agent first
        agent = headers.get("Endpoint") or agent_of(headers.get("Interface") or channel)  # Endpoint: qualify
        return await (await self._pick(self._actions, agent))(name, headers)


class PbxFloor:
    """The dispatcher's live view (`LiveAgents`) over the queue views of several PBXes."""

    def __init__(self, views: Sequence[Any]) -> None:
        self.views = list(views)

    def free_agent(self, busy: Set[str]) -> str | None:
        return next((a for v in self.views if (a := v.free_agent(busy)) is not None), None)

    def waiting_inbound(self) -> int:
        return sum(v.waiting_inbound() for v in self.views)

    def inbound_answered(self) -> int:
        return sum(v.inbound_answered() for v in self.views)

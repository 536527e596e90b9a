"""Which call each agent is on, folded from the AMI stream: the desk's view of the floor.

Pure: `DeskTracker.apply(event, ts)` changes plain records and returns the agents whose view changed,
so the web layer pushes to exactly those (an agent's screen pops on its own ring, nobody else's).
The full caller number is kept here, server side only; every view handed out masks it (R-MASK).

Legs an agent's phone rings on (capture numbers from asterisk-captures/INDEX.md):
- queue: AgentCalled → AgentConnect (answered) / AgentRingNoAnswer → AgentComplete (captures 01-03);
- the order owner / named agent first: DialBegin with DialString `agentN` → DialEnd (captures 12/13);
- a callback or click-to-call: the agent-first Originate, Linkedid `cti-cb-…` / `cti-desk-…`: the
  agent leg's Newchannel rings, its Newstate Up answers, its Hangup ends (captures 06a/06d).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cti.ami.headers import first
from cti.masking import mask_number

Ev = Mapping[str, Any]


_s = first  # the first value of a header, "" when absent


def _agent_of_channel(channel: str) -> str | None:
    """`PJSIP/agent1-0000000a` → `agent1` (the endpoint is the agent id, as everywhere in cti)."""
    tech, _, rest = channel.partition("/")
    if tech != "PJSIP" or "-" not in rest:
        return None
    return rest.rpartition("-")[0] or None


@dataclass(slots=True)
class CallInfo:
    """One inbound or originated call as the CTI saw it. `number` is the FULL number: server only."""

    linkedid: str
    started: float
    number: str = ""
    did: str = ""
    queue: str = ""
    preferred: str = ""  # CTI_PREFERRED set by the route handler
    callback_id: int | None = None  # cti-cb-<id>-<attempt>
    desk_ref: str = ""  # cti-desk-<kind>-<id>-<n>: a click-to-call from the panel


@dataclass(slots=True)
class AgentCall:
    linkedid: str
    phase: str  # ringing | in_call | ended
    via: str  # queue | preferred | callback | desk
    rung_at: float
    answered_at: float | None = None
    ended_at: float | None = None
    ring_s: float | None = None  # from ring start to answer (R-RING2)


@dataclass(slots=True)
class AgentDesk:
    agent: str
    call: AgentCall | None = None
    since: float = 0.0  # when the phase last changed (time in state)
    rna_streak: int = 0  # ring-no-answers in a row (R-STATUS: twice → left the seat)
    rna_today: int = 0
    calls_today: int = 0
    last_call: AgentCall | None = None  # the ended call awaiting its disposition (wrap-up)


@dataclass
class DeskTracker:
    calls: dict[str, CallInfo] = field(default_factory=dict)
    agents: dict[str, AgentDesk] = field(default_factory=dict)
    # linkedids already dispositioned (wrap-up over); bounded by the day's calls
    disposed: set[str] = field(default_factory=set)

    def agent(self, agent: str) -> AgentDesk:
        a = self.agents.get(agent)
        if a is None:
            a = self.agents[agent] = AgentDesk(agent)
        return a

    def call(self, linkedid: str) -> CallInfo | None:
        return self.calls.get(linkedid)

    # ---- folding ------------------------------------------------------------------------
    def apply(self, ev: Ev, ts: float) -> tuple[str, ...]:
        """Fold one AMI event; return the agents whose desk view changed."""
        name = ev.get("Event")
        h = _HANDLERS.get(name)  # type: ignore[arg-type]
        return h(self, ev, ts) if h is not None else ()

    def _info(self, ev: Ev, ts: float) -> CallInfo:
        lid = _s(ev, "Linkedid") or _s(ev, "Uniqueid")
        c = self.calls.get(lid)
        if c is None:
            c = self.calls[lid] = CallInfo(lid, ts)
            if lid.startswith("cti-cb-"):
                parts = lid.split("-")
                if len(parts) >= 4 and parts[2].isdigit():
                    c.callback_id = int(parts[2])
            elif lid.startswith("cti-desk-"):
                c.desk_ref = lid
        return c

    def _ring(self, agent: str, lid: str, via: str, ts: float) -> tuple[str, ...]:
        a = self.agent(agent)
        if a.call is not None and a.call.linkedid == lid and a.call.phase != "ended":
            return ()
        a.call = AgentCall(lid, "ringing", via, ts)
        a.since = ts
        return (agent,)

    def _answer(self, agent: str, lid: str, ts: float) -> tuple[str, ...]:
        a = self.agent(agent)
        if a.call is None or a.call.linkedid != lid:
            a.call = AgentCall(lid, "ringing", "queue", ts)
        if a.call.phase == "in_call":
            return ()
        a.call.phase, a.call.answered_at = "in_call", ts
        a.call.ring_s = ts - a.call.rung_at
        a.since, a.rna_streak = ts, 0
        a.calls_today += 1
        return (agent,)

    def _end(
        self, agent: str, lid: str | None, ts: float, *, answered: bool | None = None
    ) -> tuple[str, ...]:
        a = self.agents.get(agent)
        if a is None or a.call is None or (lid is not None and a.call.linkedid != lid):
            return ()
        call = a.call
        a.call, a.since = None, ts
        if call.phase == "in_call":
            call.phase, call.ended_at = "ended", ts
            a.last_call = call  # wrap-up until the disposition comes
        return (agent,)

    def ring_no_answer(self, agent: str) -> None:
        a = self.agent(agent)
        a.rna_streak += 1
        a.rna_today += 1

    def dispose(self, agent: str, linkedid: str) -> bool:
        a = self.agents.get(agent)
        self.disposed.add(linkedid)
        if a is not None and a.last_call is not None and a.last_call.linkedid == linkedid:
            a.last_call = None
            return True
        return False

    def reset_day(self) -> None:
        for a in self.agents.values():
            a.calls_today = a.rna_today = 0
        self.disposed.clear()

    def masked(self, linkedid: str) -> str:
        c = self.calls.get(linkedid)
        return mask_number(c.number) if c else ""


def _newchannel(t: DeskTracker, ev: Ev, ts: float) -> tuple[str, ...]:
    uid, lid = _s(ev, "Uniqueid"), _s(ev, "Linkedid")
    if uid and uid == lid and not lid.startswith("cti-"):
        c = t._info(ev, ts)
        c.number, c.did = _s(ev, "CallerIDNum"), _s(ev, "Exten")
        return ()
    if lid.startswith(("cti-cb-", "cti-desk-")):
        agent = _agent_of_channel(_s(ev, "Channel"))
        c = t._info(ev, ts)
        if agent is not None and uid == lid:  # the agent leg is created first (agent-first Originate)
            return t._ring(agent, lid, "callback" if c.callback_id is not None else "desk", ts)
        if uid != lid and not c.number and _s(ev, "Exten").isdigit():  # the customer leg dialed
            c.number = _s(ev, "Exten")
    return ()


def _newstate(t: DeskTracker, ev: Ev, ts: float) -> tuple[str, ...]:
    lid, uid = _s(ev, "Linkedid"), _s(ev, "Uniqueid")
    if uid == lid and lid.startswith(("cti-cb-", "cti-desk-")) and _s(ev, "ChannelStateDesc") == "Up":
        agent = _agent_of_channel(_s(ev, "Channel"))
        if agent is not None:
            return t._answer(agent, lid, ts)
    return ()


def _var_set(t: DeskTracker, ev: Ev, ts: float) -> tuple[str, ...]:
    var = _s(ev, "Variable")
    c = t.calls.get(_s(ev, "Linkedid"))
    if c is None:
        return ()
    if var == "CTI_PREFERRED":
        c.preferred = _s(ev, "Value")
    elif var in ("__CTI_DNIS", "CTI_DNIS", "CTI_DID") and not c.did:
        c.did = _s(ev, "Value")
    elif var == "CTI_QUEUE":
        c.queue = _s(ev, "Value")
    elif var == "CTI_CALLBACK_ID" and c.callback_id is None and _s(ev, "Value").isdigit():
        c.callback_id = int(_s(ev, "Value"))
    return ()


def _agent_called(t: DeskTracker, ev: Ev, ts: float) -> tuple[str, ...]:
    c = t._info(ev, ts)
    c.queue = c.queue or _s(ev, "Queue")
    if not c.number:
        c.number = _s(ev, "CallerIDNum")
    return t._ring(_s(ev, "MemberName"), c.linkedid, "queue", ts)


def _dial_begin(t: DeskTracker, ev: Ev, ts: float) -> tuple[str, ...]:
    lid = _s(ev, "Linkedid")
    if lid.startswith("cti-") or _s(ev, "Uniqueid") != lid:
        return ()  # queue legs have their AgentCalled; originated legs their Newchannel
    agent = _agent_of_channel(_s(ev, "DestChannel"))
    if agent is None:
        return ()
    t._info(ev, ts)
    # the queue's own DialBegin follows its AgentCalled (same leg): _ring() ignores a repeat
    return t._ring(agent, lid, "preferred", ts)


def _dial_end(t: DeskTracker, ev: Ev, ts: float) -> tuple[str, ...]:
    lid = _s(ev, "Linkedid")
    if lid.startswith("cti-") or _s(ev, "Uniqueid") != lid:
        return ()
    agent = _agent_of_channel(_s(ev, "DestChannel"))
    if agent is None:
        return ()
    a = t.agents.get(agent)
    if a is None or a.call is None or a.call.linkedid != lid or a.call.via != "preferred":
        return ()
    if _s(ev, "DialStatus") == "ANSWER":
        return t._answer(agent, lid, ts)
    if _s(ev, "DialStatus") == "NOANSWER":
        t.ring_no_answer(agent)
    return t._end(agent, lid, ts)


def _agent_connect(t: DeskTracker, ev: Ev, ts: float) -> tuple[str, ...]:
    return t._answer(_s(ev, "MemberName"), _s(ev, "Linkedid"), ts)


def _agent_rna(t: DeskTracker, ev: Ev, ts: float) -> tuple[str, ...]:
    agent = _s(ev, "MemberName")
    t.ring_no_answer(agent)
    return t._end(agent, _s(ev, "Linkedid"), ts) or (agent,)


def _agent_complete(t: DeskTracker, ev: Ev, ts: float) -> tuple[str, ...]:
    return t._end(_s(ev, "MemberName"), _s(ev, "Linkedid"), ts)


def _hangup(t: DeskTracker, ev: Ev, ts: float) -> tuple[str, ...]:
    uid, lid = _s(ev, "Uniqueid"), _s(ev, "Linkedid")
    changed: tuple[str, ...] = ()
    agent = _agent_of_channel(_s(ev, "Channel"))
    if agent is not None:
        changed = t._end(agent, lid, ts)
    if uid == lid:
        # the caller is gone: any agent still ringing for this call stops ringing
        for a in t.agents.values():
            if a.call is not None and a.call.linkedid == lid:
                changed += t._end(a.agent, lid, ts)
        c = t.calls.get(lid)
        if c is not None and not any(
            (x.call and x.call.linkedid == lid) or (x.last_call and x.last_call.linkedid == lid)
            for x in t.agents.values()
        ):
            del t.calls[lid]
    return changed


_HANDLERS = {
    "Newchannel": _newchannel,
    "Newstate": _newstate,
    "VarSet": _var_set,
    "AgentCalled": _agent_called,
    "DialBegin": _dial_begin,
    "DialEnd": _dial_end,
    "AgentConnect": _agent_connect,
    "AgentRingNoAnswer": _agent_rna,
    "AgentComplete": _agent_complete,
    "Hangup": _hangup,
}

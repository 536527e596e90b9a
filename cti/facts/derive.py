"""Call and agent facts as a pure function of the ordered AMI event stream.

`derive(events, ring)` reads (ts, type, payload) in log order (events.seq) and returns every fact it
can establish. No clock, no database: `cti facts rebuild` runs the same function over the `events`
table, so fixing a bug here and rebuilding fixes history.

Units (INDEX.md): AgentRingNoAnswer.RingTime is milliseconds; AgentConnect/AgentComplete HoldTime,
TalkTime and QueueCallerAbandon.HoldTime are whole seconds. Durations here are computed from event
timestamps (µs precision) and the Asterisk integer figures are kept next to them for cross-checks.
Cross-channel order is not reliable, so nothing below depends on it: each fact is keyed by the
channel/call it belongs to and every field is set by the one event that defines it.

A Dial outside app_queue (the order owner first, R-PREFERRED; a waiting caller redirected to an
agent) has no Agent*/QueueCaller* events (captures 12, 13): its ring starts at the caller's DialBegin
(`DialString: agent3`), is answered by DialEnd ANSWER (answered_by = the agent's endpoint) and a
timeout is DialEnd NOANSWER, which is a ring-no-answer of that agent like AgentRingNoAnswer (13: no
auto-pause follows it, but the agent did not answer within two rings).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from cti.ami.headers import first
from cti.masking import mask_number


class RingCadence(Protocol):
    def rings_at(self, seconds: float) -> int: ...


@dataclass(slots=True)
class Ring:
    linkedid: str
    agent: str
    queue: str | None
    agent_uniqueid: str
    started_at: float
    ended_at: float | None = None
    outcome: str | None = None  # answered | no_answer | cancelled | busy | ...


@dataclass(slots=True)
class CallFact:
    linkedid: str
    started_at: float
    caller_uniqueid: str = ""
    did: str = ""
    caller_num: str = ""
    queue: str | None = None
    offered_at: float | None = None  # QueueCallerJoin
    answered_by: str | None = None
    answered_at: float | None = None
    time_to_answer_s: float | None = None  # from call arrival
    hold_s: float | None = None  # queue wait before the answer (or before abandon)
    rings_to_answer: int | None = None  # ring cycles the answering agent heard (policy cadence)
    talk_s: float | None = None
    talk_ended_at: float | None = None
    hung_up_first: str | None = None  # caller | agent | transfer
    abandoned: bool = False
    left_queue_at: float | None = None  # QueueCallerLeave/Abandon: answered, gave up or timed out
    abandon_wait_s: float | None = None
    abandon_position: int | None = None
    agents_logged_in: int | None = None  # members logged in to the queue when the call was offered
    recording_file: str | None = None
    ended_at: float | None = None
    gap: bool = False  # a resync happened while this call was live: some events may be missing
    asterisk: dict[str, int] = field(default_factory=dict)  # Asterisk's own integer figures

    @property
    def caller_masked(self) -> str:
        return mask_number(self.caller_num)

    @property
    def outcome(self) -> str:
        """answered | abandoned (hung up while queued) | timeout (left the queue unanswered, e.g.
        Queue()'s 60 s) | unqueued (never reached a queue: night, callback offer, IVR hangup)."""
        if self.answered_by is not None:
            return "answered"
        if self.abandoned:
            return "abandoned"
        if self.offered_at is not None:
            return "timeout"
        return "unqueued"


@dataclass(slots=True)
class Session:
    agent: str
    queue: str
    interface: str
    login_at: float
    logout_at: float | None = None


@dataclass(slots=True)
class Pause:
    agent: str
    queue: str
    reason: str
    started_at: float
    ended_at: float | None = None

    @property
    def duration_s(self) -> float | None:
        return None if self.ended_at is None else self.ended_at - self.started_at


@dataclass(slots=True)
class RingNoAnswer:
    linkedid: str
    agent: str
    queue: str
    at: float
    ring_ms: int


@dataclass
class Facts:
    calls: dict[str, CallFact] = field(default_factory=dict)
    rings: list[Ring] = field(default_factory=list)
    sessions: list[Session] = field(default_factory=list)
    pauses: list[Pause] = field(default_factory=list)
    ring_no_answer: list[RingNoAnswer] = field(default_factory=list)


_s = first  # the first value of a header, "" when absent


def _i(p: Mapping[str, Any], k: str) -> int | None:
    try:
        return int(_s(p, k))
    except ValueError:
        return None


def _endpoint(channel: str) -> str:
    """`PJSIP/agent3-00000001` -> `agent3`."""
    tech, _, rest = channel.partition("/")
    return rest.rpartition("-")[0] if tech and rest else ""


def _epoch(ts: datetime | float) -> float:
    return ts if isinstance(ts, float | int) else ts.timestamp()


# answered > no_answer > busy/congestion/... (other DialStatus) > cancel > the leg just hung up
_RANK = {"answered": 5, "no_answer": 4, "cancel": 2, "hangup": 1}
_RECORDING_VARS = ("MIXMONITOR_FILENAME", "CTI_RECORD", "__CTI_RECORD")


class Deriver:
    """Incremental form of `derive`: `feed(ts, type, payload)` in log order, then `.facts`."""

    def __init__(self, ring: RingCadence) -> None:
        self.ring = ring
        self.f = Facts()
        self.live_calls: dict[str, CallFact] = {}
        self.channels: dict[str, str] = {}  # uniqueid -> linkedid, for live channels
        self.rings: dict[str, Ring] = {}  # agent leg uniqueid -> its ring, until the call ends
        self.last_hangup: dict[str, float] = {}  # linkedid -> latest Hangup time so far
        self.completed: set[str] = set()  # linkedids with an AgentComplete (it names who hung up)
        self.sessions: dict[tuple[str, str], Session] = {}  # (queue, interface)
        self.cti_queue: dict[str, str] = {}  # linkedid -> CTI_QUEUE the route chose (for a Dial's RNA)
        self.pauses: dict[tuple[str, str], Pause] = {}
        self.line_tests: set[str] = set()  # linkedids of line-test calls (R-LINE-TEST): no customer

    @property
    def facts(self) -> Facts:
        return self.f

    def feed(self, ts: float, typ: str, p: Mapping[str, Any]) -> None:
        h = getattr(self, "on_" + typ, None)
        if h is not None:
            h(ts, p)

    # ---- calls -----------------------------------------------------------------------
    def on_Newchannel(self, ts: float, p: Mapping[str, Any]) -> None:
        uid, lid = _s(p, "Uniqueid"), _s(p, "Linkedid")
        lid = lid or uid
        if lid.startswith("cti-lt-") or lid in self.line_tests:
            return  # our line test's outbound leg (ChannelId cti-lt-N), or more of a test call
        self.channels[uid] = lid
        c = self.f.calls.get(lid)
        if c is None:
            c = self.f.calls[lid] = CallFact(linkedid=lid, started_at=ts)
        if lid not in self.live_calls:  # new, or a new leg of a call we thought over (it is not)
            self.live_calls[lid] = c
            c.ended_at = None
        if uid == lid:
            c.caller_uniqueid = uid
            c.caller_num = _s(p, "CallerIDNum")
            c.did = c.did or _s(p, "Exten")

    def _call(self, p: Mapping[str, Any]) -> CallFact | None:
        lid = _s(p, "Linkedid") or self.channels.get(_s(p, "Uniqueid"), "")
        return self.live_calls.get(lid)

    def on_VarSet(self, ts: float, p: Mapping[str, Any]) -> None:
        var = _s(p, "Variable")
        if var == "CTI_LINETEST":  # the route AGI saw our own line test come back: not a call to count
            c = self._call(p)
            if c is not None:
                self.line_tests.add(c.linkedid)
                self.f.calls.pop(c.linkedid, None)
                del self.live_calls[c.linkedid]
                for u in [u for u, lid in self.channels.items() if lid == c.linkedid]:
                    del self.channels[u]
            return
        if var in ("__CTI_DNIS", "CTI_DNIS", "CTI_DID"):  # CTI_DID: a callback Originate's presented DID
            c = self._call(p)
            if c is not None and _s(p, "Value"):
                c.did = _s(p, "Value")
        elif var == "CTI_QUEUE":
            c = self._call(p)
            if c is not None and _s(p, "Value"):
                self.cti_queue[c.linkedid] = _s(p, "Value")
        elif var in _RECORDING_VARS:
            c = self._call(p)
            if c is not None and _s(p, "Value"):
                c.recording_file = _s(p, "Value")

    def on_MixMonitorStart(self, ts: float, p: Mapping[str, Any]) -> None:
        c = self._call(p)
        if c is not None and _s(p, "File"):
            c.recording_file = _s(p, "File")

    def on_QueueCallerJoin(self, ts: float, p: Mapping[str, Any]) -> None:
        c = self._call(p)
        if c is None:
            return
        c.queue = _s(p, "Queue")
        c.offered_at = ts
        q = c.queue
        c.agents_logged_in = sum(1 for (queue, _i2) in self.sessions if queue == q)

    def on_AgentCalled(self, ts: float, p: Mapping[str, Any]) -> None:
        c = self._call(p)
        if c is None:
            return
        known = self.rings.get(_s(p, "DestUniqueid"))
        if known is not None:  # its DialBegin came first: the queue names the member
            known.agent, known.queue = _s(p, "MemberName") or known.agent, _s(p, "Queue") or None
            known.started_at = min(known.started_at, ts)
            return
        r = Ring(
            linkedid=c.linkedid,
            agent=_s(p, "MemberName"),
            queue=_s(p, "Queue") or None,
            agent_uniqueid=_s(p, "DestUniqueid"),
            started_at=ts,
        )
        self.rings[r.agent_uniqueid] = r
        self.f.rings.append(r)

    def _end_ring(self, uid: str, ts: float, outcome: str) -> Ring | None:
        """Several events end one ring (AgentRingNoAnswer, two DialEnds, the leg's Hangup) and they
        come on different channels, so in any order: the most specific outcome wins, with its time."""
        r = self.rings.get(uid)
        if r is None:
            return None
        new, old = _RANK.get(outcome, 3), _RANK.get(r.outcome or "", 0)
        if new > old or (new == old and r.ended_at is not None and ts < r.ended_at):
            r.ended_at, r.outcome = ts, outcome
        return r

    def on_AgentRingNoAnswer(self, ts: float, p: Mapping[str, Any]) -> None:
        self._end_ring(_s(p, "DestUniqueid"), ts, "no_answer")
        lid = _s(p, "Linkedid")
        self.f.ring_no_answer.append(
            RingNoAnswer(lid, _s(p, "MemberName"), _s(p, "Queue"), ts, _i(p, "RingTime") or 0)
        )

    def on_DialBegin(self, ts: float, p: Mapping[str, Any]) -> None:
        """The inbound caller's channel dialing an agent: queue legs (AgentCalled names them too) and a
        Dial outside the queue (captures 12, 13), whose only trace this is."""
        c = self._call(p)
        uid, dest = _s(p, "Uniqueid"), _s(p, "DestUniqueid")
        if c is None or not uid or uid != c.caller_uniqueid or c.linkedid.startswith("cti-"):
            return  # not an inbound caller (our callbacks dial the customer from the agent's channel)
        if dest in self.rings:
            return
        agent = _endpoint(_s(p, "DestChannel")) or _s(p, "DialString")
        r = Ring(linkedid=c.linkedid, agent=agent, queue=None, agent_uniqueid=dest, started_at=ts)
        self.rings[dest] = r
        self.f.rings.append(r)

    def on_DialEnd(self, ts: float, p: Mapping[str, Any]) -> None:
        status = _s(p, "DialStatus")
        dest = _s(p, "DestUniqueid")
        r = self.rings.get(dest)
        if r is not None and r.queue is None and status in ("ANSWER", "NOANSWER"):
            self._dial_outside_queue(ts, r, status, p)
            return
        if status and status != "ANSWER":  # the answer is AgentConnect's (it names the member)
            self._end_ring(dest, ts, "no_answer" if status == "NOANSWER" else status.lower())

    def _dial_outside_queue(self, ts: float, r: Ring, status: str, p: Mapping[str, Any]) -> None:
        c = self.live_calls.get(r.linkedid)
        if status == "NOANSWER":
            self._end_ring(r.agent_uniqueid, ts, "no_answer")
            queue = self.cti_queue.get(r.linkedid, "")
            ring_ms = round((ts - r.started_at) * 1000)
            self.f.ring_no_answer.append(RingNoAnswer(r.linkedid, r.agent, queue, ts, ring_ms))
            return
        self._end_ring(r.agent_uniqueid, ts, "answered")
        if c is None or c.answered_by is not None:
            return
        c.answered_by, c.answered_at = r.agent, ts
        c.time_to_answer_s = ts - c.started_at
        c.hold_s = ts - (c.offered_at if c.offered_at is not None else r.started_at)
        c.rings_to_answer = self.ring.rings_at(ts - r.started_at)

    def on_AgentConnect(self, ts: float, p: Mapping[str, Any]) -> None:
        r = self._end_ring(_s(p, "DestUniqueid"), ts, "answered")
        c = self._call(p)
        if c is None:
            return
        c.answered_by = _s(p, "MemberName")
        c.answered_at = ts
        c.time_to_answer_s = ts - c.started_at
        if c.offered_at is not None:
            c.hold_s = ts - c.offered_at
        if r is not None:
            c.rings_to_answer = self.ring.rings_at(ts - r.started_at)
        for k in ("HoldTime", "RingTime"):
            v = _i(p, k)
            if v is not None:
                c.asterisk["connect_" + k] = v

    def on_AgentComplete(self, ts: float, p: Mapping[str, Any]) -> None:
        c = self._call(p)
        if c is None:
            return
        reason = _s(p, "Reason")
        self.completed.add(c.linkedid)
        c.hung_up_first = reason or None
        c.talk_ended_at = ts
        if c.answered_at is not None:
            c.talk_s = ts - c.answered_at
        for k in ("HoldTime", "TalkTime"):
            v = _i(p, k)
            if v is not None:
                c.asterisk["complete_" + k] = v

    def on_QueueCallerLeave(self, ts: float, p: Mapping[str, Any]) -> None:
        c = self._call(p)
        if c is not None:
            c.left_queue_at = ts

    def on_QueueCallerAbandon(self, ts: float, p: Mapping[str, Any]) -> None:
        c = self._call(p)
        if c is None:
            return
        c.abandoned = True
        c.left_queue_at = ts
        c.abandon_position = _i(p, "Position")
        c.abandon_wait_s = ts - c.offered_at if c.offered_at is not None else None
        v = _i(p, "HoldTime")
        if v is not None:
            c.asterisk["abandon_HoldTime"] = v
        c.hold_s = c.abandon_wait_s

    def on_Hangup(self, ts: float, p: Mapping[str, Any]) -> None:
        uid = _s(p, "Uniqueid")
        self._end_ring(uid, ts, "hangup")
        lid = self.channels.pop(uid, None)
        if lid is None:
            return
        c = self.live_calls.get(lid)
        if c is None:
            return
        if c.answered_at is not None and lid not in self.completed:
            # no AgentComplete (yet): the earliest leg hangup ends the talk; AgentComplete overrides
            if c.talk_ended_at is None or ts < c.talk_ended_at:
                c.talk_ended_at = ts
                c.talk_s = ts - c.answered_at
                c.hung_up_first = "caller" if uid == c.caller_uniqueid else "agent"
        last = self.last_hangup[lid] = max(ts, self.last_hangup.get(lid, ts))
        if not any(v == lid for v in self.channels.values()):
            c.ended_at = last  # the latest hangup, whatever order the legs' Hangups arrived in
            self.cti_queue.pop(lid, None)
            del self.live_calls[lid]
            del self.last_hangup[lid]
            self.completed.discard(lid)
            for u in [u for u, r in self.rings.items() if r.linkedid == lid]:
                del self.rings[u]

    def on_resync(self, ts: float, p: Mapping[str, Any]) -> None:
        # events may be missing around a reconnect: flag what was live, and close what the
        # snapshot shows is gone (a call we still think is live but Asterisk no longer has)
        live_uids = {_s(m, "Uniqueid") for m in p.get("CoreShowChannels", ())}
        for lid, c in list(self.live_calls.items()):
            c.gap = True
            if not any(u in live_uids for u, v in self.channels.items() if v == lid):
                c.ended_at = ts
                del self.live_calls[lid]
                self.last_hangup.pop(lid, None)
                self.completed.discard(lid)
                for u in [u for u, r in self.rings.items() if r.linkedid == lid]:
                    del self.rings[u]
                for u in [u for u, v in self.channels.items() if v == lid]:
                    del self.channels[u]
        members = {(_s(m, "Queue"), _s(m, "Location")): m for m in p.get("QueueStatus", ())
                   if _s(m, "Event") == "QueueMember"}  # fmt: skip
        for key, pause in list(self.pauses.items()):
            m = members.get(key)
            if m is None or _s(m, "Paused") != "1":
                pause.ended_at = ts
                del self.pauses[key]
        for key, s in list(self.sessions.items()):
            if key not in members:
                s.logout_at = ts
                del self.sessions[key]
        for key, m in members.items():
            if key not in self.sessions:
                # logged in before our window: counted as logged in, but its session row belongs to
                # the window that saw its QueueMemberAdded, so none is emitted here
                self.sessions[key] = Session(_s(m, "Name"), key[0], key[1], float(_i(m, "LoginTime") or ts))

    # ---- agents ----------------------------------------------------------------------
    def on_QueueMemberAdded(self, ts: float, p: Mapping[str, Any]) -> None:
        key = (_s(p, "Queue"), _s(p, "Interface"))
        if key in self.sessions:
            return
        s = Session(_s(p, "MemberName"), key[0], key[1], ts)
        self.sessions[key] = s
        self.f.sessions.append(s)
        self._pause_state(ts, p)

    def on_QueueMemberRemoved(self, ts: float, p: Mapping[str, Any]) -> None:
        key = (_s(p, "Queue"), _s(p, "Interface"))
        s = self.sessions.pop(key, None)
        if s is not None:
            s.logout_at = ts
        pz = self.pauses.pop(key, None)
        if pz is not None:
            pz.ended_at = ts

    def _pause_state(self, ts: float, p: Mapping[str, Any]) -> None:
        key = (_s(p, "Queue"), _s(p, "Interface"))
        paused = _s(p, "Paused") == "1"
        open_ = self.pauses.get(key)
        if paused and open_ is None:
            pz = Pause(_s(p, "MemberName"), key[0], _s(p, "PausedReason"), ts)
            self.pauses[key] = pz
            self.f.pauses.append(pz)
        elif paused and open_ is not None and open_.reason != _s(p, "PausedReason"):
            open_.ended_at = ts  # re-paused with another reason: a new pause starts now
            pz = Pause(_s(p, "MemberName"), key[0], _s(p, "PausedReason"), ts)
            self.pauses[key] = pz
            self.f.pauses.append(pz)
        elif not paused and open_ is not None:
            open_.ended_at = ts
            del self.pauses[key]

    def on_QueueMemberPause(self, ts: float, p: Mapping[str, Any]) -> None:
        self._pause_state(ts, p)

    def on_QueueMemberStatus(self, ts: float, p: Mapping[str, Any]) -> None:
        if "Paused" in p:
            self._pause_state(ts, p)


def derive(events: Iterable[tuple[datetime | float, str, Mapping[str, Any]]], ring: RingCadence) -> Facts:
    """Facts from (ts, type, payload) in log order."""
    d = Deriver(ring)
    for ts, typ, payload in events:
        d.feed(_epoch(ts), typ, payload)
    return d.f


def to_dt(t: float | None) -> datetime | None:
    return None if t is None else datetime.fromtimestamp(t, UTC)

"""The simulated PBX: channels, dialplan, app_queue, Originate, MixMonitor, driven by a virtual-time
scheduler. Everything here is synchronous and deterministic for a seed; the only I/O (FastAGI) is run
by the Simulator, which parks the call until the AGI session ends.

Event sequences per channel follow asterisk-captures 01-10 (see the package docstring for what is
deliberately left out).
"""

from __future__ import annotations

import heapq
import itertools
import math
import os
import random
import uuid
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cti.sim.model import (
    CAUSE_TXT,
    DEVICE_NAME,
    DOWN,
    NOT_INUSE,
    RING,
    RINGING,
    UP,
    Bridge,
    Channel,
    Endpoint,
    Member,
    Pairs,
)
from cti.sim.scenario import AgentProfile, QueueConfig, Scenario


@dataclass(slots=True)
class Event:
    """A broadcast AMI event. `data` (the encoded frame) is built once by the AMI server."""

    name: str
    cls: str
    ts: float
    pairs: Pairs
    channel: str = ""
    data: bytes = b""


@dataclass(order=True)
class Timer:
    t: float
    seq: int
    fn: Callable[..., None] = field(compare=False)
    args: tuple[Any, ...] = field(compare=False, default=())
    cancelled: bool = field(compare=False, default=False)

    def cancel(self) -> None:
        self.cancelled = True


@dataclass(eq=False)
class CallSpec:
    """One inbound call as the caller experiences it."""

    caller: str
    did: str
    name: str = ""
    patience: float = 120.0
    dtmf: list[str] = field(default_factory=list)
    talk_time: float | None = None  # None: from the answering agent's profile
    hangup_first: str | None = None  # 'caller' | 'agent' | None (agent profile decides)
    message_s: float = 5.0
    ivr_hangup_after: int | None = None  # the caller hangs up after this many FastAGI commands


@dataclass(eq=False)
class QueueEntry:
    call: InboundCall
    queue: Queue
    joined: float
    original_position: int
    legs: list[RingLeg] = field(default_factory=list)
    retry_timer: Timer | None = None
    waiting_retry: bool = False


@dataclass(eq=False)
class RingLeg:
    entry: QueueEntry | None
    member: Member | None
    endpoint: Endpoint
    channel: Channel
    started: float
    timers: list[Timer] = field(default_factory=list)
    done: bool = False


@dataclass(eq=False)
class Queue:
    cfg: QueueConfig
    members: dict[str, Member] = field(default_factory=dict)
    entries: list[QueueEntry] = field(default_factory=list)
    rr_last: int = -1
    free: set[Member] = field(default_factory=set)
    avail_dev: str = ""
    dev: str = "NOT_INUSE"
    completed: int = 0
    abandoned: int = 0
    connected: int = 0
    hold_total: float = 0.0
    talk_total: float = 0.0
    in_sl: int = 0

    @property
    def name(self) -> str:
        return self.cfg.name


@dataclass
class Stats:
    offered: int = 0
    answered: int = 0
    answered_two_rings: int = 0
    abandoned: int = 0
    timed_out: int = 0
    night: int = 0
    callback_offer: int = 0
    hangup_route: int = 0
    max_concurrent_calls: int = 0
    events: int = 0
    wait_total: float = 0.0  # seconds from queue/Dial entry to answer, over answered calls
    max_wait: float = 0.0
    joinempty: int = 0
    ivr_hangups: int = 0


class Engine:
    def __init__(
        self,
        scenario: Scenario,
        *,
        start: float,
        seed: int | None = None,
        agi_url: str = "agi://127.0.0.1:4573",
        ring_cycle_s: float = 5.0,
    ) -> None:
        self.scenario = scenario
        self.now = start
        self.rng = random.Random(scenario.seed if seed is None else seed)
        # own stream: when phones get qualified must not shift who calls or how agents behave
        self.qualify_rng = random.Random((scenario.seed if seed is None else seed) + 19)
        self.agi_url = agi_url.rstrip("/")
        self.ring_cycle_s = ring_cycle_s
        self._heap: list[Timer] = []
        self._seq = itertools.count()
        self._uid = itertools.count()
        self._chan_idx: dict[str, itertools.count[int]] = {}
        self.sinks: list[Callable[[Event], None]] = []
        self.channels: dict[str, Channel] = {}
        self.endpoints: dict[str, Endpoint] = {}
        self.queues: dict[str, Queue] = {q.name: Queue(q) for q in scenario.queues}
        self.globals: dict[str, str] = {}
        self.by_state_iface: dict[str, list[Member]] = {}
        self.profiles: dict[str, AgentProfile] = {}
        self.stats = Stats()
        # The truth about every inbound call once it ended, for checks that must not trust the CTI
        # (a call that begins and ends while the CTI is down is in no event log but this one).
        self.write_audio = True
        self.ledger: list[dict[str, Any]] = []
        self.on_call_record: Callable[[dict[str, Any]], None] | None = None  # e.g. the CDR writer
        self.calls_active = 0
        self.processed_calls = 0
        self.start_time = start
        # AGI requests waiting for the Simulator: (call, script) -> the Simulator runs them.
        self.agi_requests: list[tuple[InboundCall, str]] = []
        self.on_agi_request: Callable[[], None] | None = None
        self.endpoints["trunk"] = Endpoint("trunk", "trunk", registered=True)
        self.endpoints["pstn"] = Endpoint("pstn", "pstn", registered=True)
        # Outcomes for customers dialled by callbacks: number -> ('answer'|'noanswer'|'busy'|'congestion', s)
        self.customer_outcomes: dict[str, tuple[str, float, float | None]] = {}
        self.default_customer: tuple[str, float, float | None] = ("answer", 3.0, 20.0)
        for a in scenario.agents:
            self.add_endpoint(a.id, a.name, registered=False)
            self.profiles[a.id] = scenario.agent_profiles.get(a.profile, AgentProfile())
        # test control: agent id -> answer mode ('auto' | 'never' | 'manual') and fixed delays
        self.answer_mode: dict[str, str] = {}
        self.answer_delay_override: dict[str, float] = {}

    # ------------------------------------------------------------------ scheduler
    def at(self, t: float, fn: Callable[..., None], *args: Any) -> Timer:
        tm = Timer(max(t, self.now), next(self._seq), fn, args)
        heapq.heappush(self._heap, tm)
        return tm

    def after(self, delay: float, fn: Callable[..., None], *args: Any) -> Timer:
        return self.at(self.now + max(0.0, delay), fn, *args)

    def next_time(self) -> float:
        while self._heap and self._heap[0].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0].t if self._heap else math.inf

    def run_next(self) -> None:
        tm = heapq.heappop(self._heap)
        if tm.cancelled:
            return
        if tm.t > self.now:
            self.now = tm.t
        tm.fn(*tm.args)

    # ------------------------------------------------------------------ ids and events
    def emit(self, name: str, cls: str, pairs: Pairs, channel: str = "") -> None:
        ev = Event(name, cls, self.now, pairs, channel)
        self.stats.events += 1
        for s in self.sinks:
            s(ev)

    def new_uniqueid(self) -> str:
        return f"{int(self.now)}.{next(self._uid)}"

    def bridge_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def new_channel(
        self,
        tech: str,
        endpoint: str,
        *,
        linkedid: str | None = None,
        uniqueid: str | None = None,
        context: str = "",
        exten: str = "s",
        cid: tuple[str, str] = ("<unknown>", "<unknown>"),
        name: str | None = None,
        state: int = DOWN,
    ) -> Channel:
        counter = self._chan_idx.setdefault(tech, itertools.count())
        idx = next(counter)
        uid = self.new_uniqueid()
        if uniqueid is not None:
            uid = uniqueid
        ch = Channel(
            name=name or f"{tech}/{endpoint}-{idx:08x}",
            tech=tech,
            endpoint=endpoint,
            uniqueid=uid,
            linkedid=linkedid or uid,
            created=self.now,
            cid_num=cid[0],
            cid_name=cid[1],
            context=context,
            exten=exten,
            state=state,
        )
        self.channels[ch.name] = ch
        ep = self.endpoints.get(endpoint)
        if ep is not None:
            ep.channels.append(ch)
        self.emit("Newchannel", "call", ch.snapshot(), ch.name)
        return ch

    def set_state(self, ch: Channel, state: int) -> None:
        ch.state = state
        if state == UP and ch.answered_at is None:
            ch.answered_at = self.now
        self.emit("Newstate", "call", ch.snapshot(), ch.name)

    def newexten(self, ch: Channel, priority: int, app: str, data: str) -> None:
        ch.priority = priority
        ch.app, ch.appdata = app, data
        self.emit(
            "Newexten",
            "dialplan",
            [*ch.snapshot(), ("Extension", ch.exten), ("Application", app), ("AppData", data)],
            ch.name,
        )

    def varset(self, ch: Channel, var: str, value: str) -> None:
        ch.vars[var.lstrip("_")] = value
        self.emit("VarSet", "dialplan", [*ch.snapshot(), ("Variable", var), ("Value", value)], ch.name)

    def set_callerid(self, ch: Channel, num: str | None = None, name: str | None = None) -> None:
        if num is not None:
            ch.cid_num = num or "<unknown>"
        if name is not None:
            ch.cid_name = name or "<unknown>"
        self.emit(
            "NewCallerid",
            "call",
            [*ch.snapshot(), ("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")],
            ch.name,
        )

    def set_connected(self, ch: Channel, num: str, name: str) -> None:
        ch.conn_num, ch.conn_name = num or "<unknown>", name or "<unknown>"
        self.emit("NewConnectedLine", "call", ch.snapshot(), ch.name)

    def dial_event(self, name: str, src: Channel | None, dst: Channel, extra: Pairs) -> None:
        pairs = (src.snapshot() if src else []) + dst.snapshot("Dest") + extra
        self.emit(name, "call", pairs, src.name if src else dst.name)

    def device_changed(self, ep: Endpoint) -> None:
        st = ep.device_state()
        name = DEVICE_NAME[st]
        if name != ep.last_state:
            ep.last_state = name
            self.emit("DeviceStateChange", "call", [("Device", f"PJSIP/{ep.id}"), ("State", name)])
        self.members_changed(f"PJSIP/{ep.id}")

    def member_status(self, m: Member) -> int:
        ep = self.endpoints.get(m.state_interface.partition("/")[2])
        if ep is None:
            return 5
        st = ep.device_state()
        return st

    def members_changed(self, state_interface: str) -> None:
        for m in self.by_state_iface.get(state_interface, ()):
            self.emit_member_status(m)

    def _refresh_free(self, m: Member, st: int) -> None:
        """Track members that could take a call: a hint that saves scanning a busy queue."""
        q = self.queues.get(m.queue)
        if q is None:
            return
        if (
            st == NOT_INUSE
            and not m.paused
            and not m.ringing
            and not m.in_call
            and q.members.get(m.interface) is m
        ):
            q.free.add(m)
        else:
            q.free.discard(m)

    def emit_member_status(self, m: Member, force: bool = False) -> None:
        st = self.member_status(m)
        self._refresh_free(m, st)
        key = (st, m.paused, m.in_call, m.calls_taken, m.paused_reason)
        if key != m.last_emitted or force:
            m.last_emitted = key
            self.emit("QueueMemberStatus", "agent", m.event_fields(st))
        self._queue_devices(m.queue)

    def member_event(self, name: str, m: Member) -> None:
        st = self.member_status(m)
        self._refresh_free(m, st)
        m.last_emitted = (st, m.paused, m.in_call, m.calls_taken, m.paused_reason)
        pause_dev = "INUSE" if m.paused else "NOT_INUSE"
        if name != "QueueMemberRemoved" and pause_dev != m.pause_dev:
            m.pause_dev = pause_dev
            self.emit(
                "DeviceStateChange",
                "call",
                [("Device", f"Queue:{m.queue}_pause_{m.interface}"), ("State", pause_dev)],
            )
        self.emit(name, "agent", m.event_fields(st))
        self._queue_devices(m.queue)

    def _queue_devices(self, qname: str) -> None:
        """Queue:<q>_avail is NOT_INUSE while some member could take a call (captures 01-03)."""
        q = self.queues.get(qname)
        if q is None:
            return
        avail = "NOT_INUSE" if q.free else "INUSE"
        if avail != q.avail_dev and (q.members or q.avail_dev):
            q.avail_dev = avail
            self.emit("DeviceStateChange", "call", [("Device", f"Queue:{q.name}_avail"), ("State", avail)])

    def _queue_callers_device(self, q: Queue) -> None:
        """Queue:<q> is RINGING while callers wait, NOT_INUSE when the last one leaves."""
        dev = "RINGING" if q.entries else "NOT_INUSE"
        if dev != q.dev:
            q.dev = dev
            self.emit("DeviceStateChange", "call", [("Device", f"Queue:{q.name}"), ("State", dev)])

    def hangup(
        self,
        ch: Channel,
        cause: int,
        *,
        request: bool | None = None,
        soft: bool = False,
        tech_cause: int | None = None,
    ) -> None:
        if ch.hungup:
            return
        if request:
            self.emit(
                "HangupRequest", "call", ch.snapshot() + ([("Cause", str(cause))] if cause else []), ch.name
            )
        if soft:
            self.emit("SoftHangupRequest", "call", [*ch.snapshot(), ("Cause", "16")], ch.name)
        ch.hungup = True
        if ch.recording is not None:
            self.finish_recording(ch, stopped=False)
        extra: Pairs = [("Cause", str(cause)), ("Cause-txt", CAUSE_TXT.get(cause, "Unknown"))]
        if tech_cause is not None:
            extra.append(("TechCause", str(tech_cause)))
        self.emit("Hangup", "call", ch.snapshot() + extra, ch.name)
        self.channels.pop(ch.name, None)
        ep = self.endpoints.get(ch.endpoint)
        if ep is not None and ch in ep.channels:
            ep.channels.remove(ch)
            self.device_changed(ep)

    # ------------------------------------------------------------------ bridges
    def bridge(self, a: Channel, b: Channel) -> Bridge:
        br = Bridge(self.bridge_id())
        self.emit("BridgeCreate", "call", br.header())
        for ch in (a, b):
            br.channels.append(ch)
            ch.bridge = br
            self.emit("BridgeEnter", "call", br.header() + ch.snapshot(), ch.name)
        return br

    def bridge_leave(self, ch: Channel) -> None:
        br = ch.bridge
        if br is None:
            return
        br.channels.remove(ch)
        ch.bridge = None
        self.emit("BridgeLeave", "call", br.header() + ch.snapshot(), ch.name)

    def bridge_destroy(self, br: Bridge) -> None:
        self.emit("BridgeDestroy", "call", br.header())

    # ------------------------------------------------------------------ agents / endpoints
    def add_endpoint(self, ep_id: str, display: str, registered: bool = True) -> Endpoint:
        ep = self.endpoints.get(ep_id)
        if ep is None:
            ep = Endpoint(ep_id, display, registered=registered)
            ep.last_state = DEVICE_NAME[ep.device_state()]
            self.endpoints[ep_id] = ep
        return ep

    def register(self, ep_id: str, registered: bool = True) -> None:
        """A phone registers or unregisters. With qualify on (scenario qualify_frequency_s, 30 s like
        pjsip.conf) a REGISTER shows nothing on AMI and the contact stays UNAVAILABLE until its first
        OPTIONS round trip, some time within qualify_frequency (capture 19: 4.5 s; capture 17: 4 s and
        22 s). With qualify off it is reachable at once: PeerStatus Reachable, ContactStatus
        NonQualified (capture 10). Unregister: Unreachable / Removed (capture 10)."""
        ep = self.endpoints.get(ep_id)
        if ep is None:
            raise KeyError(f"unknown endpoint {ep_id!r}")
        if ep.registered == registered:
            return
        ep.registered = registered
        ep.contact = ep.contact or f"sip:{ep_id}@127.0.0.1:5060"
        ep.qualify_gen += 1
        freq = self.scenario.qualify_frequency_s
        if registered and freq > 0:
            ep.qualified = False
            self.after(self.qualify_rng.uniform(0.5, freq), self._qualify_timer, ep, ep.qualify_gen)
            return
        ep.qualified = registered
        self.emit(
            "PeerStatus",
            "system",
            [
                ("ChannelType", "PJSIP"),
                ("Peer", f"PJSIP/{ep_id}"),
                ("PeerStatus", "Reachable" if registered else "Unreachable"),
            ],
        )
        self.device_changed(ep)
        self.emit(
            "ContactStatus",
            "system",
            [
                ("URI", ep.contact),
                ("ContactStatus", "NonQualified" if registered else "Removed"),
                ("AOR", ep_id),
                ("EndpointName", ep_id),
                ("RoundtripUsec", "0"),
            ],
        )
        if registered:
            self.dispatch_all()

    def _qualify_timer(self, ep: Endpoint, gen: int) -> None:
        if gen == ep.qualify_gen:
            self.qualify(ep)

    def qualify(self, ep: Endpoint) -> None:
        """An OPTIONS round trip answered: a registered, not yet qualified contact becomes reachable.
        Frames and order as capture 17 (PJSIPQualify): PeerStatus Reachable, ContactStatus Reachable
        with RoundtripUsec, DeviceStateChange, QueueMemberStatus Status 1, Queue:<q>_avail."""
        if not ep.registered or ep.qualified:
            return  # no contact to ask, or nothing changes (PJSIP reports changes only)
        ep.qualified = True
        self.emit(
            "PeerStatus",
            "system",
            [("ChannelType", "PJSIP"), ("Peer", f"PJSIP/{ep.id}"), ("PeerStatus", "Reachable")],
        )
        self.emit(
            "ContactStatus",
            "system",
            [
                ("URI", ep.contact),
                ("ContactStatus", "Reachable"),
                ("AOR", ep.id),
                ("EndpointName", ep.id),
                ("RoundtripUsec", str(self.qualify_rng.randint(300, 700))),
            ],
        )
        self.device_changed(ep)
        self.dispatch_all()

    def pjsip_qualify(self, ep_id: str) -> str | None:
        """AMI PJSIPQualify `Endpoint: <id>`: reply "Endpoint found, will qualify" (capture 17), then
        the round trip. The error text for an unknown endpoint is res_pjsip's, not captured."""
        ep = self.endpoints.get(ep_id)
        if ep is None:
            return "Unable to retrieve endpoint " + ep_id
        self.after(0, self.qualify, ep)
        return None

    def restart(self) -> None:
        """What `core restart now` leaves behind (capture 17), once every channel is gone: dynamic
        queue members are forgotten (persistentmembers = no), queue statistics start at zero, PJSIP
        contacts persist (astdb) but are UNAVAILABLE until re-qualified within qualify_frequency."""
        for q in self.queues.values():
            q.members.clear()
            q.entries.clear()
            q.free.clear()
            q.rr_last = -1
            q.avail_dev = ""
            q.completed = q.abandoned = q.connected = q.in_sl = 0
            q.hold_total = q.talk_total = 0.0
        self.by_state_iface.clear()
        self.start_time = self.now
        freq = self.scenario.qualify_frequency_s
        for ep in self.endpoints.values():
            if ep.id in ("trunk", "pstn") or not ep.registered or freq <= 0:
                continue
            ep.qualify_gen += 1
            ep.qualified = False
            ep.last_state = DEVICE_NAME[ep.device_state()]
            self.after(self.qualify_rng.uniform(0.5, freq), self._qualify_timer, ep, ep.qualify_gen)

    def profile(self, ep_id: str) -> AgentProfile:
        return self.profiles.get(ep_id) or self.scenario.agent_profiles.get("default") or AgentProfile()

    # ------------------------------------------------------------------ queue membership (AMI side)
    def queue_add(
        self,
        qname: str,
        interface: str,
        *,
        penalty: int = 0,
        paused: bool = False,
        reason: str = "",
        member_name: str = "",
        state_interface: str = "",
    ) -> str | None:
        q = self.queues.get(qname)
        if q is None:
            return "Unable to add interface to queue: No such queue"
        if interface in q.members:
            return "Unable to add interface: Already there"
        now_s = int(self.now)
        m = Member(
            qname,
            member_name or interface,
            interface,
            state_interface or interface,
            penalty=penalty,
            paused=paused,
            paused_reason=reason if paused else "",
            login_time=now_s,
            last_pause=now_s if paused else 0,
        )
        q.members[interface] = m
        self.by_state_iface.setdefault(m.state_interface, []).append(m)
        ep = m.state_interface.partition("/")[2]
        if ep not in self.endpoints and m.state_interface.startswith("PJSIP/"):
            self.add_endpoint(ep, ep, registered=False)
        self.member_event("QueueMemberAdded", m)
        self.after(0, self.dispatch, q)
        return None

    def queue_remove(self, qname: str, interface: str) -> str | None:
        q = self.queues.get(qname)
        if q is None:
            return "Unable to remove interface from queue: No such queue"
        m = q.members.pop(interface, None)
        if m is None:
            return "Unable to remove interface: Not there"
        self.by_state_iface[m.state_interface].remove(m)
        q.free.discard(m)
        self.member_event("QueueMemberRemoved", m)
        if not q.members and q.cfg.leavewhenempty:
            for e in list(q.entries):
                self.queue_exit(e, "LEAVEEMPTY")
        return None

    def queue_pause(self, qname: str | None, interface: str, paused: bool, reason: str = "") -> str | None:
        found = [
            q.members[interface]
            for q in self.queues.values()
            if (qname is None or q.name == qname) and interface in q.members
        ]
        if not found:
            return "Interface not found"
        for m in found:
            self.pause_member(m, paused, reason)
        return None

    def pause_member(self, m: Member, paused: bool, reason: str = "") -> None:
        m.paused = paused
        m.paused_reason = reason if paused else ""
        if paused:
            m.last_pause = int(self.now)
        self.member_event("QueueMemberPause", m)
        if not paused:
            self.after(0, self.dispatch, self.queues[m.queue])

    def queue_penalty(self, qname: str | None, interface: str, penalty: int) -> str | None:
        found = [
            q.members[interface]
            for q in self.queues.values()
            if (qname is None or q.name == qname) and interface in q.members
        ]
        if not found:
            return "Invalid interface, queuename or penalty"
        for m in found:
            m.penalty = penalty
            self.member_event("QueueMemberPenalty", m)
        return None

    # ------------------------------------------------------------------ inbound calls
    def place_call(self, spec: CallSpec) -> InboundCall:
        call = InboundCall(self, spec)
        call.start()
        return call

    def call_started(self) -> None:
        self.calls_active += 1
        self.stats.max_concurrent_calls = max(self.stats.max_concurrent_calls, self.calls_active)

    def call_ended(self) -> None:
        self.calls_active -= 1
        self.processed_calls += 1

    def request_agi(self, call: InboundCall, script: str) -> None:
        self.agi_requests.append((call, script))
        if self.on_agi_request is not None:
            self.on_agi_request()

    # ------------------------------------------------------------------ app_queue
    def queue_join(self, call: InboundCall, q: Queue) -> None:
        ch = call.caller
        if not q.cfg.joinempty and not any(self._usable(m) for m in q.members.values()):
            self.stats.joinempty += 1
            call.queue_done("JOINEMPTY")
            return
        if q.cfg.maxlen and len(q.entries) >= q.cfg.maxlen:
            call.queue_done("FULL")
            return
        entry = QueueEntry(call, q, self.now, len(q.entries) + 1)
        q.entries.append(entry)
        call.entry = entry
        self._queue_callers_device(q)
        self.emit(
            "QueueCallerJoin",
            "agent",
            [
                *ch.snapshot(),
                ("Queue", q.name),
                ("Position", str(len(q.entries))),
                ("Count", str(len(q.entries))),
            ],
            ch.name,
        )
        self.emit("MusicOnHoldStart", "call", [*ch.snapshot(), ("Class", "default")], ch.name)
        call.timers.append(self.after(call.spec.patience, call.abandon))
        call.timers.append(self.after(q.cfg.max_wait, self.queue_exit, entry, "TIMEOUT"))
        self.dispatch(q)

    def _usable(self, m: Member) -> bool:
        """Logged in and reachable (for joinempty/leavewhenempty): not UNAVAILABLE."""
        return self.member_status(m) != 5

    def _available(self, m: Member) -> bool:
        return (
            not m.paused
            and not m.ringing
            and self.member_status(m) == NOT_INUSE
            and self.now >= m.wrapup_until
        )

    def dispatch_all(self) -> None:
        for q in self.queues.values():
            self.dispatch(q)

    def dispatch(self, q: Queue) -> None:
        """Ring members for waiting callers (autofill: every waiting caller that can be served)."""
        if not q.free or not q.entries or all(en.legs or en.waiting_retry for en in q.entries):
            return
        busy: set[int] = set()
        for entry in list(q.entries):
            if entry.legs or entry.waiting_retry:
                continue
            chosen = self._choose(q, busy)
            if not chosen:
                return
            for m in chosen:
                self.ring_member(entry, m)
                busy.add(id(m))

    def _choose(self, q: Queue, busy: set[int]) -> list[Member]:
        """Members to ring for one caller: lowest penalty level with someone available, then strategy.
        rrmemory/linear stop at the first available member instead of scanning the whole queue."""
        order = list(q.members.values())
        n = len(order)
        if not n:
            return []
        strat = q.cfg.strategy
        for level in sorted({m.penalty for m in order}):
            if strat in ("rrmemory", "linear"):
                start = q.rr_last + 1 if strat == "rrmemory" else 0
                for step in range(n):
                    idx = (start + step) % n
                    m = order[idx]
                    if m.penalty == level and id(m) not in busy and self._available(m):
                        if strat == "rrmemory":
                            q.rr_last = idx
                        return [m]
                continue
            cands = [m for m in order if m.penalty == level and id(m) not in busy and self._available(m)]
            if cands:
                return self._pick(q, cands)
        return []

    def _pick(self, q: Queue, cands: list[Member]) -> list[Member]:
        strat = q.cfg.strategy
        if strat == "ringall":
            return cands
        order = list(q.members.values())
        if strat == "rrmemory":
            n = len(order)
            for step in range(1, n + 1):
                idx = (q.rr_last + step) % n
                if order[idx] in cands:
                    q.rr_last = idx
                    return [order[idx]]
        if strat == "leastrecent":
            return [min(cands, key=lambda m: m.last_call)]
        if strat == "fewestcalls":
            return [min(cands, key=lambda m: m.calls_taken)]
        if strat == "random":
            return [self.rng.choice(cands)]
        return [cands[0]]

    def ring_member(self, entry: QueueEntry, m: Member) -> None:
        call = entry.call
        caller = call.caller
        ep_id = m.interface.partition("/")[2]
        ep = self.endpoints[ep_id]
        m.ringing = True
        ch = self.new_channel(
            "PJSIP", ep_id, linkedid=caller.linkedid, context="agents", exten="s", cid=(ep_id, ep.display)
        )
        ch.callee = True
        ch.call = call
        leg = RingLeg(entry, m, ep, ch, self.now)
        entry.legs.append(leg)
        masked = caller.vars.get("CTI_MASKED", "")
        if masked:  # the pre-dial handler on the agent leg (COMMON.md contract)
            ch.conn_num, ch.conn_name = masked, masked
            self.set_callerid(ch, masked, masked)
        else:
            ch.conn_num, ch.conn_name = caller.cid_num, caller.cid_name
        self.dial_event(
            "AgentCalled",
            caller,
            ch,
            [("Queue", entry.queue.name), ("Interface", m.interface), ("MemberName", m.name)],
        )
        self.dial_event("DialBegin", caller, ch, [("DialString", m.interface)])
        self.set_connected(caller, ep_id, ep.display)
        ch.state = RINGING
        self.emit("Newstate", "call", ch.snapshot(), ch.name)
        self.newexten(ch, 1, "AppQueue", "(Outgoing Line)")
        self.emit("NewConnectedLine", "call", ch.snapshot(), ch.name)
        self.dial_event("DialState", caller, ch, [("DialStatus", "RINGING")])
        self.device_changed(ep)
        self._schedule_answer(leg, entry.queue.cfg.timeout)

    def _schedule_answer(self, leg: RingLeg, timeout: float) -> None:
        ep_id = leg.endpoint.id
        leg.channel.leg = leg  # type: ignore[attr-defined]
        prof = self.profile(ep_id)
        mode = self.answer_mode.get(ep_id, "auto")
        if mode == "auto":
            if ep_id in self.answer_delay_override:
                delay = self.answer_delay_override[ep_id]
            elif self.rng.random() < prof.no_answer_chance:
                delay = math.inf
            else:
                delay = prof.answer_delay.sample(self.rng)
            if delay < timeout:
                leg.timers.append(self.after(delay, self.leg_answer, leg))
        leg.timers.append(self.after(timeout, self.leg_timeout, leg))

    def ringing_legs(self, ep_id: str) -> list[RingLeg]:
        ep = self.endpoints.get(ep_id)
        if ep is None:
            return []
        legs = [getattr(c, "leg", None) for c in ep.channels]
        return [leg for leg in legs if isinstance(leg, RingLeg) and not leg.done]

    def _end_leg(self, leg: RingLeg) -> None:
        leg.done = True
        for t in leg.timers:
            t.cancel()
        if leg.member is not None:
            leg.member.ringing = False
        if leg.entry is not None and leg in leg.entry.legs:
            leg.entry.legs.remove(leg)

    def leg_timeout(self, leg: RingLeg) -> None:
        if leg.done:
            return
        entry = leg.entry
        if entry is None:  # Dial() to a preferred agent
            leg.timers.clear()
            leg.channel.call.dial_noanswer(leg)
            return
        q = entry.queue
        caller = entry.call.caller
        m = leg.member
        assert m is not None
        self._end_leg(leg)
        self.dial_event(
            "AgentRingNoAnswer",
            caller,
            leg.channel,
            [
                ("Queue", q.name),
                ("Interface", m.interface),
                ("MemberName", m.name),
                ("RingTime", str(round((self.now - leg.started) * 1000))),
            ],
        )
        if q.cfg.autopause:
            m.paused, m.paused_reason, m.last_pause = True, "Auto-Pause", int(self.now)
            self.member_event("QueueMemberPause", m)
            delay = self.profile(leg.endpoint.id).unpause_after_autopause
            if delay > 0 and self.answer_mode.get(leg.endpoint.id, "auto") == "auto":
                self.after(delay, self._self_unpause, m)
        self.dial_event("DialEnd", caller, leg.channel, [("DialStatus", "NOANSWER")])
        self.dial_event("DialEnd", caller, leg.channel, [("DialStatus", "CANCEL")])
        self.hangup(leg.channel, 0)
        if not entry.legs:
            entry.waiting_retry = True
            entry.retry_timer = self.after(q.cfg.retry, self._retry, entry)

    def _self_unpause(self, m: Member) -> None:
        q = self.queues.get(m.queue)
        if q is not None and q.members.get(m.interface) is m and m.paused and m.paused_reason == "Auto-Pause":
            self.pause_member(m, False)

    def _retry(self, entry: QueueEntry) -> None:
        entry.waiting_retry = False
        if entry in entry.queue.entries:
            self.dispatch(entry.queue)

    def leg_answer(self, leg: RingLeg) -> None:
        if leg.done:
            return
        entry = leg.entry
        if entry is None:
            leg.channel.call.dial_answer(leg)
            return
        call = entry.call
        caller = call.caller
        q = entry.queue
        m = leg.member
        assert m is not None
        # cancel the other legs (ringall)
        for other in list(entry.legs):
            if other is not leg:
                self._end_leg(other)
                self.dial_event("DialEnd", caller, other.channel, [("DialStatus", "CANCEL")])
                self.hangup(other.channel, 0)
        self._end_leg(leg)
        for t in call.timers:
            t.cancel()
        ag = leg.channel
        ag.state = UP
        ag.answered_at = self.now
        ag.callee = False
        self.emit("Newstate", "call", ag.snapshot(), ag.name)
        self.dial_event("DialEnd", caller, ag, [("DialStatus", "ANSWER")])
        self.emit("MusicOnHoldStop", "call", caller.snapshot(), caller.name)
        self.varset(caller, "MEMBERINTERFACE", m.interface)
        self.varset(caller, "MEMBERNAME", m.name)
        pos = q.entries.index(entry) + 1
        q.entries.remove(entry)
        self._queue_callers_device(q)
        self.emit(
            "QueueCallerLeave",
            "agent",
            [*caller.snapshot(), ("Queue", q.name), ("Position", str(pos)), ("Count", str(len(q.entries)))],
            caller.name,
        )
        self.varset(caller, "QUEUEPOSITION", str(pos))
        hold = self.now - entry.joined
        ring = self.now - leg.started
        self.dial_event(
            "AgentConnect",
            caller,
            ag,
            [
                ("Queue", q.name),
                ("Interface", m.interface),
                ("MemberName", m.name),
                ("HoldTime", str(int(hold))),
                ("RingTime", str(int(ring))),
            ],
        )
        q.connected += 1
        q.hold_total += hold
        if hold <= q.cfg.servicelevel:
            q.in_sl += 1
        self.stats.answered += 1
        call.answered = True
        call.agent_channel = ag.name
        self.stats.wait_total += hold
        self.stats.max_wait = max(self.stats.max_wait, hold)
        if call.joined_queue_at is not None and self.now - call.joined_queue_at <= 2 * self.ring_cycle_s:
            self.stats.answered_two_rings += 1
        m.in_call = True
        self.device_changed(leg.endpoint)
        call.connected(ag, m, hold)

    def queue_exit(self, entry: QueueEntry, status: str) -> None:
        """The caller leaves the queue without an agent (timeout / leavewhenempty)."""
        q = entry.queue
        if entry not in q.entries:
            return
        call = entry.call
        self._cancel_legs(entry)
        pos = q.entries.index(entry) + 1
        q.entries.remove(entry)
        self._queue_callers_device(q)
        self.emit("MusicOnHoldStop", "call", call.caller.snapshot(), call.caller.name)
        self.emit(
            "QueueCallerLeave",
            "agent",
            [
                *call.caller.snapshot(),
                ("Queue", q.name),
                ("Position", str(pos)),
                ("Count", str(len(q.entries))),
            ],
            call.caller.name,
        )
        if status == "TIMEOUT":
            self.stats.timed_out += 1
        call.queue_done(status)

    def queue_exit_silent(self, entry: QueueEntry) -> None:
        """Leave the queue because of a Redirect (no QUEUESTATUS dialplan afterwards)."""
        q = entry.queue
        caller = entry.call.caller
        self._cancel_legs(entry)
        pos = q.entries.index(entry) + 1
        q.entries.remove(entry)
        self._queue_callers_device(q)
        self.emit("MusicOnHoldStop", "call", caller.snapshot(), caller.name)
        self.emit(
            "QueueCallerLeave",
            "agent",
            [*caller.snapshot(), ("Queue", q.name), ("Position", str(pos)), ("Count", str(len(q.entries)))],
            caller.name,
        )

    def _cancel_legs(self, entry: QueueEntry) -> None:
        caller = entry.call.caller
        for leg in list(entry.legs):
            self._end_leg(leg)
            self.dial_event("DialEnd", caller, leg.channel, [("DialStatus", "CANCEL")])
            self.hangup(leg.channel, 0)
        if entry.retry_timer is not None:
            entry.retry_timer.cancel()

    def queue_abandon(self, entry: QueueEntry) -> None:
        q = entry.queue
        caller = entry.call.caller
        self._cancel_legs(entry)
        pos = q.entries.index(entry) + 1
        self.emit("MusicOnHoldStop", "call", caller.snapshot(), caller.name)
        self.emit(
            "QueueCallerAbandon",
            "agent",
            [
                *caller.snapshot(),
                ("Queue", q.name),
                ("Position", str(pos)),
                ("OriginalPosition", str(entry.original_position)),
                ("HoldTime", str(int(self.now - entry.joined))),
            ],
            caller.name,
        )
        q.entries.remove(entry)
        self._queue_callers_device(q)
        q.abandoned += 1
        self.stats.abandoned += 1
        self.emit(
            "QueueCallerLeave",
            "agent",
            [*caller.snapshot(), ("Queue", q.name), ("Position", str(pos)), ("Count", str(len(q.entries)))],
            caller.name,
        )

    def member_call_done(self, m: Member | None, ep: Endpoint, q: Queue | None) -> None:
        if m is not None:
            m.in_call = False
            m.calls_taken += 1
            m.last_call = int(self.now)
            if q is not None:
                m.wrapup_until = self.now + q.cfg.wrapuptime
        self.device_changed(ep)
        prof = self.profile(ep.id)
        if (
            m is not None
            and prof.break_chance
            and self.answer_mode.get(ep.id, "auto") == "auto"
            and self.rng.random() < prof.break_chance
        ):
            self.after(1.0, self._take_break, m, prof.break_duration.sample(self.rng), prof.break_reason)
        if q is not None:
            if q.cfg.wrapuptime:
                self.after(q.cfg.wrapuptime, self.dispatch, q)
            else:
                self.dispatch(q)

    def _take_break(self, m: Member, duration: float, reason: str) -> None:
        if m.paused:
            return
        self.pause_member(m, True, reason)
        self.after(duration, self._end_break, m, reason)

    def _end_break(self, m: Member, reason: str) -> None:
        if m.paused and m.paused_reason == reason:
            self.pause_member(m, False)

    # ------------------------------------------------------------------ recordings
    def start_recording(self, ch: Channel, path: str) -> None:
        ch.recording = (path, self.now)
        self.varset(ch, "MIXMONITOR_FILENAME", path)
        self.emit("MixMonitorStart", "call", ch.snapshot(), ch.name)

    def finish_recording(self, ch: Channel, stopped: bool) -> None:
        path, started = ch.recording
        ch.recording = None
        if self.write_audio:
            write_wav(path, self.now - started)
        if stopped:
            self.emit("MixMonitorStop", "call", ch.snapshot(), ch.name)


def write_wav(path: str, seconds: float, rate: int = 8000, mkdir: bool = True) -> None:
    """Silence, 8 kHz 16-bit mono like MixMonitor's .wav (44-byte header + 2 bytes per sample).
    MixMonitor creates missing directories; RECORD FILE does not (mkdir=False, capture 15)."""
    p = Path(path)
    try:
        if mkdir:
            p.parent.mkdir(parents=True, exist_ok=True)
        frames = int(max(0.0, seconds) * rate)
        with wave.open(os.fspath(p), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            chunk = b"\0\0" * rate
            left = frames
            while left > 0:
                n = min(left, rate)
                w.writeframesraw(chunk[: n * 2])
                left -= n
            w.writeframes(b"")
    except OSError:
        pass  # Asterisk logs and carries on when it cannot open the file


# ---------------------------------------------------------------------- the inbound flow (from-trunk)
class InboundCall:
    """[from-trunk]: NoOp, Answer, Set(__CTI_DNIS), Set(CDR(cti_did)), AGI(route), NoOp(AGISTATUS),
    then the route chosen by CTI_ROUTE (queue with optional preferred agent, night, callback_offer,
    hangup), Queue(sales,,,,60), NoOp(QUEUESTATUS), Hangup."""

    def __init__(self, engine: Engine, spec: CallSpec) -> None:
        self.e = engine
        self.spec = spec
        self.caller: Channel = None  # type: ignore[assignment]
        self.timers: list[Timer] = []
        self.entry: QueueEntry | None = None
        self.agent_ch: Channel | None = None
        self.member: Member | None = None
        self.queue: Queue | None = None
        self.joined_queue_at: float | None = None
        self.ring_leg: RingLeg | None = None
        self.done = False
        self.agi_status = ""
        self.outcome = ""
        self.dtmf = list(spec.dtmf)
        self.prio = 1
        self.answered = False
        self.agent_channel = ""
        self.started = engine.now
        self.agi_script = "route"
        self.preferred: dict[str, Any] | None = None  # the preferred Dial, for the CDR (cti/sim/cdr.py)
        self.dialplan_hangup = False

    # dialplan helpers
    def _app(self, app: str, data: str) -> None:
        self.e.newexten(self.caller, self.prio, app, data)
        self.prio += 1

    def start(self) -> None:
        e, s = self.e, self.spec
        e.stats.offered += 1
        e.call_started()
        ch = e.new_channel(
            "PJSIP",
            "trunk",
            context="from-trunk",
            exten=s.did,
            cid=(s.caller, s.name or "<unknown>"),
            state=RING,
        )
        ch.dnid = s.did
        ch.call = self
        self.caller = ch
        e.device_changed(e.endpoints["trunk"])
        cid_all = f'"{s.name}" <{s.caller}>' if s.name else f"<{s.caller}>"
        self._app("NoOp", f"Inbound call to {s.did} from {cid_all}")
        self._app("Answer", "")
        e.set_state(ch, UP)
        # Answer() waits ~500 ms for media before the next priority (capture 01)
        self.timers.append(e.after(0.5, self._after_answer))

    def _after_answer(self) -> None:
        e, s = self.e, self.spec
        self._app("Set", f"__CTI_DNIS={s.did}")
        e.varset(self.caller, "__CTI_DNIS", s.did)
        self._app("Set", f"CDR(cti_did)={s.did}")
        self._agi("route")

    def _agi(self, script: str) -> None:
        self._app("AGI", f"{self.e.agi_url}/{script}")
        self.agi_script = script
        self.e.request_agi(self, script)

    def agi_finished(self, status: str, hungup: bool = False) -> None:
        """Called by the Simulator when the FastAGI session ended (SUCCESS / FAILURE / HANGUP)."""
        e = self.e
        if self.done or self.caller.hungup:
            return
        e.varset(self.caller, "AGISTATUS", status)
        if hungup:  # AGISTATUS=HANGUP: the dialplan stops, the channel goes
            self._finish()
            e.hangup(self.caller, 16)
            return
        script = self.agi_script
        if script == "route":
            self._app("NoOp", f"AGISTATUS={status}")
            route = self.caller.vars.get("CTI_ROUTE", "")
            if route == "hangup":
                e.stats.hangup_route += 1
                self._hangup_dialplan()
            elif route == "night":
                e.stats.night += 1
                self._agi("night")
            elif route == "callback_offer":
                e.stats.callback_offer += 1
                self._agi("callback_offer")
            else:  # queue, or unset (08a) / FAILURE (08b): fall back to the queue
                self._to_queue()
        elif script == "callback_offer" and self.caller.vars.get("CTI_ROUTE") == "queue":
            self._to_queue()
        else:
            self._hangup_dialplan()

    def _hangup_dialplan(self) -> None:
        """Hangup(): an explicit soft hangup, then the channel goes (as Local;1 in 06b)."""
        self._app("Hangup", "")
        self.dialplan_hangup = True
        self._finish()
        self.e.hangup(self.caller, 16, soft=True)

    # queue / preferred agent
    def _to_queue(self) -> None:
        v = self.caller.vars
        pref = v.get("CTI_PREFERRED", "")
        ep = self.e.endpoints.get(pref) if pref else None
        if ep is not None and ep.registered and ep.device_state() == NOT_INUSE:
            try:
                tmo = float(v.get("CTI_PREFERRED_TIMEOUT", "") or 15)
            except ValueError:
                tmo = 15.0
            self._dial_preferred(ep, tmo)
            return
        self._queue()

    def _queue(self) -> None:
        e = self.e
        qname = self.caller.vars.get("CTI_QUEUE") or "sales"
        q = e.queues.get(qname) or next(iter(e.queues.values()))
        self.queue = q
        self._app("Queue", f"{q.name},,,,{int(q.cfg.max_wait)}")
        self.caller.app, self.caller.appdata = "Queue", f"{q.name},,,,{int(q.cfg.max_wait)}"
        for var in ("ANSWEREDTIME", "DIALEDTIME"):
            e.varset(self.caller, var, "")
        self.joined_queue_at = e.now
        e.queue_join(self, q)

    def _dial_preferred(self, ep: Endpoint, timeout: float) -> None:
        e = self.e
        caller = self.caller
        self._app("Dial", f"PJSIP/{ep.id},{int(timeout)}")
        ch = e.new_channel(
            "PJSIP", ep.id, linkedid=caller.linkedid, context="agents", exten="s", cid=(ep.id, ep.display)
        )
        ch.callee = True
        ch.call = self
        masked = caller.vars.get("CTI_MASKED", "")
        if masked:
            ch.conn_num, ch.conn_name = masked, masked
            e.set_callerid(ch, masked, masked)
        else:
            ch.conn_num, ch.conn_name = caller.cid_num, caller.cid_name
        e.dial_event("DialBegin", caller, ch, [("DialString", ep.id)])  # capture 12: no PJSIP/
        e.set_connected(caller, ep.id, ep.display)
        ch.state = RINGING
        e.emit("Newstate", "call", ch.snapshot(), ch.name)
        e.dial_event("DialState", caller, ch, [("DialStatus", "RINGING")])
        e.device_changed(ep)
        self.ring_leg = RingLeg(None, None, ep, ch, e.now)
        self.preferred = {"agent": ep.id, "timeout": int(timeout), "channel": ch.name, "status": None}
        self.joined_queue_at = e.now
        self.timers.append(e.after(self.spec.patience, self.abandon))
        e._schedule_answer(self.ring_leg, timeout)

    def redirect_to_agent(self, ep: Endpoint) -> None:
        for t in self.timers:
            t.cancel()
        self.timers.clear()
        self.caller.context, self.caller.exten, self.prio = "agents", ep.id, 1
        self._app("NoOp", f"{self.caller.cid_num} calls {ep.id}")
        self._dial_preferred(ep, 20.0)

    def dial_noanswer(self, leg: RingLeg) -> None:
        e = self.e
        leg.done = True
        self.ring_leg = None
        for t in self.timers:
            t.cancel()
        self.timers.clear()
        e.dial_event("DialEnd", self.caller, leg.channel, [("DialStatus", "NOANSWER")])
        e.hangup(leg.channel, 0)
        if self.preferred is not None:
            self.preferred.update(status="NOANSWER", ended=e.now)
        # the caller's patience continues in the queue
        waited = e.now - (self.joined_queue_at or e.now)
        self.spec.patience = max(0.0, self.spec.patience - waited)
        self._queue()

    def dial_answer(self, leg: RingLeg) -> None:
        e = self.e
        leg.done = True
        for t in leg.timers:
            t.cancel()
        for t in self.timers:
            t.cancel()
        self.ring_leg = None
        ag = leg.channel
        ag.state = UP
        ag.callee = False
        ag.answered_at = e.now
        e.emit("Newstate", "call", ag.snapshot(), ag.name)
        e.dial_event("DialEnd", self.caller, ag, [("DialStatus", "ANSWER")])
        e.stats.answered += 1
        self.answered = True
        self.agent_channel = ag.name
        waited = e.now - (self.joined_queue_at or e.now)
        e.stats.wait_total += waited
        e.stats.max_wait = max(e.stats.max_wait, waited)
        if self.joined_queue_at is not None and e.now - self.joined_queue_at <= 2 * e.ring_cycle_s:
            e.stats.answered_two_rings += 1
        e.device_changed(leg.endpoint)
        self.connected(ag, None, e.now - (self.joined_queue_at or e.now))

    # talking
    def connected(self, ag: Channel, member: Member | None, hold: float) -> None:
        e = self.e
        self.agent_ch = ag
        self.member = member
        self.hold = hold
        self.bridge = e.bridge(ag, self.caller)
        rec = self.caller.vars.get("CTI_RECORD", "")
        if rec:
            e.start_recording(self.caller, rec)
        prof = e.profile(ag.endpoint)
        talk = self.spec.talk_time if self.spec.talk_time is not None else prof.talk_time.sample(e.rng)
        who = self.spec.hangup_first
        if who is None:
            who = "agent" if e.rng.random() < prof.hangup_first_chance else "caller"
        self.talk_started = e.now
        self.timers.append(e.after(talk, self.caller_bye if who == "caller" else self.agent_bye))

    def caller_bye(self) -> None:
        """The caller hangs up while talking (capture 01: AgentComplete Reason caller)."""
        e = self.e
        if self.done:
            return
        self._finish()
        caller, ag = self.caller, self.agent_ch
        assert ag is not None
        e.emit("HangupRequest", "call", caller.snapshot(), caller.name)
        if self.member is not None and self.queue is not None:
            self._agent_complete("caller")
        br = self.bridge
        e.bridge_leave(caller)
        self._set_times()
        e.emit("SoftHangupRequest", "call", [*caller.snapshot(), ("Cause", "16")], caller.name)
        e.bridge_leave(ag)
        e.bridge_destroy(br)
        e.hangup(caller, 16)
        e.hangup(ag, 16)
        e.member_call_done(self.member, e.endpoints[ag.endpoint], self.queue)

    def agent_bye(self) -> None:
        """The agent hangs up first (capture 04: AgentComplete Reason agent, caller hung up)."""
        e = self.e
        if self.done:
            return
        self._finish()
        caller, ag = self.caller, self.agent_ch
        assert ag is not None
        e.emit("HangupRequest", "call", ag.snapshot(), ag.name)
        br = self.bridge
        e.bridge_leave(ag)
        e.bridge_leave(caller)
        if self.member is not None and self.queue is not None:
            self._agent_complete("agent")
        self._set_times()
        e.emit("SoftHangupRequest", "call", [*caller.snapshot(), ("Cause", "16")], caller.name)
        e.bridge_destroy(br)
        e.hangup(ag, 16)
        e.hangup(caller, 16)
        e.member_call_done(self.member, e.endpoints[ag.endpoint], self.queue)

    def _agent_complete(self, reason: str) -> None:
        e = self.e
        q, m, ag = self.queue, self.member, self.agent_ch
        assert q is not None and m is not None and ag is not None
        talk = e.now - self.talk_started
        q.completed += 1
        q.talk_total += talk
        e.dial_event(
            "AgentComplete",
            self.caller,
            ag,
            [
                ("Queue", q.name),
                ("Interface", m.interface),
                ("MemberName", m.name),
                ("HoldTime", str(int(self.hold))),
                ("TalkTime", str(int(talk))),
                ("Reason", reason),
            ],
        )

    def _set_times(self) -> None:
        e = self.e
        talk = e.now - self.talk_started
        e.varset(self.caller, "ANSWEREDTIME", str(int(talk)))
        e.varset(self.caller, "DIALEDTIME", str(int(e.now - (self.joined_queue_at or e.now))))

    def abandon(self) -> None:
        """Caller patience ran out while waiting (capture 03)."""
        e = self.e
        if self.done or self.agent_ch is not None:
            return
        self._finish()
        caller = self.caller
        e.emit("HangupRequest", "call", caller.snapshot(), caller.name)
        if self.ring_leg is not None:  # ringing a preferred agent
            leg = self.ring_leg
            leg.done = True
            for t in leg.timers:
                t.cancel()
            e.dial_event("DialEnd", caller, leg.channel, [("DialStatus", "CANCEL")])
            e.hangup(leg.channel, 0)
            e.stats.abandoned += 1
        elif self.entry is not None:
            e.queue_abandon(self.entry)
        e.emit("SoftHangupRequest", "call", [*caller.snapshot(), ("Cause", "16")], caller.name)
        e.hangup(caller, 0)

    def queue_done(self, status: str) -> None:
        """Queue() returned without an agent: NoOp(QUEUESTATUS=...), Hangup()."""
        e = self.e
        for t in self.timers:
            t.cancel()
        e.varset(self.caller, "QUEUESTATUS", status)
        self._app("NoOp", f"QUEUESTATUS={status}")
        self._hangup_dialplan()

    def external_hangup(self, cause: int = 16, channel: Channel | None = None) -> None:
        """AMI Hangup on the caller channel, or on the agent leg (talking or still ringing)."""
        e = self.e
        if self.done:
            return
        if channel is not None and channel is not self.caller:
            if channel is self.agent_ch:
                self.agent_bye()
                return
            leg = getattr(channel, "leg", None)
            if isinstance(leg, RingLeg) and not leg.done:
                e.leg_timeout(leg)  # the phone stopped ringing without an answer
            return
        if self.agent_ch is not None:
            self.caller_bye()
            return
        self._finish()
        caller = self.caller
        e.emit("HangupRequest", "call", caller.snapshot(), caller.name)
        if self.entry is not None and self.entry in self.entry.queue.entries:
            e.queue_abandon(self.entry)
        if self.ring_leg is not None and not self.ring_leg.done:
            leg = self.ring_leg
            leg.done = True
            for t in leg.timers:
                t.cancel()
            e.dial_event("DialEnd", caller, leg.channel, [("DialStatus", "CANCEL")])
            e.hangup(leg.channel, 0)
        e.hangup(caller, cause)

    def _finish(self) -> None:
        if not self.done:
            self.done = True
            for t in self.timers:
                t.cancel()
            uid = self.caller.uniqueid if self.caller else ""
            record = {
                "uniqueid": uid, "number": self.spec.caller, "did": self.spec.did, "answered": self.answered,
                "started": self.started, "ended": self.e.now, "name": self.spec.name or "",
                "channel": self.caller.name if self.caller else "", "agent_channel": self.agent_channel,
                "clid_name": self.caller.cid_name if self.caller else "", "script": self.agi_script,
                "masked": self.caller.vars.get("CTI_MASKED", "") if self.caller else "",
                "queue": self.queue.name if self.queue else None, "preferred": self.preferred,
                "dialplan_hangup": self.dialplan_hangup, "agi_url": self.e.agi_url,
            }  # fmt: skip
            self.e.ledger.append(record)
            if self.e.on_call_record is not None:
                self.e.on_call_record(record)
            self.e.call_ended()

    # AGI-facing helpers
    def ivr_hangup(self) -> None:
        """The caller hangs up while the FastAGI script runs."""
        self.e.stats.ivr_hangups += 1
        self.e.emit("HangupRequest", "call", self.caller.snapshot(), self.caller.name)

    def next_dtmf(self) -> str:
        return self.dtmf.pop(0) if self.dtmf else ""

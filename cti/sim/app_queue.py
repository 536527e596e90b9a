"""app_queue: queues, dynamic members (QueueAdd/Remove/Pause/Penalty), callers waiting, the ring
strategy, ring timeouts with autopause and retry, and the Queue:* pseudo devices.

Event sequences follow captures 01-03 (join, ring, AgentConnect / AgentRingNoAnswer + autopause /
abandon) and 17 (QueueAdd's headers; members are forgotten on restart: persistentmembers = no).
Member status follows the PJSIP device (core.device_watchers), as app_queue subscribes to device state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from cti.sim.core import Core
from cti.sim.model import NOT_INUSE, RINGING, UP, CallSpec, Channel, Endpoint, Member, RingLeg
from cti.sim.people import People
from cti.sim.scenario import QueueConfig
from cti.sim.sched import Timer


class QueueCaller(Protocol):
    """What app_queue needs of the dialplan flow that ran Queue() (cti.sim.inbound.InboundFlow)."""

    caller: Channel
    spec: CallSpec
    timers: list[Timer]
    entry: QueueEntry | None
    answered: bool
    agent_channel: str
    joined_queue_at: float | None
    inbound: bool  # an inbound caller (counted in the simulator's stats), not an outbound customer

    def abandon(self) -> None: ...

    def queue_done(self, status: str) -> None: ...

    def connected(self, ag: Channel, member: Member | None, hold: float) -> None: ...


@dataclass(eq=False)
class QueueEntry:
    call: QueueCaller
    queue: Queue
    joined: float
    original_position: int
    legs: list[QueueLeg] = field(default_factory=list)
    retry_timer: Timer | None = None
    waiting_retry: bool = False


@dataclass(eq=False, kw_only=True)
class QueueLeg(RingLeg):
    entry: QueueEntry
    member: Member


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


class AppQueue:
    def __init__(self, core: Core, people: People) -> None:
        self.core = core
        self.people = people
        self.queues: dict[str, Queue] = {q.name: Queue(q) for q in core.scenario.queues}
        self.by_state_iface: dict[str, list[Member]] = {}
        core.device_watchers.append(self.members_changed)
        core.reachable_watchers.append(self.dispatch_all)

    # ------------------------------------------------------------------ member status and devices
    def member_status(self, m: Member) -> int:
        ep = self.core.endpoints.get(m.state_interface.partition("/")[2])
        if ep is None:
            return 5
        return ep.device_state()

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
            self.core.emit("QueueMemberStatus", "agent", m.event_fields(st))
        self._queue_devices(m.queue)

    def member_event(self, name: str, m: Member) -> None:
        st = self.member_status(m)
        self._refresh_free(m, st)
        m.last_emitted = (st, m.paused, m.in_call, m.calls_taken, m.paused_reason)
        pause_dev = "INUSE" if m.paused else "NOT_INUSE"
        if name != "QueueMemberRemoved" and pause_dev != m.pause_dev:
            m.pause_dev = pause_dev
            self.core.emit(
                "DeviceStateChange",
                "call",
                [("Device", f"Queue:{m.queue}_pause_{m.interface}"), ("State", pause_dev)],
            )
        self.core.emit(name, "agent", m.event_fields(st))
        self._queue_devices(m.queue)

    def _queue_devices(self, qname: str) -> None:
        """Queue:<q>_avail is NOT_INUSE while some member could take a call (captures 01-03)."""
        q = self.queues.get(qname)
        if q is None:
            return
        avail = "NOT_INUSE" if q.free else "INUSE"
        if avail != q.avail_dev and (q.members or q.avail_dev):
            q.avail_dev = avail
            self.core.emit(
                "DeviceStateChange", "call", [("Device", f"Queue:{q.name}_avail"), ("State", avail)]
            )

    def _queue_callers_device(self, q: Queue) -> None:
        """Queue:<q> is RINGING while callers wait, NOT_INUSE when the last one leaves."""
        dev = "RINGING" if q.entries else "NOT_INUSE"
        if dev != q.dev:
            q.dev = dev
            self.core.emit("DeviceStateChange", "call", [("Device", f"Queue:{q.name}"), ("State", dev)])

    # ------------------------------------------------------------------ membership (AMI actions)
    def add(
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
        now_s = int(self.core.now)
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
        if ep not in self.core.endpoints and m.state_interface.startswith("PJSIP/"):
            self.core.add_endpoint(ep, ep, registered=False)
        self.member_event("QueueMemberAdded", m)
        self.core.after(0, self.dispatch, q)
        return None

    def remove(self, qname: str, interface: str) -> str | None:
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
                self.exit(e, "LEAVEEMPTY")
        return None

    def _find(self, qname: str | None, interface: str) -> list[Member]:
        return [
            q.members[interface]
            for q in self.queues.values()
            if (qname is None or q.name == qname) and interface in q.members
        ]

    def pause(self, qname: str | None, interface: str, paused: bool, reason: str = "") -> str | None:
        found = self._find(qname, interface)
        if not found:
            return "Interface not found"
        for m in found:
            self.pause_member(m, paused, reason)
        return None

    def pause_member(self, m: Member, paused: bool, reason: str = "") -> None:
        m.paused = paused
        m.paused_reason = reason if paused else ""
        if paused:
            m.last_pause = int(self.core.now)
        self.member_event("QueueMemberPause", m)
        if not paused:
            self.core.after(0, self.dispatch, self.queues[m.queue])

    def penalty(self, qname: str | None, interface: str, penalty: int) -> str | None:
        found = self._find(qname, interface)
        if not found:
            return "Invalid interface, queuename or penalty"
        for m in found:
            m.penalty = penalty
            self.member_event("QueueMemberPenalty", m)
        return None

    def restart(self) -> None:
        """`core restart now` (capture 17): dynamic members are forgotten (persistentmembers = no),
        statistics start at zero."""
        for q in self.queues.values():
            q.members.clear()
            q.entries.clear()
            q.free.clear()
            q.rr_last = -1
            q.avail_dev = ""
            q.completed = q.abandoned = q.connected = q.in_sl = 0
            q.hold_total = q.talk_total = 0.0
        self.by_state_iface.clear()

    # ------------------------------------------------------------------ callers
    def join(self, call: QueueCaller, q: Queue) -> None:
        core = self.core
        ch = call.caller
        if not q.cfg.joinempty and not any(self._usable(m) for m in q.members.values()):
            core.stats.joinempty += 1 if call.inbound else 0
            call.queue_done("JOINEMPTY")
            return
        if q.cfg.maxlen and len(q.entries) >= q.cfg.maxlen:
            call.queue_done("FULL")
            return
        entry = QueueEntry(call, q, core.now, len(q.entries) + 1)
        q.entries.append(entry)
        call.entry = entry
        self._queue_callers_device(q)
        core.emit(
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
        core.emit("MusicOnHoldStart", "call", [*ch.snapshot(), ("Class", "default")], ch.name)
        call.timers.append(core.after(call.spec.patience, call.abandon))
        call.timers.append(core.after(q.cfg.max_wait, self.exit, entry, "TIMEOUT"))
        self.dispatch(q)

    def _usable(self, m: Member) -> bool:
        """Logged in and reachable (for joinempty/leavewhenempty): not UNAVAILABLE."""
        return self.member_status(m) != 5

    def _available(self, m: Member) -> bool:
        return (
            not m.paused
            and not m.ringing
            and self.member_status(m) == NOT_INUSE
            and self.core.now >= m.wrapup_until
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
            return [self.core.rng.choice(cands)]
        return [cands[0]]

    def ring_member(self, entry: QueueEntry, m: Member) -> None:
        core = self.core
        call = entry.call
        caller = call.caller
        ep_id = m.interface.partition("/")[2]
        ep = core.endpoints[ep_id]
        m.ringing = True
        ch = core.new_channel(
            "PJSIP", ep_id, linkedid=caller.linkedid, context="agents", exten="s", cid=(ep_id, ep.display)
        )
        ch.callee = True
        ch.call = caller.call
        leg = QueueLeg(self, ep, ch, core.now, entry=entry, member=m)
        entry.legs.append(leg)
        masked = caller.vars.get("CTI_MASKED", "")
        if masked:  # the pre-dial handler on the agent leg (COMMON.md contract)
            ch.conn_num, ch.conn_name = masked, masked
            core.set_callerid(ch, masked, masked)
        else:
            ch.conn_num, ch.conn_name = caller.cid_num, caller.cid_name
        core.dial_event(
            "AgentCalled",
            caller,
            ch,
            [("Queue", entry.queue.name), ("Interface", m.interface), ("MemberName", m.name)],
        )
        core.dial_event("DialBegin", caller, ch, [("DialString", m.interface)])
        core.set_connected(caller, ep_id, ep.display)
        ch.state = RINGING
        core.emit("Newstate", "call", ch.snapshot(), ch.name)
        core.newexten(ch, 1, "AppQueue", "(Outgoing Line)")
        core.emit("NewConnectedLine", "call", ch.snapshot(), ch.name)
        core.dial_event("DialState", caller, ch, [("DialStatus", "RINGING")])
        core.device_changed(ep)
        self.people.ring(leg, entry.queue.cfg.timeout)

    def _end_leg(self, leg: QueueLeg) -> None:
        leg.stop()
        leg.member.ringing = False
        if leg in leg.entry.legs:
            leg.entry.legs.remove(leg)

    def leg_timed_out(self, leg: RingLeg) -> None:
        """AgentRingNoAnswer, then autopause and a retry after `retry` s (capture 02)."""
        assert isinstance(leg, QueueLeg)
        core = self.core
        entry = leg.entry
        q = entry.queue
        caller = entry.call.caller
        m = leg.member
        self._end_leg(leg)
        core.dial_event(
            "AgentRingNoAnswer",
            caller,
            leg.channel,
            [
                ("Queue", q.name),
                ("Interface", m.interface),
                ("MemberName", m.name),
                ("RingTime", str(round((core.now - leg.started) * 1000))),
            ],
        )
        if q.cfg.autopause:
            m.paused, m.paused_reason, m.last_pause = True, "Auto-Pause", int(core.now)
            self.member_event("QueueMemberPause", m)
            delay = self.people.unpause_after_autopause(leg.endpoint.id)
            if delay is not None:
                core.after(delay, self._self_unpause, m)
        core.dial_event("DialEnd", caller, leg.channel, [("DialStatus", "NOANSWER")])
        core.dial_event("DialEnd", caller, leg.channel, [("DialStatus", "CANCEL")])
        core.hangup(leg.channel, 0)
        if not entry.legs:
            entry.waiting_retry = True
            entry.retry_timer = core.after(q.cfg.retry, self._retry, entry)

    def _self_unpause(self, m: Member) -> None:
        q = self.queues.get(m.queue)
        if q is not None and q.members.get(m.interface) is m and m.paused and m.paused_reason == "Auto-Pause":
            self.pause_member(m, False)

    def _retry(self, entry: QueueEntry) -> None:
        entry.waiting_retry = False
        if entry in entry.queue.entries:
            self.dispatch(entry.queue)

    def leg_answered(self, leg: RingLeg) -> None:
        """The member answers: the other legs are cancelled, the caller leaves the queue (capture 01)."""
        assert isinstance(leg, QueueLeg)
        core = self.core
        entry = leg.entry
        call = entry.call
        caller = call.caller
        q = entry.queue
        m = leg.member
        # cancel the other legs (ringall)
        for other in list(entry.legs):
            if other is not leg:
                self._end_leg(other)
                core.dial_event("DialEnd", caller, other.channel, [("DialStatus", "CANCEL")])
                core.hangup(other.channel, 0)
        self._end_leg(leg)
        for t in call.timers:
            t.cancel()
        ag = leg.channel
        ag.state = UP
        ag.answered_at = core.now
        ag.callee = False
        core.emit("Newstate", "call", ag.snapshot(), ag.name)
        core.dial_event("DialEnd", caller, ag, [("DialStatus", "ANSWER")])
        core.emit("MusicOnHoldStop", "call", caller.snapshot(), caller.name)
        core.varset(caller, "MEMBERINTERFACE", m.interface)
        core.varset(caller, "MEMBERNAME", m.name)
        pos = q.entries.index(entry) + 1
        q.entries.remove(entry)
        self._queue_callers_device(q)
        self._caller_leave(q, caller, pos)
        core.varset(caller, "QUEUEPOSITION", str(pos))
        hold = core.now - entry.joined
        ring = core.now - leg.started
        core.dial_event(
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
        call.answered = True
        call.agent_channel = ag.name
        if call.inbound:  # the caller figures (summary, demo); an outbound customer is not one
            core.stats.answered += 1
            core.stats.wait_total += hold
            core.stats.max_wait = max(core.stats.max_wait, hold)
            if call.joined_queue_at is not None and core.now - call.joined_queue_at <= 2 * core.ring_cycle_s:
                core.stats.answered_two_rings += 1
        m.in_call = True
        core.device_changed(leg.endpoint)
        call.connected(ag, m, hold)

    def _caller_leave(self, q: Queue, caller: Channel, pos: int) -> None:
        self.core.emit(
            "QueueCallerLeave",
            "agent",
            [*caller.snapshot(), ("Queue", q.name), ("Position", str(pos)), ("Count", str(len(q.entries)))],
            caller.name,
        )

    def _leave(self, entry: QueueEntry) -> None:
        """Leave without an agent: legs cancelled, music stops, QueueCallerLeave."""
        q = entry.queue
        caller = entry.call.caller
        self._cancel_legs(entry)
        pos = q.entries.index(entry) + 1
        q.entries.remove(entry)
        self._queue_callers_device(q)
        self.core.emit("MusicOnHoldStop", "call", caller.snapshot(), caller.name)
        self._caller_leave(q, caller, pos)

    def exit(self, entry: QueueEntry, status: str) -> None:
        """The caller leaves the queue without an agent (timeout / leavewhenempty)."""
        if entry not in entry.queue.entries:
            return
        self._leave(entry)
        if status == "TIMEOUT" and entry.call.inbound:
            self.core.stats.timed_out += 1
        entry.call.queue_done(status)

    def exit_silent(self, entry: QueueEntry) -> None:
        """Leave the queue because of a Redirect (no QUEUESTATUS dialplan afterwards)."""
        self._leave(entry)

    def _cancel_legs(self, entry: QueueEntry) -> None:
        caller = entry.call.caller
        for leg in list(entry.legs):
            self._end_leg(leg)
            self.core.dial_event("DialEnd", caller, leg.channel, [("DialStatus", "CANCEL")])
            self.core.hangup(leg.channel, 0)
        if entry.retry_timer is not None:
            entry.retry_timer.cancel()

    def abandon(self, entry: QueueEntry) -> None:
        """The caller hangs up while waiting (capture 03)."""
        core = self.core
        q = entry.queue
        caller = entry.call.caller
        self._cancel_legs(entry)
        pos = q.entries.index(entry) + 1
        core.emit("MusicOnHoldStop", "call", caller.snapshot(), caller.name)
        core.emit(
            "QueueCallerAbandon",
            "agent",
            [
                *caller.snapshot(),
                ("Queue", q.name),
                ("Position", str(pos)),
                ("OriginalPosition", str(entry.original_position)),
                ("HoldTime", str(int(core.now - entry.joined))),
            ],
            caller.name,
        )
        q.entries.remove(entry)
        self._queue_callers_device(q)
        q.abandoned += 1
        core.stats.abandoned += 1
        self._caller_leave(q, caller, pos)

    def member_call_done(self, m: Member | None, ep: Endpoint, q: Queue | None) -> None:
        core = self.core
        if m is not None:
            m.in_call = False
            m.calls_taken += 1
            m.last_call = int(core.now)
            if q is not None:
                m.wrapup_until = core.now + q.cfg.wrapuptime
        core.device_changed(ep)
        if m is not None:
            brk = self.people.break_after_call(ep.id)
            if brk is not None:
                core.after(1.0, self._take_break, m, *brk)
        if q is not None:
            if q.cfg.wrapuptime:
                core.after(q.cfg.wrapuptime, self.dispatch, q)
            else:
                self.dispatch(q)

    def _take_break(self, m: Member, duration: float, reason: str) -> None:
        if m.paused:
            return
        self.pause_member(m, True, reason)
        self.core.after(duration, self._end_break, m, reason)

    def _end_break(self, m: Member, reason: str) -> None:
        if m.paused and m.paused_reason == reason:
            self.pause_member(m, False)

"""The inbound dialplan flow: [from-trunk] -> FastAGI `route` -> the queue, a preferred agent's Dial,
night or a callback offer (the project's dialplan in `dialplan/`, as the simulator models it).

Per-channel event order follows captures 01 (answered via the queue), 03 (abandon), 04 (agent hangs up
first), 08a/08b (AGI failure falls back to the queue), 12 (the preferred agent's Dial: DialString
without `PJSIP/`, no Agent* events), 13 (preferred NOANSWER, then the queue) and 06b (Hangup() sends
SoftHangupRequest + Hangup 16).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cti.sim.app_queue import AppQueue, Queue, QueueEntry
from cti.sim.core import Core
from cti.sim.model import NOT_INUSE, RING, RINGING, UP, Bridge, CallSpec, Channel, Endpoint, Member, RingLeg
from cti.sim.recordings import MixMonitor
from cti.sim.sched import Timer


class InboundFlow:
    """[from-trunk]: NoOp, Answer, Set(__CTI_DNIS), Set(CDR(cti_did)), AGI(route), NoOp(AGISTATUS),
    then the route chosen by CTI_ROUTE (queue with optional preferred agent, night, callback_offer,
    hangup), Queue(sales,,,,60), NoOp(QUEUESTATUS), Hangup; a caller the agent left goes on to
    [cti-survey] (AGI survey, Hangup)."""

    inbound = True  # app_queue.QueueCaller: counted in the caller figures

    # The project's dialplan ([cti-queue]) runs Queue() with `c` and the preferred agent's Dial() with
    # `g`, so a caller the agent left continues in the dialplan (decision 0900); without them Asterisk
    # hangs the caller up (capture 04). tests/agi/test_survey_sim.py checks the dialplan says so.
    QUEUE_CONTINUE = True
    DIAL_CONTINUE = True
    # features.conf `cti-survey => *0,self,Gosub(cti-survey-key,s,1)`, enabled on the agent's leg by
    # the pre-dial handler's ARG2 (tests/asterisk_conf checks the two agree)
    SURVEY_KEY = "*0"

    def __init__(
        self,
        core: Core,
        app_queue: AppQueue,
        mixmonitor: MixMonitor,
        request_agi: Callable[[InboundFlow, str], None],
        spec: CallSpec,
    ) -> None:
        self.e = core
        self.app_queue = app_queue
        self.mixmonitor = mixmonitor
        self.request_agi = request_agi
        self.spec = spec
        self.caller: Channel = None  # type: ignore[assignment]
        self.timers: list[Timer] = []
        self.entry: QueueEntry | None = None
        self.agent_ch: Channel | None = None
        self.member: Member | None = None
        self.queue: Queue | None = None
        self.joined_queue_at: float | None = None
        self.ring_leg: RingLeg | None = None
        self.bridge: Bridge | None = None  # caller and agent, while they talk
        self.hold = 0.0
        self.talk_started = 0.0
        self.done = False
        self.agi_status = ""
        self.outcome = ""
        self.dtmf = list(spec.dtmf)
        self.prio = 1
        self.answered = False
        self.agent_channel = ""
        self.started = core.now
        self.agi_script = "route"
        self.preferred: dict[str, Any] | None = None  # the preferred Dial, for the CDR (cti/sim/cdr.py)
        self.dialplan_hangup = False
        self.agi_args: tuple[str, ...] = ()
        self.surveyed = False  # the agent left and the caller went on to [cti-survey]
        self.survey_via = ""  # SHARED(CTI_SURVEY_VIA) on the caller: `key` after the survey key
        self.survey_key_enabled = True  # [cti-queue]'s Dial and Queue give the agent's leg the key

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

    def _agi(self, script: str, *args: str) -> None:
        self._app("AGI", ",".join([f"{self.e.agi_url}/{script}", *args]))
        self.agi_script = script
        self.agi_args = args
        self.request_agi(self, script)

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
        queues = self.app_queue.queues
        q = queues.get(qname) or next(iter(queues.values()))
        self.queue = q
        self._app("Queue", f"{q.name},,,,{int(q.cfg.max_wait)}")
        self.caller.app, self.caller.appdata = "Queue", f"{q.name},,,,{int(q.cfg.max_wait)}"
        for var in ("ANSWEREDTIME", "DIALEDTIME"):
            e.varset(self.caller, var, "")
        self.joined_queue_at = e.now
        self.app_queue.join(self, q)

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
        self.ring_leg = RingLeg(self, ep, ch, e.now)
        self.preferred = {"agent": ep.id, "timeout": int(timeout), "channel": ch.name, "status": None}
        self.joined_queue_at = e.now
        self.timers.append(e.after(self.spec.patience, self.abandon))
        self.app_queue.people.ring(self.ring_leg, timeout)

    def redirect(self, channel: Channel, context: str, exten: str) -> str | None:
        """AMI Redirect of the waiting caller to `agents,<agentN>` (the only target modelled): it leaves
        the queue without QUEUESTATUS and Dials the agent for 20 s as [agents] does."""
        if channel is not self.caller or self.agent_ch is not None:
            return "Redirect failed"
        ep = self.e.endpoints.get(exten)
        if context != "agents" or ep is None:
            return "Redirect failed"
        if self.entry is not None and self.entry in self.entry.queue.entries:
            self.app_queue.exit_silent(self.entry)
        self.entry = None
        self.redirect_to_agent(ep)
        return None

    def redirect_to_agent(self, ep: Endpoint) -> None:
        self.survey_key_enabled = False  # [agents]' Dial has no pre-dial handler
        for t in self.timers:
            t.cancel()
        self.timers.clear()
        self.caller.context, self.caller.exten, self.prio = "agents", ep.id, 1
        self._app("NoOp", f"{self.caller.cid_num} calls {ep.id}")
        self._dial_preferred(ep, 20.0)

    def leg_timed_out(self, leg: RingLeg) -> None:
        """The preferred agent did not answer within the Dial timeout: on to the queue (capture 13)."""
        e = self.e
        leg.timers.clear()
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

    def leg_answered(self, leg: RingLeg) -> None:
        """The preferred agent answers the Dial (capture 12)."""
        e = self.e
        leg.stop()
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
            self.mixmonitor.start(self.caller, rec)
        prof = self.app_queue.people.profile(ag.endpoint)
        talk = self.spec.talk_time if self.spec.talk_time is not None else prof.talk_time.sample(e.rng)
        who = self.spec.hangup_first
        if who is None:
            who = "agent" if e.rng.random() < prof.hangup_first_chance else "caller"
        self.talk_started = e.now
        self.timers.append(e.after(talk, self.caller_bye if who == "caller" else self.agent_bye))

    def caller_bye(self) -> None:
        """The caller hangs up while talking (capture 01: AgentComplete Reason caller)."""
        e, ag, br = self.e, self.agent_ch, self.bridge
        if self.done or ag is None or br is None:
            return
        self._finish()
        caller = self.caller
        e.emit("HangupRequest", "call", caller.snapshot(), caller.name)
        self._agent_complete("caller")
        e.bridge_leave(caller)
        self._set_times()
        e.emit("SoftHangupRequest", "call", [*caller.snapshot(), ("Cause", "16")], caller.name)
        e.bridge_leave(ag)
        e.bridge_destroy(br)
        self._talk_over(caller, ag)

    def agent_bye(self) -> None:
        """The agent hangs up first (capture 04: AgentComplete Reason agent, caller hung up): so
        without Queue's `c` / Dial's `g`; with them the caller continues (`_agent_left`)."""
        e, ag, br = self.e, self.agent_ch, self.bridge
        if self.done or ag is None or br is None:
            return
        if self.QUEUE_CONTINUE if self.member is not None else self.DIAL_CONTINUE:
            self._agent_left(ag, br)
            return
        self._finish()
        caller = self.caller
        e.emit("HangupRequest", "call", ag.snapshot(), ag.name)
        e.bridge_leave(ag)
        e.bridge_leave(caller)
        self._agent_complete("agent")
        self._set_times()
        e.emit("SoftHangupRequest", "call", [*caller.snapshot(), ("Cause", "16")], caller.name)
        e.bridge_destroy(br)
        self._talk_over(ag, caller)

    def agent_key(self, digits: str) -> bool:
        """The agent keys `digits` while talking. Only the transfer-to-survey key does anything: the
        bridge's DTMF hook runs `Gosub(cti-survey-key,s,1)` on the agent's channel, which marks the
        caller (SHARED(CTI_SURVEY_VIA)=key) and runs Hangup(); the caller then continues as when the
        agent hangs up (`_agent_left`). No capture exists: the order follows the Asterisk 22 docs
        (Custom Dynamic Features: the feature listens on the channel whose DYNAMIC_FEATURES names it)
        and bridge_channel.c (the application runs on the activating channel inside the bridge; a
        hung-up channel leaves it, and the basic bridge dissolves). DTMFBegin/End are not emitted (the
        CTI's manager user lacks the `dtmf` read class); other keys reach the customer unmodelled."""
        ag, br = self.agent_ch, self.bridge
        if self.done or ag is None or br is None or digits != self.SURVEY_KEY:
            return False
        if not self.survey_key_enabled:
            return False  # a Redirect to [agents] dials without the pre-dial handler: no feature
        e = self.e
        ag.context, ag.exten = "cti-survey-key", "s"
        e.newexten(ag, 1, "Set", f"SHARED(CTI_SURVEY_VIA,{self.caller.name})=key")
        self.survey_via = "key"
        e.newexten(ag, 2, "Hangup", "")
        e.emit("SoftHangupRequest", "call", [*ag.snapshot(), ("Cause", "16")], ag.name)
        continues = self.QUEUE_CONTINUE if self.member is not None else self.DIAL_CONTINUE
        if continues:
            self._agent_left(ag, br, phone_bye=False)
        else:  # capture 04's ending, reached by the key instead of the phone's BYE
            self._finish()
            e.bridge_leave(ag)
            e.bridge_leave(self.caller)
            self._agent_complete("agent")
            self._set_times()
            e.emit("SoftHangupRequest", "call", [*self.caller.snapshot(), ("Cause", "16")], self.caller.name)
            e.bridge_destroy(br)
            self._talk_over(ag, self.caller)
        return True

    def _agent_left(self, ag: Channel, br: Bridge, phone_bye: bool = True) -> None:
        """The agent hung up first and the caller stays: no capture. What Asterisk does is read from
        app_queue.c (`stop:` a handled call with `c` returns 0, QUEUESTATUS=CONTINUE) and app_dial.c
        (`g`: next priority, DIALSTATUS stays ANSWER); the common part keeps capture 04's order
        (HangupRequest agent, BridgeLeave agent, BridgeLeave caller, BridgeDestroy, AgentComplete,
        Hangup agent), without the caller's SoftHangupRequest and Hangup. Then [cti-queue] sends the
        caller to [cti-survey]: AGI(survey,<agent>,inbound,<queue>,<SHARED(CTI_SURVEY_VIA)>), Hangup()."""
        e, caller = self.e, self.caller
        for t in self.timers:
            t.cancel()
        self.timers.clear()
        if phone_bye:  # the agent's phone hung up (04); the survey key's Hangup() sent SoftHangupRequest
            e.emit("HangupRequest", "call", ag.snapshot(), ag.name)
        e.bridge_leave(ag)
        e.bridge_leave(caller)
        e.bridge_destroy(br)
        self.bridge = None
        self._agent_complete("agent")
        self._set_times()
        e.hangup(ag, 16)
        self.app_queue.member_call_done(self.member, e.endpoints[ag.endpoint], self.queue)
        queue = self.queue.name if self.queue is not None else caller.vars.get("CTI_QUEUE", "") or "sales"
        if self.member is not None:
            agent = self.member.name
            e.varset(caller, "QUEUESTATUS", "CONTINUE")
            self._app("NoOp", "QUEUESTATUS=CONTINUE")
            self._app("GotoIf", "1?survey")
        else:
            agent = self.preferred["agent"] if self.preferred else ag.endpoint
            self._app("GotoIf", "1?survey")
        self._app("Set", f"CTI_SURVEY_AGENT={agent}")
        e.varset(caller, "CTI_SURVEY_AGENT", agent)
        self._app("Goto", "cti-survey,inbound,1")
        caller.context, caller.exten, self.prio = "cti-survey", "inbound", 1
        self.surveyed = True
        self._agi("survey", agent, "inbound", queue, self.survey_via)

    def _talk_over(self, first: Channel, second: Channel) -> None:
        """Both channels go (the one that hung up first), then the member wraps up."""
        e, ag = self.e, self.agent_ch
        assert ag is not None
        e.hangup(first, 16)
        e.hangup(second, 16)
        self.app_queue.member_call_done(self.member, e.endpoints[ag.endpoint], self.queue)

    def _agent_complete(self, reason: str) -> None:
        """AgentComplete, for a call the queue connected (not for the preferred agent's Dial: 12)."""
        e = self.e
        q, m, ag = self.queue, self.member, self.agent_ch
        if q is None or m is None or ag is None:
            return
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
            leg.stop()
            e.dial_event("DialEnd", caller, leg.channel, [("DialStatus", "CANCEL")])
            e.hangup(leg.channel, 0)
            e.stats.abandoned += 1
        elif self.entry is not None:
            self.app_queue.abandon(self.entry)
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
            if channel.leg is not None and not channel.leg.done:
                e.time_out_leg(channel.leg)  # the phone stopped ringing without an answer
            return
        if self.agent_ch is not None and self.bridge is not None:
            self.caller_bye()
            return
        self._finish()
        caller = self.caller
        e.emit("HangupRequest", "call", caller.snapshot(), caller.name)
        if self.entry is not None and self.entry in self.entry.queue.entries:
            self.app_queue.abandon(self.entry)
        if self.ring_leg is not None and not self.ring_leg.done:
            leg = self.ring_leg
            leg.stop()
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
                "surveyed": self.surveyed,
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

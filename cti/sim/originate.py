"""AMI Originate: first leg to an agent endpoint (PJSIP/agentN or Local/agentN@agents), then the
dialplan context (`callback` / `callback-did`) dials the customer on the trunk (captures 06a-06d).
With the trunk down (`Simulator.set_trunk(False)`) that Dial creates no channel: DIALSTATUS=CHANUNAVAIL,
no DialBegin/DialEnd, the agent leg hangs up with Cause 3 TechCause 404 after the Originate already
answered Success Reason 4 (capture 18). A finished `callback-did` Originate is handed to the core's
`on_call_record` hook as a cdr_pgsql row would see it (cti/sim/cdr.py, captures 16/18/19).

OriginateResponse Reason: 4 answered, 3 no answer (timeout), 0 for everything else (busy, unregistered,
unknown endpoint) exactly as 06c shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cti.sim.core import Core
from cti.sim.model import RINGING, UP, Bridge, Channel, RingLeg
from cti.sim.people import People
from cti.sim.recordings import MixMonitor
from cti.sim.sched import Timer


@dataclass(eq=False)
class OriginateRequest:
    channel: str
    context: str = ""
    exten: str = ""
    priority: int = 1
    callerid: str = ""
    timeout_ms: int = 30000
    action_id: str | None = None
    channel_id: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    application: str = ""
    data: str = ""
    send_response: bool = True


def split_callerid(cid: str) -> tuple[str, str]:
    """`"Name" <num>` / `Name <num>` / `num` -> (num, name) with <unknown> for missing parts."""
    cid = cid.strip()
    if "<" in cid and cid.endswith(">"):
        name, _, num = cid[:-1].partition("<")
        name = name.strip().strip('"')
        return num.strip() or "<unknown>", name or "<unknown>"
    return cid or "<unknown>", "<unknown>"


class Originated:
    """What both Originate flows share: the request, OriginateResponse, and no Redirect."""

    e: Core
    req: OriginateRequest
    cid_num: str
    cid_name: str
    timers: list[Timer]
    done: bool

    def _originate_response(self, reason: int, first: Channel | None, on: str) -> None:
        """Success (Reason 4) naming the originated channel, or Failure naming the dial string with
        Uniqueid `<unknown>` (06a, 06c)."""
        self.e.emit(
            "OriginateResponse",
            "call",
            [
                *self._resp_head(),
                ("Response", "Success" if first is not None else "Failure"),
                ("Channel", first.name if first is not None else self.req.channel),
                ("Context", self.req.context),
                ("Exten", self.req.exten),
                ("Reason", str(reason)),
                ("Uniqueid", first.uniqueid if first is not None else "<unknown>"),
                ("CallerIDNum", self.cid_num),
                ("CallerIDName", self.cid_name),
            ],
            on,
        )

    def _resp_head(self) -> list[tuple[str, str]]:
        """OriginateResponse carries the Originate's ActionID first (06c)."""
        return [("ActionID", self.req.action_id)] if self.req.action_id is not None else []

    def _end(self) -> None:
        """The call is over (once): its pending timers stop and the core counts it ended."""
        if not self.done:
            self.done = True
            for t in self.timers:
                t.cancel()
            self.e.call_ended()

    def redirect(self, channel: Channel, context: str, exten: str) -> str | None:
        return "Redirect failed"  # only a waiting inbound caller can be redirected (package docstring)


class AgentFirstCall(Originated):
    """Originate to an agent (PJSIP/agentN or Local/agentN@agents), then Context/Exten."""

    def __init__(self, e: Core, people: People, mixmonitor: MixMonitor, req: OriginateRequest) -> None:
        self.e = e
        self.people = people
        self.mixmonitor = mixmonitor
        self.req = req
        self.cid_num, self.cid_name = split_callerid(req.callerid)
        self.timers: list[Timer] = []
        self.first: Channel | None = None  # the channel that runs Context/Exten after answer
        self.local2: Channel | None = None
        self.agent: Channel | None = None
        self.customer: Channel | None = None
        self.bridges: list[Bridge] = []
        self.leg: RingLeg | None = None
        self.done = False
        self.outcome = ""
        self.dial_prio = 1
        self.created = e.now
        self.customer_answered_at: float | None = None

    # ------------------------------------------------------------------ validation (Async false too)
    def endpoint_id(self) -> str | None:
        ch = self.req.channel
        tech, _, rest = ch.partition("/")
        if tech.upper() == "PJSIP":
            return rest
        if tech.lower() == "local":
            exten, _, ctx = rest.partition("@")
            if ctx.split("/")[0] == "agents":
                return exten
        return None

    def reachable(self) -> bool:
        ep_id = self.endpoint_id()
        ep = self.e.endpoints.get(ep_id or "")
        return ep is not None and ep.registered and ep_id not in ("trunk", "pstn")

    def fail(self, reason: int) -> None:
        self.done = True
        if self.req.send_response:
            self._originate_response(reason, None, self.req.channel)

    # ------------------------------------------------------------------ flow
    def start(self) -> None:
        e = self.e
        e.call_started()
        if not self.reachable():
            e.call_ended()
            self.fail(0)
            return
        ep_id = self.endpoint_id()
        assert ep_id is not None
        ep = e.endpoints[ep_id]
        req = self.req
        cid = (self.cid_num, self.cid_name)
        if req.channel.lower().startswith("local/"):
            base = req.channel.partition("/")[2]
            idx = e.next_chan_index("Local")
            name = f"Local/{base}-{idx:08x}"
            uid1 = req.channel_id
            l1 = e.new_channel("Local", base, uniqueid=uid1, name=name + ";1", context="agents", exten=ep_id)
            l2 = e.new_channel(
                "Local",
                base,
                uniqueid=f"{uid1};2" if uid1 else None,
                linkedid=l1.linkedid,
                name=name + ";2",
                context="agents",
                exten=ep_id,
            )
            l1.vars.update(req.variables)
            l2.vars.update(req.variables)
            e.newexten(l1, 1, "AppDial2", "(Outgoing Line)")
            for ch in (l1, l2):
                e.set_callerid(ch, *cid)
                e.set_connected(ch, *cid)
            e.emit(
                "LocalBridge",
                "call",
                [
                    *l1.snapshot("LocalOne"),
                    *l2.snapshot("LocalTwo"),
                    ("Context", "agents"),
                    ("Exten", ep_id),
                    ("LocalOptimization", "Yes"),
                ],
                l1.name,
            )
            e.dial_event("DialBegin", None, l1, [("DialString", base)])
            # [agents] on ;2: NoOp(${CALLERID(num)} calls ${EXTEN}), Dial(PJSIP/${EXTEN},20)
            e.newexten(l2, 1, "NoOp", f"{self.cid_num} calls {ep_id}")
            e.newexten(l2, 2, "Dial", f"PJSIP/{ep_id},20")
            agent = e.new_channel(
                "PJSIP", ep_id, linkedid=l1.linkedid, context="agents", exten="s", cid=(ep_id, ep.display)
            )
            e.newexten(agent, 1, "AppDial", "(Outgoing Line)")
            e.set_connected(agent, *cid)
            e.dial_event("DialBegin", l2, agent, [("DialString", ep_id)])
            e.set_connected(l2, ep_id, ep.display)
            agent.callee = True
            e.set_state(agent, RINGING)
            e.set_state(l1, RINGING)
            e.set_callerid(l1, ep_id, ep.display)
            e.dial_event("DialState", None, l1, [("DialStatus", "RINGING")])
            e.dial_event("DialState", l2, agent, [("DialStatus", "RINGING")])
            self.first, self.local2 = l1, l2
        else:
            agent = e.new_channel(
                "PJSIP", ep_id, uniqueid=req.channel_id, context=req.context, exten=req.exten
            )
            agent.vars.update(req.variables)
            e.newexten(agent, 1, "AppDial2", "(Outgoing Line)")
            e.set_callerid(agent, *cid)
            e.set_connected(agent, *cid)
            agent.callee = True
            e.set_state(agent, RINGING)
            self.first = agent
        agent.call = self
        self.agent = agent
        e.device_changed(ep)
        self.leg = RingLeg(self, ep, agent, e.now)
        self.people.ring(self.leg, req.timeout_ms / 1000.0)

    # ------------------------------------------------------------------ the agent leg's outcome
    def leg_timed_out(self, leg: RingLeg) -> None:
        """The agent did not answer within Timeout: Reason 3, Cause 19 (06c case 1)."""
        e = self.e
        leg.timers.clear()
        leg.done = True
        agent = self.agent
        assert agent is not None and self.first is not None
        self.done = True
        if self.local2 is not None:
            l1, l2 = self.first, self.local2
            e.emit("HangupRequest", "call", [*l2.snapshot(), ("Cause", "19")], l2.name)
            self.fail(3)
            e.hangup(l1, 19)
            e.dial_event("DialEnd", l2, agent, [("DialStatus", "CANCEL")])
            e.emit("SoftHangupRequest", "call", [*l2.snapshot(), ("Cause", "16")], l2.name)
            e.hangup(l2, 19)
            e.hangup(agent, 19, tech_cause=480)
        else:
            self.fail(3)
            e.hangup(agent, 19, tech_cause=480)
        e.call_ended()

    def leg_answered(self, leg: RingLeg) -> None:
        e = self.e
        leg.stop()
        agent, first = self.agent, self.first
        assert agent is not None and first is not None
        agent.callee = False
        e.set_state(agent, UP)
        if self.local2 is not None:
            l2 = self.local2
            e.dial_event("DialEnd", l2, agent, [("DialStatus", "ANSWER")])
            e.set_state(l2, UP)
            b = Bridge(e.bridge_id())
            e.emit("BridgeCreate", "call", b.header())
            self._respond_success()
            e.newexten(agent, 1, "AppDial", "(Outgoing Line)")
            b.channels.append(agent)
            agent.bridge = b
            e.emit("BridgeEnter", "call", b.header() + agent.snapshot(), agent.name)
            e.set_state(first, UP)
            e.dial_event("DialEnd", None, first, [("DialStatus", "ANSWER")])
            b.channels.append(l2)
            l2.bridge = b
            e.emit("BridgeEnter", "call", b.header() + l2.snapshot(), l2.name)
            self.bridges.append(b)
        else:
            self._respond_success()
        e.device_changed(leg.endpoint)
        self.timers.append(e.after(0, self._run_context))

    def _respond_success(self) -> None:
        first = self.first
        assert first is not None
        self._originate_response(4, first, first.name)

    def _run_context(self) -> None:
        """[callback] / [callback-did]: NoOp, (Set CALLERID from CTI_DID), Dial(PJSIP/${EXTEN}@pstn,15)."""
        e = self.e
        ch = self.first
        assert ch is not None
        ctx, exten = self.req.context, self.req.exten
        ch.context, ch.exten = ctx, exten
        if self.req.application:  # Originate Application=...: run it, then hang up
            app = self.req.application
            e.newexten(ch, 1, app, self.req.data)
            ch.app, ch.appdata = app, self.req.data
            self.timers.append(e.after(5.0, self._teardown))
            return
        if ctx not in ("callback", "callback-did") or not exten:
            e.newexten(ch, 1, "NoOp", f"no extension {exten} in {ctx}")
            self._teardown()
            return
        all_cid = f'"{ch.cid_name}" <{ch.cid_num}>'
        if ctx == "callback-did":
            did = ch.vars.get("CTI_DID", "")
            e.newexten(ch, 1, "NoOp", f"Callback to {exten} presenting {did}, was {all_cid}")
            e.newexten(ch, 2, "Set", f"CALLERID(num)={did}")
            e.set_callerid(ch, did, None)
            e.newexten(ch, 3, "Set", "CALLERID(name)=")
            e.set_callerid(ch, None, "")
            prio = 4
            record = ch.vars.get("CTI_RECORD", "")
            if record:  # ExecIf($["${CTI_RECORD}" != ""]?MixMonitor(${CTI_RECORD},b))
                e.newexten(ch, prio, "ExecIf", f"1?MixMonitor({record},b)")
                self.mixmonitor.start(ch, record)
                prio += 1
        else:
            e.newexten(ch, 1, "NoOp", f"Callback to {exten} as {all_cid}")
            prio = 2
        e.newexten(ch, prio, "Dial", f"PJSIP/{exten}@pstn,15")
        self.dial_prio = prio
        if not e.endpoints["pstn"].registered:
            self._trunk_unavailable()
            return
        cust = e.new_channel("PJSIP", "pstn", linkedid=ch.linkedid)
        cust.call = self
        self.customer = cust
        e.newexten(cust, 1, "AppDial", "(Outgoing Line)")
        e.set_callerid(cust, exten, None)
        e.set_connected(cust, ch.cid_num, ch.cid_name)
        cust.callee = True
        e.set_state(cust, RINGING)
        e.dial_event("DialBegin", ch, cust, [("DialString", f"{exten}@pstn")])
        # [callback-did] masks what the agent's side is told (CONNECTED_LINE_SEND_SUB with CTI_MASKED)
        shown = f"{exten[:3]}****{exten[-4:]}" if ctx == "callback-did" and len(exten) > 7 else exten
        e.set_connected(ch, shown, "")
        e.dial_event("DialState", ch, cust, [("DialStatus", "RINGING")])
        if self.local2 is not None:  # the agent's phone is told who it is now talking to (masked)
            e.set_connected(self.agent, shown, "")  # type: ignore[arg-type]
            e.set_callerid(self.local2, exten, None)
        e.device_changed(e.endpoints["pstn"])
        kind, delay, talk = self.people.customer(exten)
        self.customer_talk = self.people.customer_talk(talk)
        if kind == "answer" and delay < 15:
            self.timers.append(e.after(delay, self._customer_answer))
        elif kind == "busy":
            self.timers.append(e.after(min(delay, 15), self._customer_fail, "BUSY", 17, 486))
        elif kind == "congestion":
            self.timers.append(e.after(min(delay, 15), self._customer_fail, "CONGESTION", 34, 503))
        else:
            self.timers.append(e.after(15, self._customer_fail, "NOANSWER", 0, None))

    def _trunk_unavailable(self) -> None:
        """The trunk's contact is Unreachable: app_dial cannot create the channel (capture 18)."""
        e, ch = self.e, self.first
        assert ch is not None
        e.varset(ch, "DIALSTATUS", "CHANUNAVAIL")
        e.newexten(ch, self.dial_prio + 1, "NoOp", "DIALSTATUS=CHANUNAVAIL")
        e.newexten(ch, self.dial_prio + 2, "Hangup", "")
        self.outcome = "CHANUNAVAIL"
        self._teardown(cause=3, tech_cause=404)

    def _customer_fail(self, status: str, cause: int, tech: int | None) -> None:
        """Dial() to the customer failed (06b no answer; 06c busy): the context hangs up afterwards."""
        e = self.e
        ch, cust = self.first, self.customer
        assert ch is not None and cust is not None
        if cause:
            e.emit(
                "HangupRequest",
                "call",
                [*cust.snapshot(), ("Cause", str(cause))] + ([("TechCause", str(tech))] if tech else []),
                cust.name,
            )
        e.dial_event("DialEnd", ch, cust, [("DialStatus", status)])
        e.hangup(cust, cause, tech_cause=tech)
        e.varset(ch, "DIALSTATUS", status)
        e.newexten(ch, self.dial_prio + 1, "NoOp", f"DIALSTATUS={status}")
        e.newexten(ch, self.dial_prio + 2, "Hangup", "")
        self.outcome = status
        self._teardown()

    def _customer_answer(self) -> None:
        e = self.e
        ch, cust = self.first, self.customer
        assert ch is not None and cust is not None
        cust.callee = False
        e.set_state(cust, UP)
        e.dial_event("DialEnd", ch, cust, [("DialStatus", "ANSWER")])
        self.customer_answered_at = e.now
        e.newexten(cust, 1, "AppDial", "(Outgoing Line)")
        self.bridges.append(e.bridge(cust, ch))
        e.device_changed(e.endpoints["pstn"])
        self.outcome = "ANSWER"
        self.timers.append(e.after(self.customer_talk, self.customer_bye))

    def customer_bye(self) -> None:
        """The customer hangs up (06d)."""
        e = self.e
        if self.done:
            return
        ch, cust = self.first, self.customer
        assert ch is not None and cust is not None
        e.emit("HangupRequest", "call", [*cust.snapshot(), ("Cause", "16")], cust.name)
        br = cust.bridge
        e.bridge_leave(cust)
        e.bridge_leave(ch)
        e.hangup(cust, 16)
        if br is not None:
            e.bridge_destroy(br)
        self._teardown()

    def _teardown(self, cause: int = 16, tech_cause: int | None = None) -> None:
        """The originating channel's dialplan ends: it hangs up, the Local pair and the agent follow."""
        e = self.e
        if self.done:
            return
        self.done = True
        self._record()
        for t in self.timers:
            t.cancel()
        first, l2, agent = self.first, self.local2, self.agent
        assert first is not None and agent is not None
        e.emit("SoftHangupRequest", "call", [*first.snapshot(), ("Cause", "16")], first.name)
        if first.bridge is not None:
            e.bridge_leave(first)
        if l2 is not None:
            e.emit("HangupRequest", "call", [*l2.snapshot(), ("Cause", "16")], l2.name)
            e.hangup(first, 16)
            br = l2.bridge
            e.bridge_leave(l2)
            e.emit("SoftHangupRequest", "call", [*l2.snapshot(), ("Cause", "16")], l2.name)
            e.bridge_leave(agent)
            e.hangup(l2, 16)
            if br is not None:
                e.bridge_destroy(br)
            e.hangup(agent, 16)
        else:
            e.hangup(first, cause, tech_cause=tech_cause)
        e.call_ended()

    def _record(self) -> None:
        """The cdr_pgsql view of a callback (cti/sim/cdr.py callback_row)."""
        first = self.first
        if self.e.on_call_record is None or first is None or self.req.context != "callback-did":
            return
        cust = self.customer
        self.e.on_call_record({
            "kind": "callback", "uniqueid": first.uniqueid, "did": first.vars.get("CTI_DID", ""),
            "number": self.req.exten, "channel": first.name, "created": self.created, "ended": self.e.now,
            "trunk": "pstn", "ring_s": 15, "customer_channel": cust.name if cust is not None else "",
            "customer_answered": self.customer_answered_at,
        })  # fmt: skip

    def external_hangup(self, cause: int = 16, channel: Channel | None = None) -> None:
        """AMI Hangup on one of the legs."""
        e = self.e
        if self.done:
            return
        if self.leg is not None and not self.leg.done:
            self.leg.stop()
            self.done = True
            self.fail(0)
            for ch in (self.first, self.local2, self.agent):
                if ch is not None:
                    e.hangup(ch, cause, request=True)
            e.call_ended()
            return
        if self.customer is not None and not self.customer.hungup:
            for t in self.timers:
                t.cancel()
            if self.customer.state == UP:
                self.customer_bye()
                return
            e.dial_event("DialEnd", self.first, self.customer, [("DialStatus", "CANCEL")])
            e.hangup(self.customer, 0)
        self._teardown()

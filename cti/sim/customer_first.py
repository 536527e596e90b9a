"""Originate PJSIP/<number>@pstn (customer first), then [agents] dials the agent: captures 06c cases
2 and 3 (busy: Reason 0 with Cause 17; no answer: Reason 3 with Cause 19). An answering customer is put
through to the agent with Dial(PJSIP/agentN,20)."""

from __future__ import annotations

from cti.sim.core import Core
from cti.sim.model import RINGING, UP, Channel, RingLeg
from cti.sim.originate import Originated, OriginateRequest, split_callerid
from cti.sim.people import People
from cti.sim.sched import Timer


class CustomerFirstCall(Originated):
    """Originate PJSIP/<number>@pstn, then [agents] dials the agent (06c cases 2 and 3).

    Busy and no answer end as 06c shows (Reason 0 with Cause 17 / Reason 3 with Cause 19); an answering
    customer is put through to the agent with Dial(PJSIP/agentN,20)."""

    def __init__(self, e: Core, people: People, req: OriginateRequest) -> None:
        self.e = e
        self.people = people
        self.req = req
        self.cid_num, self.cid_name = split_callerid(req.callerid)
        self.number, _, trunk = req.channel.partition("/")[2].partition("@")
        # the channel is named after the endpoint dialled: PJSIP/pstn-... (06c), PJSIP/trunk-... for
        # the project's trunk (cti.outbound.dialer)
        self.trunk = trunk if trunk in e.endpoints else "pstn"
        self.cust: Channel | None = None
        self.agent: Channel | None = None
        self.timers: list[Timer] = []
        self.leg: RingLeg | None = None
        self.done = False
        self.talk = 20.0

    def reachable(self) -> bool:
        return True

    def _response(self, ok: bool, reason: int) -> None:
        if not self.req.send_response:
            return
        self._originate_response(reason, self.cust if ok else None, self.req.channel)

    def start(self) -> None:
        e = self.e
        e.call_started()
        cust = e.new_channel(
            "PJSIP", self.trunk, uniqueid=self.req.channel_id, context=self.req.context, exten=self.req.exten
        )
        cust.call = self
        cust.vars.update(self.req.variables)
        self.cust = cust
        e.newexten(cust, 1, "AppDial2", "(Outgoing Line)")
        e.set_callerid(cust, self.cid_num, self.cid_name)
        e.set_connected(cust, self.cid_num, self.cid_name)
        e.dial_event("DialBegin", None, cust, [("DialString", f"{self.number}@{self.trunk}")])
        e.device_changed(e.endpoints[self.trunk])
        kind, delay, talk = self.outcome()
        self.talk = self.people.customer_talk(talk)
        timeout = self.req.timeout_ms / 1000.0
        if kind in ("busy", "congestion"):
            self.timers.append(e.after(min(delay, timeout), self._rejected, kind))
            return
        self.timers.append(e.after(min(0.5, timeout), self._ringing))
        if kind == "answer" and delay < timeout:
            self.timers.append(e.after(delay, self._answered))
        else:
            self.timers.append(e.after(timeout, self._timeout))

    def outcome(self) -> tuple[str, float, float | None]:
        """How the dialled customer reacts (a test's `set_customer`, else the default)."""
        return self.people.customer(self.number)

    def _ringing(self) -> None:
        e, cust = self.e, self.cust
        assert cust is not None
        cust.callee = True
        e.set_state(cust, RINGING)
        e.device_changed(e.endpoints[self.trunk])
        e.dial_event("DialState", None, cust, [("DialStatus", "RINGING")])

    def _rejected(self, kind: str) -> None:
        e, cust = self.e, self.cust
        assert cust is not None
        cause, tech = (17, 486) if kind == "busy" else (34, 503)
        e.emit(
            "HangupRequest",
            "call",
            [*cust.snapshot(), ("Cause", str(cause)), ("TechCause", str(tech))],
            cust.name,
        )
        e.dial_event("DialEnd", None, cust, [("DialStatus", "BUSY" if kind == "busy" else "CONGESTION")])
        self._response(False, 0)  # 06c: a 486 gives Reason 0, not 5
        e.hangup(cust, cause, tech_cause=tech)
        self._end()

    def _timeout(self) -> None:
        e, cust = self.e, self.cust
        assert cust is not None
        self._response(False, 3)
        e.hangup(cust, 19, tech_cause=480)
        self._end()

    def _answered(self) -> None:
        e, cust = self.e, self.cust
        assert cust is not None
        for t in self.timers:
            t.cancel()
        cust.callee = False
        e.set_state(cust, UP)
        e.dial_event("DialEnd", None, cust, [("DialStatus", "ANSWER")])
        self._response(True, 4)
        ep = e.endpoints.get(self.req.exten)
        if self.req.context != "agents" or ep is None or not ep.registered:
            e.newexten(cust, 1, "NoOp", f"no agent {self.req.exten}")
            e.hangup(cust, 16, soft=True)
            self._end()
            return
        e.newexten(cust, 1, "NoOp", f"{cust.cid_num} calls {ep.id}")
        e.newexten(cust, 2, "Dial", f"PJSIP/{ep.id},20")
        agent = e.new_channel(
            "PJSIP", ep.id, linkedid=cust.linkedid, context="agents", exten="s", cid=(ep.id, ep.display)
        )
        agent.call = self
        agent.callee = True
        self.agent = agent
        e.newexten(agent, 1, "AppDial", "(Outgoing Line)")
        e.set_connected(agent, self.number, "")
        e.dial_event("DialBegin", cust, agent, [("DialString", f"PJSIP/{ep.id}")])
        e.set_state(agent, RINGING)
        e.dial_event("DialState", cust, agent, [("DialStatus", "RINGING")])
        e.device_changed(ep)
        self.leg = RingLeg(self, ep, agent, e.now)
        self.people.ring(self.leg, 20.0)

    def leg_answered(self, leg: RingLeg) -> None:
        e, cust, agent = self.e, self.cust, self.agent
        assert cust is not None and agent is not None
        leg.stop()
        agent.callee = False
        e.set_state(agent, UP)
        e.dial_event("DialEnd", cust, agent, [("DialStatus", "ANSWER")])
        e.bridge(agent, cust)
        e.device_changed(leg.endpoint)
        self.timers.append(e.after(self.talk, self.customer_bye))

    def leg_timed_out(self, leg: RingLeg) -> None:
        e, cust, agent = self.e, self.cust, self.agent
        leg.timers.clear()
        assert cust is not None and agent is not None
        leg.done = True
        e.dial_event("DialEnd", cust, agent, [("DialStatus", "NOANSWER")])
        e.hangup(agent, 0)
        e.varset(cust, "DIALSTATUS", "NOANSWER")
        e.newexten(cust, 3, "Hangup", "")
        e.hangup(cust, 16, soft=True)
        self._end()

    def customer_bye(self) -> None:
        e, cust, agent = self.e, self.cust, self.agent
        if self.done or cust is None or agent is None:
            return
        e.emit("HangupRequest", "call", [*cust.snapshot(), ("Cause", "16")], cust.name)
        br = cust.bridge
        e.bridge_leave(cust)
        e.bridge_leave(agent)
        e.hangup(cust, 16)
        e.hangup(agent, 16)
        if br is not None:
            e.bridge_destroy(br)
        self._end()

    def external_hangup(self, cause: int = 16, channel: Channel | None = None) -> None:
        e = self.e
        if self.done:
            return
        if self.agent is not None and self.agent.state == UP:
            self.customer_bye()
            return
        if self.leg is not None and not self.leg.done:
            self.leg.stop()
            if self.agent is not None:
                e.hangup(self.agent, 0)
        if self.cust is not None and self.cust.state != UP:
            self._response(False, 0)
        if self.cust is not None:
            e.hangup(self.cust, cause, request=True)
        self._end()

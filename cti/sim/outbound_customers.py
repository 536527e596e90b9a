"""Outbound customers: the people a campaign dials, and the project's `[cti-outbound]` context that
their answered call runs (dialplan/extensions.conf). Not Asterisk's behaviour but the world's: whether
a customer is busy, unreachable or answers (by local hour), and, once an agent talks to them, whether
they buy, refuse or say never call again (scenario `[outbound]`, cti.sim.scenario.OutboundConfig).

What Asterisk sends for each follows the captures, through cti.sim.customer_first:
- busy: HangupRequest Cause 17, DialEnd BUSY, OriginateResponse Failure Reason 0 (Uniqueid
  `<unknown>`), then Hangup Cause 17 — in that order (06c case 3);
- no answer within the Originate's Timeout: OriginateResponse Failure Reason 3, Hangup Cause 19 (06c
  case 2, 06b's customer leg);
- congestion (a 503 from the carrier): Cause 34 / TechCause 503, Reason 0. No capture has it; it
  follows the busy shape, which is what app_dial does for any failure response;
- answered: OriginateResponse Success Reason 4 naming PJSIP/<trunk>-N with Uniqueid = the Originate's
  ChannelId (06a, 18's cti-cb-18-1).

`[cti-outbound]` itself has no capture: it is modelled from its text (Set CALLERID to the masked
number, then Dial(PJSIP/<agent>,<connect timeout>) as capture 12's preferred Dial looks on the wire,
or Queue(<queue>,...,<connect timeout>) as captures 01-03 look; nobody by then: Playback of the
company message and Hangup). The agent leg's pre-dial handler (`b(cti-agent-leg...)`) is modelled as
app_queue does for inbound calls (masked CallerID on the agent leg); MixMonitor of outbound calls is
not modelled (package docstring).

Each decision is drawn from a stream of its own, seeded by (scenario seed, number, how many times
this number was dialled): a contact behaves the same whatever the timing of the run. The `ledger`
is the simulator's own record of every outbound dial, to check the CTI's figures against."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cti.sim.app_queue import AppQueue, QueueEntry
from cti.sim.core import Core
from cti.sim.customer_first import CustomerFirstCall
from cti.sim.model import RINGING, UP, Bridge, CallSpec, Channel, Member, RingLeg
from cti.sim.originate import OriginateRequest
from cti.sim.people import People
from cti.sim.scenario import OutboundConfig

CONTEXT = "cti-outbound"
VERDICTS = ("sale", "refusal", "never_call", "no_decision")


def contact_rows(cfg: OutboundConfig, seed: int) -> Iterator[tuple[str, str, str]]:
    """(name, mobile number, segment) for the campaign's list: distinct, the same for a seed."""
    rnd = random.Random(f"contacts|{seed}|{cfg.contact_seed}")
    seen: set[str] = set()
    prefixes = ("135", "136", "137", "138", "139", "150", "151", "158", "186", "187", "188", "199")
    i = 0
    while i < cfg.contacts:
        number = rnd.choice(prefixes) + f"{rnd.randrange(10**8):08d}"
        if number in seen:
            continue
        seen.add(number)
        i += 1
        yield f"客户{i}", number, "boss" if rnd.random() < cfg.boss_share else ""


@dataclass
class DialRecord:
    """One outbound dial as the simulated world saw it (the ledger's row)."""

    dial_id: int | None
    channel_id: str
    number: str
    sent_at: float
    result: str = "ringing"  # busy | congestion | noanswer | answered
    inbound_waiting_s: float = 0.0  # longest wait of an inbound caller in a queue when it arrived
    answered_at: float | None = None
    connected_at: float | None = None
    agent: str | None = None
    abandoned: bool = False
    verdict: str | None = None
    ended_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class OutboundCustomers:
    """The dialled customers of a scenario, and the ledger of what happened to each dial."""

    core: Core
    cfg: OutboundConfig
    ledger: list[DialRecord] = field(default_factory=list)
    dialled: dict[str, int] = field(default_factory=dict)
    # told (dial id, agent, verdict) when a connected call ends: the agent posts the disposition
    on_verdict: list[Callable[[int, str, str], None]] = field(default_factory=list)

    def _rng(self, number: str, what: str) -> random.Random:
        return random.Random(f"{self.core.scenario.seed}|{number}|{self.dialled.get(number, 0)}|{what}")

    def outcome(self, number: str, ring_s: float) -> tuple[str, float]:
        """('busy'|'congestion'|'answer'|'noanswer', after s) for this dial of `number`."""
        self.dialled[number] = self.dialled.get(number, 0) + 1
        rnd = self._rng(number, "reach")
        cfg = self.cfg
        r = rnd.random()
        if r < cfg.busy_rate:
            return "busy", rnd.uniform(0.3, 2.0)
        if r < cfg.busy_rate + cfg.congestion_rate:
            return "congestion", rnd.uniform(0.2, 1.0)
        hour = datetime.fromtimestamp(self.core.now, UTC).astimezone(self.core.scenario.tz).hour
        if rnd.random() < cfg.answer_chance(hour):
            delay = cfg.answer_delay.sample(rnd)
            if delay < ring_s:
                return "answer", delay
        return "noanswer", ring_s

    def verdict(self, number: str) -> tuple[str, float]:
        """(verdict, talk seconds) of a customer an agent talks to."""
        rnd = self._rng(number, "verdict")
        cfg = self.cfg
        r = rnd.random()
        if r < cfg.purchase_rate:
            return "sale", cfg.talk_purchase.sample(rnd)
        if r < cfg.purchase_rate + cfg.refusal_rate:
            return "refusal", cfg.talk_refusal.sample(rnd)
        if r < cfg.purchase_rate + cfg.refusal_rate + cfg.never_call_rate:
            return "never_call", cfg.talk_refusal.sample(rnd)
        return "no_decision", cfg.talk_other.sample(rnd)

    def inbound_wait(self, app_queue: AppQueue) -> float:
        """How long the longest-waiting inbound caller has waited in any queue (0: nobody)."""
        now = self.core.now
        waits = [
            now - en.joined
            for q in app_queue.queues.values()
            for en in q.entries
            if not isinstance(en.call, OutboundCall)
        ]
        return max(waits, default=0.0)


class OutboundCall(CustomerFirstCall):
    """An Originate of the outbound dialer: PJSIP/<number>@<trunk> into `[cti-outbound]` (module
    docstring for the captures each part follows)."""

    inbound = False  # app_queue.QueueCaller: not in the inbound caller figures
    disposition_after_s = 2.0  # the agent picks the verdict in the panel during wrap-up

    def __init__(
        self,
        e: Core,
        people: People,
        app_queue: AppQueue,
        customers: OutboundCustomers,
        req: OriginateRequest,
    ) -> None:
        super().__init__(e, people, req)
        self.app_queue = app_queue
        self.customers = customers
        v = req.variables
        dial_id = v.get("CTI_DIAL_ID", "")
        self.rec = DialRecord(
            int(dial_id) if dial_id.isdigit() else None, req.channel_id or "", self.number, e.now
        )
        self.rec.inbound_waiting_s = customers.inbound_wait(app_queue)
        customers.ledger.append(self.rec)
        self.queue_name = v.get("CTI_QUEUE", "") or "sales"
        self.preferred = v.get("CTI_PREFERRED", "")
        self.masked = v.get("CTI_MASKED", "")
        try:
            self.connect_s = float(v.get("CTI_CONNECT_TIMEOUT", "2") or 2)
        except ValueError:
            self.connect_s = 2.0
        # what app_queue needs of a caller (cti.sim.app_queue.QueueCaller)
        self.spec = CallSpec(caller=self.number, did=self.cid_num, patience=3600.0)
        self.entry: QueueEntry | None = None
        self.answered = False
        self.agent_channel = ""
        self.joined_queue_at: float | None = None
        self.member: Member | None = None
        self.bridge_: Bridge | None = None
        self.prio = 0

    @property
    def caller(self) -> Channel:
        assert self.cust is not None
        return self.cust

    def outcome(self) -> tuple[str, float, float | None]:
        if self.number in self.people.customer_outcomes:  # a test's set_customer wins
            kind, delay, talk = self.people.customer(self.number)
        else:
            kind, delay = self.customers.outcome(self.number, self.req.timeout_ms / 1000.0)
            talk = None
        self.rec.result = {"answer": "answered"}.get(kind, kind)
        if kind == "answer" and delay >= self.req.timeout_ms / 1000.0:
            self.rec.result = "noanswer"
        return kind, delay, talk

    def _end(self) -> None:
        if not self.done and self.rec.ended_at is None:
            self.rec.ended_at = self.e.now
        super()._end()

    def _app(self, app: str, data: str) -> None:
        self.prio += 1
        self.e.newexten(self.caller, self.prio, app, data)

    # ---- [cti-outbound] --------------------------------------------------------------------------
    def _answered(self) -> None:
        e, cust = self.e, self.caller
        for t in self.timers:
            t.cancel()
        self.timers.clear()
        cust.callee = False
        e.set_state(cust, UP)
        e.dial_event("DialEnd", None, cust, [("DialStatus", "ANSWER")])
        self._response(True, 4)
        self.rec.answered_at = e.now
        cust.context, cust.exten = CONTEXT, "s"
        self._app("NoOp", f"Outbound dial {self.rec.dial_id} for {self.queue_name}")
        self._app("Set", f"CALLERID(num)={self.masked}")
        e.set_callerid(cust, self.masked, None)
        self._app("Set", f"CALLERID(name)={self.masked}")
        e.set_callerid(cust, None, self.masked)
        self._app("Set", f"__CTI_RECORD_FILE={cust.vars.get('CTI_RECORD', '')}")
        self._app("GotoIf", f'$["{self.preferred}" = ""]?queue')
        ep = e.endpoints.get(self.preferred) if self.preferred else None
        if self.preferred:
            self._app("Dial", f"PJSIP/{self.preferred},{self.connect_s:g},b(cti-agent-leg^s^1({self.masked}))"
                      "U(cti-agent-connect)")  # fmt: skip
            if ep is None or not ep.registered:
                e.varset(cust, "DIALSTATUS", "CHANUNAVAIL")
                self._app("GotoIf", '$["CHANUNAVAIL" = "ANSWER"]?done:abandon')
                self._abandon()
                return
            self._dial_agent(ep.id)
            return
        self.prio = 7
        self._app("Queue", f"{self.queue_name},b(cti-agent-leg^s^1({self.masked})),,,{self.connect_s:g},,"
                  "cti-agent-connect")  # fmt: skip
        q = self.app_queue.queues.get(self.queue_name)
        if q is None:
            self.queue_done("UNKNOWN")
            return
        self.joined_queue_at = e.now
        self.app_queue.join(self, q)
        if self.entry is not None and not self.answered:
            entry = self.entry
            self.timers.append(e.after(self.connect_s, self.app_queue.exit, entry, "TIMEOUT"))

    def _dial_agent(self, ep_id: str) -> None:
        """Dial(PJSIP/<claimed agent>,<connect timeout>): capture 12's preferred-agent Dial."""
        e, cust = self.e, self.caller
        ep = e.endpoints[ep_id]
        ag = e.new_channel(
            "PJSIP", ep.id, linkedid=cust.linkedid, context="agents", exten="s", cid=(ep.id, ep.display)
        )
        ag.call = self
        ag.callee = True
        self.agent = ag
        ag.conn_num, ag.conn_name = self.masked, self.masked
        e.set_callerid(ag, self.masked, self.masked)
        e.dial_event("DialBegin", cust, ag, [("DialString", ep.id)])
        e.set_connected(cust, ep.id, ep.display)
        e.set_state(ag, RINGING)
        e.dial_event("DialState", cust, ag, [("DialStatus", "RINGING")])
        e.device_changed(ep)
        self.leg = RingLeg(self, ep, ag, e.now)
        self.joined_queue_at = e.now
        self.people.ring(self.leg, self.connect_s)

    def leg_answered(self, leg: RingLeg) -> None:
        e, cust, ag = self.e, self.caller, leg.channel
        leg.stop()
        ag.callee = False
        ag.answered_at = e.now
        e.set_state(ag, UP)
        e.dial_event("DialEnd", cust, ag, [("DialStatus", "ANSWER")])
        self.answered = True
        self.agent_channel = ag.name
        self.connected(ag, None, e.now - (self.joined_queue_at or e.now))

    def leg_timed_out(self, leg: RingLeg) -> None:
        e, cust = self.e, self.caller
        leg.stop()
        e.dial_event("DialEnd", cust, leg.channel, [("DialStatus", "NOANSWER")])
        e.hangup(leg.channel, 0)
        e.device_changed(leg.endpoint)
        self.agent = None
        e.varset(cust, "DIALSTATUS", "NOANSWER")
        self._app("GotoIf", '$["NOANSWER" = "ANSWER"]?done:abandon')
        self._abandon()

    # app_queue's side (QueueCaller)
    def connected(self, ag: Channel, member: Member | None, hold: float) -> None:
        e = self.e
        self.agent = ag
        self.member = member
        self.rec.connected_at = e.now
        self.rec.agent = ag.endpoint
        self.bridge_ = e.bridge(ag, self.caller)
        verdict, talk = self.customers.verdict(self.number)
        if self.number in self.people.customer_outcomes:
            talk = self.people.customer_talk(self.people.customer(self.number)[2])
        self.rec.verdict = verdict
        self.talk_started = e.now
        self.timers.append(e.after(talk, self.customer_bye))

    def abandon(self) -> None:  # patience (an hour) never runs out within the connect timeout
        return

    def queue_done(self, status: str) -> None:
        """Queue() returned without an agent (TIMEOUT, JOINEMPTY...): the company message."""
        e = self.e
        for t in self.timers:
            t.cancel()
        self.timers.clear()
        e.varset(self.caller, "QUEUESTATUS", status)
        self._abandon()

    def _abandon(self) -> None:
        """Nobody took the answered customer within the connect timeout (R-PACE): they hear the
        company's message, and the call ends."""
        self.rec.abandoned = True
        self.prio = 8
        self._app("Playback", "cti/outbound-sorry")
        self.timers.append(self.e.after(self.customers.cfg.company_message_s, self._message_over))

    def _message_over(self) -> None:
        if self.done:
            return
        self._app("Hangup", "")
        self.e.hangup(self.caller, 16, soft=True)
        self._end()

    def customer_bye(self) -> None:
        """The customer hangs up after the talk (capture 01's order for a queue call: AgentComplete
        Reason caller; capture 12's for the Dial: no queue events)."""
        e, cust, ag, br = self.e, self.caller, self.agent, self.bridge_
        if self.done or ag is None or br is None:
            return
        e.emit("HangupRequest", "call", cust.snapshot(), cust.name)
        q = self.app_queue.queues.get(self.queue_name) if self.member is not None else None
        if q is not None and self.member is not None:
            talk = e.now - self.talk_started
            e.dial_event(
                "AgentComplete",
                cust,
                ag,
                [
                    ("Queue", q.name),
                    ("Interface", self.member.interface),
                    ("MemberName", self.member.name),
                    ("HoldTime", str(int(self.talk_started - (self.joined_queue_at or e.now)))),
                    ("TalkTime", str(int(talk))),
                    ("Reason", "caller"),
                ],
            )
        e.bridge_leave(cust)
        e.bridge_leave(ag)
        e.bridge_destroy(br)
        e.hangup(cust, 16)
        e.hangup(ag, 16)
        self.app_queue.member_call_done(self.member, e.endpoints[ag.endpoint], q)
        self._end()
        e.after(self.disposition_after_s, self._told)

    def _told(self) -> None:
        rec = self.rec
        if rec.dial_id is not None and rec.agent and rec.verdict:
            for fn in list(self.customers.on_verdict):
                fn(rec.dial_id, rec.agent, rec.verdict)

    def external_hangup(self, cause: int = 16, channel: Channel | None = None) -> None:
        if self.done:
            return
        if self.bridge_ is not None and self.agent is not None and self.agent.state == UP:
            self.customer_bye()
            return
        if self.entry is not None and self.entry in self.entry.queue.entries:
            self.app_queue.exit_silent(self.entry)
        super().external_hangup(cause, channel)


def is_outbound(req: OriginateRequest) -> bool:
    return req.context == CONTEXT

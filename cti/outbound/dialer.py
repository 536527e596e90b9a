"""The outbound dialer: one pacing decision per tick, each dial claimed (cti.outbound.eligibility)
and logged before its Originate, outcomes from AMI and from the agent's disposition.

Customer first: Originate Channel PJSIP/<number>@<trunk> into context `cti-outbound`, which masks
the number for the agent (R-MASK), records (R-REC) and offers the call to the claimed agent
(progressive/preview) or the queue (predictive) for at most `abandon_connect_s`; nobody free by then
means an abandoned call: the customer hears the company message and the call ends.

Outcome matching follows the captures: the customer leg's Uniqueid is our ChannelId (capture 18,
cti-cb-18-1); a failed Originate's OriginateResponse carries Uniqueid `<unknown>` (06c) and is matched
by ActionID. A busy customer's Hangup (Cause 17) comes only AFTER that OriginateResponse (Reason 0),
but its HangupRequest (Cause 17) comes before it (06c case 3): the cause is kept from there."""

from __future__ import annotations

import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import structlog

from cti.callbacks.originate import OriginateNotSent
from cti.clock import Clock
from cti.masking import mask_number
from cti.outbound import outcomes
from cti.outbound.eligibility import Claim, next_eligible, park_ineligible, try_claim
from cti.outbound.pacing import (
    AbandonWindow,
    Floor,
    RateTracker,
    Steer,
    inbound_gate,
    predictive_dials,
    progressive_dials,
    steer_overdial,
)
from cti.outbound.rules import RuleSet
from cti.routing.numbers import trunk_form

log = structlog.get_logger(__name__)

CONTEXT = "cti-outbound"


@dataclass(frozen=True)
class OutboundOriginate:
    channel_id: str  # cti-ob-<dial id>
    dial_id: int
    number: str
    did: str
    queue: str
    agent: str | None
    trunk: str = "trunk"
    ring_s: int = 30
    connect_s: float = 2.0

    def headers(self) -> dict[str, str]:
        """AMI headers after Action/ActionID, in wire order."""
        variables = [
            f"CTI_DIAL_ID={self.dial_id}",
            f"CTI_QUEUE={self.queue}",
            f"CTI_PREFERRED={self.agent or ''}",
            f"CTI_MASKED={mask_number(trunk_form(self.number))}",
            f"CTI_CONNECT_TIMEOUT={self.connect_s:g}",
        ]
        return {
            "Channel": f"PJSIP/{trunk_form(self.number)}@{self.trunk}",
            "Context": CONTEXT,
            "Exten": "s",
            "Priority": "1",
            "CallerID": self.did,  # R-OUT-CID
            "Timeout": str(self.ring_s * 1000),
            "Variable": ",".join(variables),
            "Async": "true",
            "ChannelId": self.channel_id,
        }


class FloorView(Protocol):
    def free_agents(self) -> list[str]: ...
    def busy_agents(self) -> int: ...
    def inbound_waiting(self) -> int: ...
    def in_peak(self) -> bool: ...


Originate = Callable[[OutboundOriginate], Awaitable[Mapping[str, Any]]]

_BUSY, _CONGESTION, _NO_ANSWER = {"17"}, {"34", "38", "42"}, {"18", "19", "21"}


def outcome_from_hangup(cause: str | None) -> str:
    if cause in _BUSY:
        return "busy"
    if cause in _CONGESTION:
        return "congestion"
    if cause in _NO_ANSWER:
        return "no_answer"
    return "failed"


@dataclass
class _Live:
    sent_at: datetime
    agent: str | None
    answered_at: datetime | None = None
    connected_at: datetime | None = None
    connected_agent: str | None = None
    cause: str | None = None  # HangupRequest's Cause, seen before a failed OriginateResponse (06c)


@dataclass
class StepResult:
    dials: int
    gate: str | None = None
    wanted: int = 0


@dataclass
class Dialer:
    pool: Any
    campaign_id: int
    mode: str
    queue: str
    rules: RuleSet
    rule_set_id: int
    clock: Clock
    originate: Originate
    floor: FloorView
    abandon_connect_s: float = 2.0
    abandon_window_s: float = 3600.0
    abandon_max: float = 0.03
    trunk: str = "trunk"
    process: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    overdial: float = 1.0
    silent_after_s: float = 120.0  # ring time (30 s) + generous slack for a late OriginateResponse
    park_every_s: float = 600.0  # skipped contacts moved off the head of the due order this often
    _parked_at: float = float("-inf")
    live: dict[int, _Live] = field(default_factory=dict)
    by_action: dict[str, int] = field(default_factory=dict)
    rates: RateTracker = field(default_factory=RateTracker)
    window: AbandonWindow = field(init=False)
    last: StepResult = field(default_factory=lambda: StepResult(0))

    def __post_init__(self) -> None:
        self.window = AbandonWindow(self.abandon_window_s)

    def in_flight(self) -> int:
        return sum(1 for d in self.live.values() if d.answered_at is None)

    def snapshot(self) -> Floor:
        f = self.floor
        return Floor(
            len(f.free_agents()), f.busy_agents(), self.in_flight(), f.inbound_waiting(), f.in_peak()
        )

    async def step(self) -> StepResult:
        """One pacing decision. The gate is checked first and again before each Originate, so an
        inbound caller who starts waiting mid-step stops the rest of the step."""
        self.last = await self._step()
        return self.last

    def status(self) -> dict[str, Any]:
        """What a supervisor watches (VICIdial's dial level and drop rate): the factor, the dials in
        flight, the abandon rate over the rolling window against its ceiling, and why the last step
        dialed nothing, if it did not."""
        rate, answered = self.window.rate(self.clock.now().timestamp())
        return {
            "campaign": self.campaign_id,
            "mode": self.mode,
            "queue": self.queue,
            "overdial": round(self.overdial, 3),
            "in_flight": self.in_flight(),
            "in_call": sum(1 for d in self.live.values() if d.answered_at is not None),
            "answer_rate": round(self.rates.answer_rate, 3),
            "abandon_rate": round(rate, 4),
            "abandon_window_answered": answered,
            "abandon_max": self.abandon_max,
            "gate": self.last.gate,
            "wanted": self.last.wanted,
            "dialed": self.last.dials,
        }

    async def _step(self) -> StepResult:
        await self._expire_silent()
        floor = self.snapshot()
        gate = inbound_gate(floor)
        if gate is not None or self.mode == "preview":
            return StepResult(0, gate)
        now = self.clock.now()
        ts = now.timestamp()
        if self.mode == "progressive":
            want = progressive_dials(floor)
        else:
            ringing = [(now - d.sent_at).total_seconds() for d in self.live.values() if d.answered_at is None]
            want = predictive_dials(
                floor,
                self.rates.rates(),
                self.overdial,
                ring=self.rates.ring_times(),
                ringing=ringing,
                connect_s=self.abandon_connect_s,
            )
        if want <= 0:
            return StepResult(0, None, 0)
        free = [a for a in self.floor.free_agents() if not self._holds(a)]
        sent = 0
        async with self.pool.acquire() as conn:
            if ts - self._parked_at >= self.park_every_s:
                await park_ineligible(conn, self.campaign_id, now, self.rules)
                self._parked_at = ts
            candidates = await next_eligible(conn, self.campaign_id, now, self.rules, limit=want * 2 + 5)
            for cand in candidates:
                if sent >= want:
                    break
                if inbound_gate(self.snapshot()) is not None:
                    return StepResult(sent, "inbound callers waiting", want)
                agent = None
                if self.mode == "progressive":
                    if not free:
                        break
                    agent = free[0]
                claim = await try_claim(
                    conn,
                    campaign_id=self.campaign_id,
                    contact_id=cand.contact_id,
                    now=now,
                    rules=self.rules,
                    rule_set=self.rule_set_id,
                    process=self.process,
                    agent=agent,
                )
                if claim is None:
                    continue  # taken or no longer eligible since the page was read
                if agent is not None:
                    free.pop(0)
                await self._send(conn, claim)
                sent += 1
        return StepResult(sent, None, want)

    async def _expire_silent(self) -> None:
        """A dial with no answer and no result long after its ring time (AMI lost mid-call, a
        frame never seen) is closed as failed, so its number and agent are not held for ever."""
        now = self.clock.now()
        limit = self.silent_after_s
        for dial_id, d in list(self.live.items()):
            if d.answered_at is None and (now - d.sent_at).total_seconds() > limit:
                log.warning("outbound_dial_silent", dial_id=dial_id)
                await self.ended(dial_id, "failed")

    async def dial_one(self, contact_id: int, agent: str) -> dict[str, Any] | None:
        """One dial chosen by the agent (preview): the same gate, the same claim. None: not dialed
        (inbound callers wait, peak mode, the contact is no longer eligible, or the agent is busy)."""
        if inbound_gate(self.snapshot()) is not None:
            return None
        async with self.pool.acquire() as conn:
            claim = await try_claim(
                conn,
                campaign_id=self.campaign_id,
                contact_id=contact_id,
                now=self.clock.now(),
                rules=self.rules,
                rule_set=self.rule_set_id,
                process=self.process,
                agent=agent,
            )
            if claim is None:
                return None
            await self._send(conn, claim)
        return {"dial_id": claim.dial_id, "number": mask_number(trunk_form(claim.number))}

    def _steer(self, abandoned: bool) -> None:
        rate, answered = self.window.rate(self.clock.now().timestamp())
        self.overdial = steer_overdial(self.overdial, abandoned, rate, answered, Steer(self.abandon_max))

    def _holds(self, agent: str) -> bool:
        return any(d.agent == agent for d in self.live.values())

    async def _send(self, conn: Any, claim: Claim) -> None:
        req = OutboundOriginate(
            claim.channel_id,
            claim.dial_id,
            claim.number,
            claim.did,
            self.queue,
            claim.agent,
            trunk=self.trunk,
            connect_s=self.abandon_connect_s,
        )
        self.live[claim.dial_id] = _Live(self.clock.now(), claim.agent)
        try:
            reply = await self.originate(req)
        except OriginateNotSent:  # never left this process: release the number and the agent
            await self.ended(claim.dial_id, "originate_error")
            return
        except Exception as e:  # sent or not: unknown; the claim row holds the number until resolved
            log.warning("outbound_originate_unknown", channel_id=claim.channel_id, error=type(e).__name__)
            return
        reply = reply or {}
        if reply.get("ActionID"):
            self.by_action[str(reply["ActionID"])] = claim.dial_id
        if reply.get("Response") == "Error":
            await self.ended(claim.dial_id, "originate_error")

    # ---- outcomes (from AMI, or from the simulator through the same calls) ----------------------
    async def answered(self, dial_id: int) -> None:
        d = self.live.get(dial_id)
        if d is None or d.answered_at is not None:
            return
        now = self.clock.now()
        d.answered_at = now
        self.rates.dial_result(True, (now - d.sent_at).total_seconds())
        async with self.pool.acquire() as conn:
            await outcomes.record_answer(conn, dial_id, now, self.rules)

    async def connected(self, dial_id: int, agent: str | None = None) -> None:
        d = self.live.get(dial_id)
        if d is not None and d.connected_at is None:
            d.connected_at = self.clock.now()
            d.connected_agent = agent or d.agent
            if d.answered_at is not None and d.agent is None:  # a predictive answer reached an agent
                self._steer(abandoned=False)
            async with self.pool.acquire() as conn:
                await outcomes.record_connect(conn, dial_id, d.connected_at, d.connected_agent)

    async def ended(self, dial_id: int, outcome: str | None = None) -> None:
        d = self.live.pop(dial_id, None)
        now = self.clock.now()
        if d is None:
            return
        if d.answered_at is not None:
            # [cti-outbound] gives the agent or queue CTI_CONNECT_TIMEOUT (= abandon_connect_s) and
            # then plays the company message: a connect frame means the PBX connected in time. Our
            # own clock would add AMI latency to the measure (one call in 300 misjudged at 30x).
            connected = d.connected_at is not None
            self.window.add(d.answered_at.timestamp(), not connected)
            if not connected and d.agent is None:
                self._steer(abandoned=True)
            outcome = "answered" if connected else "abandoned"
            if d.connected_at is not None:
                # the agent is free again only after the queue's wrap-up: counting talk alone made
                # short calls look shorter and the predictive pacer over-dial (abandons)
                wrap = getattr(self.floor, "wrapup_s", None)
                self.rates.handled((now - d.connected_at).total_seconds() + (wrap() if wrap else 0.0))
        else:
            self.rates.dial_result(False, (now - d.sent_at).total_seconds())
            outcome = outcome or "failed"
        talk = int((now - d.connected_at).total_seconds()) if d.connected_at else None
        async with self.pool.acquire() as conn:
            await outcomes.record_end(
                conn,
                dial_id,
                outcome,
                now,
                connected_at=d.connected_at,
                talk_s=talk,
                connected_agent=d.connected_agent,
            )

    async def handle_ami(self, frame: Mapping[str, Any]) -> None:
        """OriginateResponse, AgentConnect (queue), DialEnd (claimed agent) and Hangup of our
        customer legs (ChannelId cti-ob-N)."""
        ev = frame.get("Event")
        if ev == "OriginateResponse":
            dial_id = _dial_of(frame.get("Uniqueid")) or self.by_action.pop(str(frame.get("ActionID")), None)
            if dial_id is None:
                return
            if frame.get("Response") == "Success":
                await self.answered(dial_id)
            elif dial_id in self.live:
                cause = self.live[dial_id].cause
                if cause is not None:  # busy / congestion: HangupRequest came first (06c case 3)
                    outcome = outcome_from_hangup(cause)
                else:
                    outcome = "no_answer" if frame.get("Reason") == "3" else "failed"
                await self.ended(dial_id, outcome)
        elif ev == "HangupRequest":
            dial_id = _dial_of(frame.get("Uniqueid"))
            d = self.live.get(dial_id) if dial_id is not None else None
            if d is not None and d.answered_at is None and frame.get("Cause"):
                d.cause = str(frame.get("Cause"))
        elif ev == "AgentConnect":
            dial_id = _dial_of(frame.get("Linkedid")) or _dial_of(frame.get("Uniqueid"))
            if dial_id is not None:
                member = str(frame.get("MemberName") or frame.get("Interface") or "")
                await self.connected(dial_id, member.removeprefix("PJSIP/") or None)
        elif ev == "DialEnd" and frame.get("DialStatus") == "ANSWER":
            # progressive/preview: cti-outbound Dial()s the claimed agent directly (no queue, so no
            # AgentConnect); DialEnd ANSWER on our channel, DestChannel PJSIP/agent3-00000001 (capture 12)
            dial_id = _dial_of(frame.get("Uniqueid"))
            if dial_id is not None:
                dest = str(frame.get("DestChannel") or "").removeprefix("PJSIP/")
                await self.connected(dial_id, dest.rsplit("-", 1)[0] or None)
        elif ev == "Hangup":
            dial_id = _dial_of(frame.get("Uniqueid"))
            if dial_id is not None and dial_id in self.live:
                await self.ended(dial_id, outcome_from_hangup(frame.get("Cause")))


def _dial_of(uniqueid: Any) -> int | None:
    s = str(uniqueid or "")
    if s.startswith("cti-ob-") and s[7:].isdigit():
        return int(s[7:])
    return None

"""The carrier's loop for a line test (R-LINE-TEST): AMI Originate `PJSIP/<our DID>@trunk` (or `@pstn`)
with an Application goes out to the carrier, which routes the number back to us: a new inbound call
from the caller number we presented arrives through `[from-trunk]` and runs the route AGI like any
other (cti/sim/inbound.py). When it answers (the dialplan's Answer()), our outbound leg is answered and
runs the Application; when the inbound leg ends, the carrier ends ours (BYE), and the other way round.

No capture exists of this loop (nothing in asterisk-captures/ originates to the trunk): the outbound
leg's events follow the customer-first Originate of capture 06c (AppDial2, DialBegin/DialState/DialEnd,
OriginateResponse Reason 4 on answer, 0 for a refused call), and the inbound leg is capture 01's.

`Pbx.carrier_loop` breaks it the ways a real carrier does (`Simulator.set_carrier_loop`):
- "ok": the call comes back in;
- "congestion": the carrier refuses the call (Cause 34, DialEnd CONGESTION, Reason 0 as 06c for a
  rejected dial);
- "lost": the carrier answers but never delivers the call to us (a number routed elsewhere).
With the trunk down (`set_trunk(False)`) the dial fails at once with Reason 0 (capture 18's CHANUNAVAIL).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cti.sim.core import Core
from cti.sim.model import RINGING, UP, CallSpec, Channel
from cti.sim.originate import Originated, OriginateRequest, split_callerid
from cti.sim.sched import Timer

LOOP_MODES = ("ok", "congestion", "lost")
RING_S = 0.5  # the carrier's 180 Ringing
DELIVER_S = 1.5  # out through the PSTN and back in to our trunk


def loop_target(channel: str, own_dids: set[str]) -> str | None:
    """The DID of `PJSIP/<DID>@trunk|pstn` when it is one of ours; None otherwise."""
    tech, _, rest = channel.partition("/")
    number, _, endpoint = rest.partition("@")
    if tech.upper() != "PJSIP" or endpoint not in ("trunk", "pstn") or number not in own_dids:
        return None
    return number


class CarrierLoopCall(Originated):
    def __init__(
        self, e: Core, req: OriginateRequest, did: str, mode: str, place_call: Callable[[CallSpec], Any]
    ) -> None:
        self.e, self.req, self.did, self.mode, self.place_call = e, req, did, mode, place_call
        self.cid_num, self.cid_name = split_callerid(req.callerid)
        self.endpoint = req.channel.partition("@")[2]
        self.out: Channel | None = None
        self.inbound: Any = None  # the InboundFlow the carrier delivered
        self.timers: list[Timer] = []
        self.done = False

    def reachable(self) -> bool:
        return True

    def _response(self, ok: bool, reason: int) -> None:
        if self.req.send_response:
            self._originate_response(reason, self.out if ok else None, self.req.channel)

    def start(self) -> None:
        e = self.e
        e.call_started()
        if not e.endpoints["pstn"].registered:  # the trunk's contact is down: no channel at all (18)
            self._response(False, 0)
            self._end()
            return
        out = e.new_channel("PJSIP", self.endpoint, uniqueid=self.req.channel_id,
                            cid=(self.cid_num, self.cid_name))  # fmt: skip
        out.call = self
        out.vars.update(self.req.variables)
        self.out = out
        e.newexten(out, 1, "AppDial2", "(Outgoing Line)")
        e.dial_event("DialBegin", None, out, [("DialString", f"{self.did}@{self.endpoint}")])
        self.timers.append(e.after(RING_S, self._ringing))
        self.timers.append(e.after(DELIVER_S, self._delivered))

    def _ringing(self) -> None:
        e, out = self.e, self.out
        assert out is not None
        out.callee = True
        e.set_state(out, RINGING)
        e.dial_event("DialState", None, out, [("DialStatus", "RINGING")])

    def _delivered(self) -> None:
        e, out = self.e, self.out
        assert out is not None
        if self.mode == "congestion":
            e.emit(
                "HangupRequest", "call", [*out.snapshot(), ("Cause", "34"), ("TechCause", "503")], out.name
            )
            e.dial_event("DialEnd", None, out, [("DialStatus", "CONGESTION")])
            self._response(False, 0)
            e.hangup(out, 34, tech_cause=503)
            self._end()
            return
        if self.mode == "ok":  # back in through [from-trunk], from the number we presented
            self.inbound = self.place_call(CallSpec(caller=self.cid_num, did=self.did, patience=600.0))
        out.callee = False
        e.set_state(out, UP)
        e.dial_event("DialEnd", None, out, [("DialStatus", "ANSWER")])
        self._response(True, 4)
        app = self.req.application
        e.newexten(out, 1, app, self.req.data)
        out.app, out.appdata = app, self.req.data
        try:
            wait = float(self.req.data) if app.lower() == "wait" else 5.0
        except ValueError:
            wait = 5.0
        self.timers.append(e.after(wait, self._app_done))
        if self.inbound is not None:
            self.timers.append(e.after(0.5, self._watch_inbound))

    def _watch_inbound(self) -> None:
        """The inbound leg ended (our dialplan hung it up): the carrier sends us BYE."""
        if self.done:
            return
        if self.inbound.done:
            self._hangup_out()
            return
        self.timers.append(self.e.after(0.5, self._watch_inbound))

    def _app_done(self) -> None:
        if self.inbound is not None and not self.inbound.done:
            self.inbound.external_hangup(16)  # our BYE reaches the other end through the carrier
        self._hangup_out()

    def _hangup_out(self) -> None:
        if self.out is not None and not self.done:
            self.e.hangup(self.out, 16)
        self._end()

    def external_hangup(self, cause: int = 16, channel: Channel | None = None) -> None:
        if self.done:
            return
        if self.out is not None and self.out.state != UP:
            self._response(False, 0)
        if self.inbound is not None and not self.inbound.done:
            self.inbound.external_hangup(cause)
        if self.out is not None:
            self.e.hangup(self.out, cause, request=True)
        self._end()

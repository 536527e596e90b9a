"""The simulated Asterisk assembled: the core (channels, bridges, PJSIP endpoints) with the modules the
project's PBX loads (app_queue, app_mixmonitor), the people on the phones, and the dialplan flows that
start calls (inbound from the trunk, AMI Originate agent-first or customer-first, and a line test's
Originate to one of our own DIDs, which the carrier loops back in). Everything here is
synchronous; the only I/O (FastAGI) is run by the Simulator, which `on_agi_request` tells."""

from __future__ import annotations

from collections.abc import Callable

from cti.sim.app_queue import AppQueue
from cti.sim.carrier_loop import LOOP_MODES, CarrierLoopCall, loop_target
from cti.sim.core import Core
from cti.sim.customer_first import CustomerFirstCall
from cti.sim.inbound import InboundFlow
from cti.sim.model import CallSpec, Channel
from cti.sim.originate import AgentFirstCall, OriginateRequest
from cti.sim.outbound_customers import OutboundCall, OutboundCustomers, is_outbound
from cti.sim.people import People
from cti.sim.recordings import MixMonitor
from cti.sim.scenario import OutboundConfig


def is_customer_first(channel: str) -> bool:
    """`PJSIP/<digits>@pstn` (06c cases 2 and 3) or `@trunk` (the project's trunk, the outbound
    dialer's Originate): the customer is dialled first."""
    tech, _, rest = channel.partition("/")
    number, _, trunk = rest.partition("@")
    return tech.upper() == "PJSIP" and trunk in ("pstn", "trunk") and number.isdigit()


class Pbx:
    def __init__(self, core: Core, *, write_audio: bool = True) -> None:
        self.core = core
        self.people = People(self.core)
        self.app_queue = AppQueue(self.core, self.people)
        self.mixmonitor = MixMonitor(self.core, write_audio)
        # the customers an outbound campaign dials (scenario [outbound]; defaults without one)
        self.outbound = OutboundCustomers(core, core.scenario.outbound or OutboundConfig())
        # AGI requests waiting for the Simulator: (call, script) -> the Simulator runs them.
        self.agi_requests: list[tuple[InboundFlow, str]] = []
        self.on_agi_request: Callable[[], None] | None = None
        # the center's own numbers: an Originate to one of them on the trunk loops back in (line tests)
        self.own_dids: set[str] = set()
        self.carrier_loop = "ok"  # how the carrier treats that loop (cti/sim/carrier_loop.py)

    def place_call(self, spec: CallSpec) -> InboundFlow:
        call = InboundFlow(self.core, self.app_queue, self.mixmonitor, self.request_agi, spec)
        call.start()
        return call

    def request_agi(self, call: InboundFlow, script: str) -> None:
        self.agi_requests.append((call, script))
        if self.on_agi_request is not None:
            self.on_agi_request()

    def originate(self, req: OriginateRequest) -> AgentFirstCall | CustomerFirstCall | CarrierLoopCall:
        """The flow an AMI Originate starts (not yet started: the caller schedules `start`)."""
        did = loop_target(req.channel, self.own_dids) if req.application else None
        if did is not None:
            assert self.carrier_loop in LOOP_MODES
            return CarrierLoopCall(self.core, req, did, self.carrier_loop, self.place_call)
        if is_customer_first(req.channel) and is_outbound(req):
            return OutboundCall(self.core, self.people, self.app_queue, self.outbound, req)
        if is_customer_first(req.channel):
            return CustomerFirstCall(self.core, self.people, req)
        return AgentFirstCall(self.core, self.people, self.mixmonitor, req)

    def hangup(self, ch: Channel, cause: int = 16) -> None:
        """AMI Hangup: the call's flow decides what follows (a ringing leg is a ring timeout, a talking
        agent's hangup is AgentComplete Reason agent, ...); a channel without one just goes."""
        if ch.call is not None:
            ch.call.external_hangup(cause, ch)
        else:
            self.core.hangup(ch, cause, request=True)

    def redirect(self, ch: Channel, context: str, exten: str) -> str | None:
        """AMI Redirect: None when done, else the error message."""
        if ch.call is None:
            return "Redirect failed"
        return ch.call.redirect(ch, context, exten)

    def restart(self) -> None:
        """What `core restart now` leaves behind once every channel is gone (capture 17)."""
        self.app_queue.restart()
        self.core.restart()

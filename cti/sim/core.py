"""The PBX core: channels, their dialplan-visible state, bridges, PJSIP endpoints (registration,
qualify, device state), and the event stream every AMI event starts from. Synchronous and deterministic
for a seed; modules (app_queue, MixMonitor) hook in where Asterisk's own modules do: device state
subscriptions and channel hangup.

Event sequences per channel follow asterisk-captures 01-10 (see the package docstring for what is
deliberately left out); registration and qualify follow captures 10, 17 and 19.
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cti.sim.model import (
    CAUSE_TXT,
    DEVICE_NAME,
    DOWN,
    UP,
    Bridge,
    Channel,
    Endpoint,
    Pairs,
    PbxEvent,
    RingLeg,
)
from cti.sim.scenario import Scenario
from cti.sim.sched import Scheduler


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


class Core(Scheduler):
    """A Scheduler too: every module schedules on the core's clock (`core.after`), and the timers are
    the hottest path of a fast run, so no delegation layer sits between them."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        start: float,
        seed: int | None = None,
        agi_url: str = "agi://127.0.0.1:4573",
        ring_cycle_s: float = 5.0,
    ) -> None:
        super().__init__(start)
        self.scenario = scenario
        self.rng = random.Random(scenario.seed if seed is None else seed)
        # own stream: when phones get qualified must not shift who calls or how agents behave
        self.qualify_rng = random.Random((scenario.seed if seed is None else seed) + 19)
        self.agi_url = agi_url.rstrip("/")
        self.ring_cycle_s = ring_cycle_s
        self._uid = itertools.count()
        self._chan_idx: dict[str, itertools.count[int]] = {}
        self.sinks: list[Callable[[PbxEvent], None]] = []
        self.channels: dict[str, Channel] = {}
        self.endpoints: dict[str, Endpoint] = {}
        self.globals: dict[str, str] = {}
        self.stats = Stats()
        # Module hooks: a device's state changed (its state interface, e.g. PJSIP/agent1); a contact
        # became reachable (a member may take calls now); a channel is hanging up (before its Hangup).
        self.device_watchers: list[Callable[[str], None]] = []
        self.reachable_watchers: list[Callable[[], None]] = []
        self.hangup_watchers: list[Callable[[Channel], None]] = []
        # The truth about every inbound call once it ended, for checks that must not trust the CTI
        # (a call that begins and ends while the CTI is down is in no event log but this one).
        self.ledger: list[dict[str, Any]] = []
        self.on_call_record: Callable[[dict[str, Any]], None] | None = None  # e.g. the CDR writer
        self.calls_active = 0
        self.processed_calls = 0
        self.start_time = start
        self.endpoints["trunk"] = Endpoint("trunk", "trunk", registered=True)
        self.endpoints["pstn"] = Endpoint("pstn", "pstn", registered=True)
        for a in scenario.agents:
            self.add_endpoint(a.id, a.name, registered=False)

    # ------------------------------------------------------------------ ids and events
    def emit(self, name: str, cls: str, pairs: Pairs, channel: str = "") -> None:
        ev = PbxEvent(name, cls, self.now, pairs, channel)
        self.stats.events += 1
        for s in self.sinks:
            s(ev)

    def new_uniqueid(self) -> str:
        return f"{int(self.now)}.{next(self._uid)}"

    def bridge_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def next_chan_index(self, tech: str) -> int:
        """The per-technology counter behind the `-0000002a` suffix of channel names."""
        return next(self._chan_idx.setdefault(tech, itertools.count()))

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
        idx = self.next_chan_index(tech)
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

    def set_var(self, ch: Channel, name: str, value: str) -> None:
        """Set(name=value) as AGI SET VARIABLE and AMI Setvar do it: CALLERID(num|name) is a function
        that emits NewCallerid, not VarSet (capture 01)."""
        up = name.upper()
        if up == "CALLERID(NAME)":
            self.set_callerid(ch, None, value)
        elif up == "CALLERID(NUM)":
            self.set_callerid(ch, value, None)
        else:
            self.varset(ch, name, value)

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
        iface = f"PJSIP/{ep.id}"
        for fn in self.device_watchers:
            fn(iface)

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
        for fn in self.hangup_watchers:
            fn(ch)
        extra: Pairs = [("Cause", str(cause)), ("Cause-txt", CAUSE_TXT.get(cause, "Unknown"))]
        if tech_cause is not None:
            extra.append(("TechCause", str(tech_cause)))
        self.emit("Hangup", "call", ch.snapshot() + extra, ch.name)
        self.channels.pop(ch.name, None)
        ep = self.endpoints.get(ch.endpoint)
        if ep is not None and ch in ep.channels:
            ep.channels.remove(ch)
            self.device_changed(ep)

    # ------------------------------------------------------------------ ringing legs
    def ring(self, leg: RingLeg) -> None:
        """Mark the leg's channel as ringing (for `ringing_legs` and an AMI Hangup while it rings)."""
        leg.channel.leg = leg

    def ringing_legs(self, ep_id: str) -> list[RingLeg]:
        ep = self.endpoints.get(ep_id)
        if ep is None:
            return []
        return [c.leg for c in ep.channels if c.leg is not None and not c.leg.done]

    def answer_leg(self, leg: RingLeg) -> None:
        if not leg.done:
            leg.owner.leg_answered(leg)

    def time_out_leg(self, leg: RingLeg) -> None:
        if not leg.done:
            leg.owner.leg_timed_out(leg)

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

    # ------------------------------------------------------------------ endpoints (res_pjsip)
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
            self._reachable()

    def _reachable(self) -> None:
        for fn in self.reachable_watchers:
            fn()

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
        self._reachable()

    def pjsip_qualify(self, ep_id: str) -> str | None:
        """AMI PJSIPQualify `Endpoint: <id>`: reply "Endpoint found, will qualify" (capture 17), then
        the round trip. The error text for an unknown endpoint is res_pjsip's, not captured."""
        ep = self.endpoints.get(ep_id)
        if ep is None:
            return "Unable to retrieve endpoint " + ep_id
        self.after(0, self.qualify, ep)
        return None

    def restart(self) -> None:
        """What `core restart now` leaves of the core (capture 17), once every channel is gone: uptime
        starts again; PJSIP contacts persist (astdb) but are UNAVAILABLE until re-qualified within
        qualify_frequency."""
        self.start_time = self.now
        freq = self.scenario.qualify_frequency_s
        for ep in self.endpoints.values():
            if ep.id in ("trunk", "pstn") or not ep.registered or freq <= 0:
                continue
            ep.qualify_gen += 1
            ep.qualified = False
            ep.last_state = DEVICE_NAME[ep.device_state()]
            self.after(self.qualify_rng.uniform(0.5, freq), self._qualify_timer, ep, ep.qualify_gen)

    # ------------------------------------------------------------------ call accounting
    def call_started(self) -> None:
        self.calls_active += 1
        self.stats.max_concurrent_calls = max(self.stats.max_concurrent_calls, self.calls_active)

    def call_ended(self) -> None:
        self.calls_active -= 1
        self.processed_calls += 1

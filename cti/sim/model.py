"""Channels, endpoints, queue members, events and the header blocks Asterisk builds from them; the
two interfaces the PBX core and app_queue use to talk to a call's dialplan flow (`CallFlow`, `LegOwner`).
A leaf module: everything else in cti.sim imports it, it imports only the scheduler's Timer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from cti.sim.sched import Timer

STATE_DESC = {0: "Down", 4: "Ring", 5: "Ringing", 6: "Up"}
DOWN, RING, RINGING, UP = 0, 4, 5, 6

CAUSE_TXT = {
    0: "Unknown",
    3: "No route to destination",
    16: "Normal Clearing",
    17: "User busy",
    19: "User alerting, no answer",
    21: "Call Rejected",
    34: "Circuit/channel congestion",
}

# QueueMemberStatus / QueueMember `Status` values (AST_DEVICE_*).
NOT_INUSE, INUSE, UNAVAILABLE, RINGING_ST, RINGINUSE = 1, 2, 5, 6, 7
DEVICE_NAME = {
    NOT_INUSE: "NOT_INUSE",
    INUSE: "INUSE",
    UNAVAILABLE: "UNAVAILABLE",
    RINGING_ST: "RINGING",
    RINGINUSE: "RINGINUSE",
}

Pairs = list[tuple[str, str]]


@dataclass(slots=True)
class PbxEvent:
    """A broadcast AMI event. `data` (the encoded frame) is built once by the AMI server."""

    name: str
    cls: str
    ts: float
    pairs: Pairs
    channel: str = ""
    data: bytes = b""


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
    ivr_hangup_script: str | None = None  # ... of this script only (`survey`); None: of any script


class LegOwner(Protocol):
    """Who decides what a ringing leg's answer or ring timeout means: app_queue for the legs it rings
    (AgentRingNoAnswer, autopause, retry), the dialplan flow for a Dial() or an Originate."""

    def leg_answered(self, leg: RingLeg) -> None: ...

    def leg_timed_out(self, leg: RingLeg) -> None: ...


class CallFlow(LegOwner, Protocol):
    """The dialplan running a call (cti.sim.inbound, cti.sim.originate, cti.sim.customer_first): what the
    rest of the PBX may ask of it. Every channel of the call points at it (`Channel.call`)."""

    def start(self) -> None: ...

    def external_hangup(self, cause: int = 16, channel: Channel | None = None) -> None:
        """AMI Hangup (or a restart) on one of the call's channels."""

    def redirect(self, channel: Channel, context: str, exten: str) -> str | None:
        """AMI Redirect: None when done, else the error message."""


@dataclass(eq=False)
class Channel:
    name: str
    tech: str  # PJSIP | Local
    endpoint: str  # agent1, trunk, pstn, or the Local dial string
    uniqueid: str
    linkedid: str
    created: float
    cid_num: str = "<unknown>"
    cid_name: str = "<unknown>"
    conn_num: str = "<unknown>"
    conn_name: str = "<unknown>"
    context: str = ""
    exten: str = "s"
    priority: int = 1
    state: int = DOWN
    vars: dict[str, str] = field(default_factory=dict)
    app: str = ""
    appdata: str = ""
    dnid: str = ""
    bridge: Bridge | None = None
    call: CallFlow | None = None  # the dialplan flow driving this channel
    recording: tuple[str, float] | None = None  # MixMonitor (path, started)
    leg: RingLeg | None = None  # set while this channel is a leg being rung (Dial, app_queue, Originate)
    hungup: bool = False
    answered_at: float | None = None
    callee: bool = False  # dialled leg: counts as RINGING for the device while state is Ringing

    def callerid(self, function: str) -> str | None:
        """CALLERID(num) / CALLERID(name) as dialplan functions read them ('' when unknown), or None
        for another name."""
        up = function.upper()
        if up == "CALLERID(NUM)":
            return "" if self.cid_num == "<unknown>" else self.cid_num
        if up == "CALLERID(NAME)":
            return "" if self.cid_name == "<unknown>" else self.cid_name
        return None

    def snapshot(self, prefix: str = "") -> Pairs:
        p = prefix
        return [
            (p + "Channel", self.name),
            (p + "ChannelState", str(self.state)),
            (p + "ChannelStateDesc", STATE_DESC.get(self.state, "Unknown")),
            (p + "CallerIDNum", self.cid_num),
            (p + "CallerIDName", self.cid_name),
            (p + "ConnectedLineNum", self.conn_num),
            (p + "ConnectedLineName", self.conn_name),
            (p + "Language", "en"),
            (p + "AccountCode", ""),
            (p + "Context", self.context),
            (p + "Exten", self.exten),
            (p + "Priority", str(self.priority)),
            (p + "Uniqueid", self.uniqueid),
            (p + "Linkedid", self.linkedid),
        ]


@dataclass(eq=False)
class Bridge:
    uniqueid: str
    channels: list[Channel] = field(default_factory=list)

    def header(self) -> Pairs:
        return [
            ("BridgeUniqueid", self.uniqueid),
            ("BridgeType", "basic"),
            ("BridgeTechnology", "simple_bridge"),
            ("BridgeCreator", "<unknown>"),
            ("BridgeName", "<unknown>"),
            ("BridgeNumChannels", str(len(self.channels))),
            ("BridgeVideoSourceMode", "none"),
        ]


@dataclass(eq=False)
class Endpoint:
    """A PJSIP endpoint: an agent's phone (registered or not) or the trunk."""

    id: str
    display: str
    registered: bool = True
    contact: str = ""
    channels: list[Channel] = field(default_factory=list)
    last_state: str = ""
    # With qualify on, a contact that just (re)registered or survived a restart is UNAVAILABLE until
    # its first OPTIONS round trip (captures 17, 19). A phone registered long ago is qualified.
    qualified: bool = True
    qualify_gen: int = 0  # bumped on every (un)register/restart: a stale qualify timer does nothing

    def device_state(self) -> int:
        if not self.channels:
            return NOT_INUSE if self.registered and self.qualified else UNAVAILABLE
        if self.id == "trunk":  # inbound legs are never "dialled"; thousands of them at peak
            return INUSE
        up = ringing = False
        for c in self.channels:
            if c.state == UP:
                up = True
            elif c.state == RINGING and c.callee:
                ringing = True
        if up and ringing:
            return RINGINUSE
        if ringing:
            return RINGING_ST
        return INUSE


@dataclass(eq=False)
class Member:
    queue: str
    name: str
    interface: str
    state_interface: str
    penalty: int = 0
    paused: bool = False
    paused_reason: str = ""
    calls_taken: int = 0
    last_call: int = 0
    last_pause: int = 0
    login_time: int = 0
    in_call: bool = False
    wrapup_until: float = 0.0
    ringing: bool = False
    last_emitted: tuple[Any, ...] = ()
    pause_dev: str = ""

    def _state(self, status: int) -> Pairs:
        return [
            ("Membership", "dynamic"),
            ("Penalty", str(self.penalty)),
            ("CallsTaken", str(self.calls_taken)),
            ("LastCall", str(self.last_call)),
            ("LastPause", str(self.last_pause)),
            ("LoginTime", str(self.login_time)),
            ("InCall", "1" if self.in_call else "0"),
            ("Status", str(status)),
            ("Paused", "1" if self.paused else "0"),
            ("PausedReason", self.paused_reason),
        ]

    def event_fields(self, status: int) -> Pairs:
        """QueueMemberStatus / Added / Pause / Penalty / Removed (capture 01)."""
        return [
            ("Queue", self.queue),
            ("MemberName", self.name),
            ("Interface", self.interface),
            ("StateInterface", self.state_interface),
            *self._state(status),
            ("Ringinuse", "0"),
            ("Wrapuptime", "0"),
        ]

    def list_item(self, status: int) -> Pairs:
        """A QueueStatus reply's QueueMember item: `Name` and `Location`, no Ringinuse (capture 07)."""
        return [
            ("Event", "QueueMember"),
            ("Queue", self.queue),
            ("Name", self.name),
            ("Location", self.interface),
            ("StateInterface", self.state_interface),
            *self._state(status),
            ("Wrapuptime", "0"),
        ]


@dataclass(eq=False)
class RingLeg:
    """A channel being rung on an endpoint; its answer or timeout goes to `owner`."""

    owner: LegOwner
    endpoint: Endpoint
    channel: Channel
    started: float
    timers: list[Timer] = field(default_factory=list)
    done: bool = False

    def stop(self) -> None:
        """The leg is decided (answered, timed out, cancelled): its pending timers must not fire."""
        self.done = True
        for t in self.timers:
            t.cancel()

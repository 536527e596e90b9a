"""Channels, endpoints, queue members and the header blocks Asterisk builds from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
    bridge: Any = None
    call: Any = None  # the flow object driving this channel
    recording: Any = None
    hungup: bool = False
    answered_at: float | None = None
    callee: bool = False  # dialled leg: counts as RINGING for the device while state is Ringing

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

    def event_fields(self, status: int) -> Pairs:
        return [
            ("Queue", self.queue),
            ("MemberName", self.name),
            ("Interface", self.interface),
            ("StateInterface", self.state_interface),
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
            ("Ringinuse", "0"),
            ("Wrapuptime", "0"),
        ]

    def list_item(self, status: int) -> Pairs:
        return [
            ("Event", "QueueMember"),
            ("Queue", self.queue),
            ("Name", self.name),
            ("Location", self.interface),
            ("StateInterface", self.state_interface),
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
            ("Wrapuptime", "0"),
        ]

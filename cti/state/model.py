"""The live call-center model: plain slotted records, small enough for thousands of calls.

Times are epoch seconds (float) taken from the events themselves (Asterisk's `Timestamp`), never from
a clock here: the reducer is deterministic."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

# QueueMemberStatus / QueueMember `Status` (INDEX.md): the codes this call center sees
NOT_INUSE, INUSE, BUSY, INVALID, UNAVAILABLE, RINGING, RINGINUSE, ONHOLD = 1, 2, 3, 4, 5, 6, 7, 8
STATUS_TEXT = {
    0: "unknown",
    NOT_INUSE: "not_inuse",
    INUSE: "inuse",
    BUSY: "busy",
    INVALID: "invalid",
    UNAVAILABLE: "unavailable",
    RINGING: "ringing",
    RINGINUSE: "ringinuse",
    ONHOLD: "onhold",
}


@dataclass(slots=True)
class Channel:
    uniqueid: str
    name: str
    linkedid: str
    created: float
    state: str = ""
    caller_num: str = ""
    caller_name: str = ""
    exten: str = ""
    bridge: str | None = None
    agent: str | None = None  # set when this channel is a queue member's leg
    queue: str | None = None  # set while this channel waits in a queue


@dataclass(slots=True)
class Call:
    """Everything with one Linkedid: the caller's channel and every leg it created."""

    linkedid: str
    started: float
    channels: set[str] = field(default_factory=set)
    caller_num: str = ""
    did: str = ""
    queue: str | None = None
    answered_by: str | None = None
    answered_at: float | None = None


@dataclass(slots=True)
class Bridge:
    id: str
    channels: set[str] = field(default_factory=set)


@dataclass(slots=True)
class QueueCaller:
    queue: str
    uniqueid: str
    channel: str
    position: int
    joined: float
    caller_num: str = ""
    linkedid: str = ""


@dataclass(slots=True)
class QueueMember:
    queue: str
    interface: str
    name: str
    status: int = 0
    paused: bool = False
    paused_reason: str = ""
    paused_since: float | None = None
    ringing: bool = False
    in_call: str | None = None  # uniqueid of the caller while connected (AgentConnect..AgentComplete)
    wrapup_s: float = 0.0
    wrapup_until: float | None = None
    calls_taken: int = 0
    penalty: int = 0
    login_time: float | None = None


@dataclass(slots=True)
class State:
    channels: dict[str, Channel] = field(default_factory=dict)  # by Uniqueid
    by_name: dict[str, str] = field(default_factory=dict)  # channel name -> Uniqueid
    calls: dict[str, Call] = field(default_factory=dict)  # by Linkedid
    bridges: dict[str, Bridge] = field(default_factory=dict)
    callers: dict[tuple[str, str], QueueCaller] = field(default_factory=dict)  # (queue, uniqueid)
    members: dict[tuple[str, str], QueueMember] = field(default_factory=dict)  # (queue, interface)
    last_ts: float = 0.0
    events: int = 0

    def copy(self) -> State:
        return copy.deepcopy(self)

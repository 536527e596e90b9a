"""The reducer: `apply(state, event, ts) -> state`. Deterministic, no I/O, no clock.

For speed it updates `state` in place and returns it (copying 2,000 calls per event would cost more
than parsing); `State.copy()` gives a snapshot when one is needed.

Asterisk only guarantees order per channel (INDEX.md "Ordering"): the Hangup of caller and agent,
AgentComplete vs BridgeLeave, QueueMemberStatus(INUSE) vs AgentConnect all swap between runs. So:
- only Newchannel (or a resync) creates a channel; any later event for a channel already hung up is
  ignored rather than resurrecting it;
- a call lives while it has channels: it ends with the Hangup of its last channel, whichever it is;
- a member's "in call" is set by AgentConnect and cleared by AgentComplete or the Hangup of either
  leg, independent of the InCall flag that QueueMemberStatus carries (0 or 1 depending on the race);
- members are created by any member event (QueueMemberAdded may precede our connection).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from cti.ami.headers import first
from cti.state.model import (
    NOT_INUSE,
    RINGING,
    Bridge,
    Call,
    Channel,
    QueueCaller,
    QueueMember,
    State,
)

Ev = Mapping[str, Any]


_s = first  # the first value of a header


def _int(ev: Ev, key: str, default: int = 0) -> int:
    try:
        return int(_s(ev, key))
    except ValueError:
        return default


def _drop_channel(st: State, uid: str) -> None:
    ch = st.channels.pop(uid, None)
    if ch is None:
        return
    if st.by_name.get(ch.name) == uid:
        del st.by_name[ch.name]
    if ch.bridge is not None:
        _leave_bridge(st, ch.bridge, uid)
    call = st.calls.get(ch.linkedid)
    if call is not None:
        call.channels.discard(uid)
        if not call.channels:
            del st.calls[ch.linkedid]
    # a caller who hangs up while queued leaves the queue even if QueueCallerAbandon comes later
    if ch.queue is not None:
        _leave_queue(st, (ch.queue, uid))
    if st.members:
        for m in st.members.values():
            if m.in_call is not None and (m.in_call == uid or (ch.agent is not None and m.name == ch.agent)):
                m.in_call = None


def _new_channel(st: State, ev: Ev, ts: float) -> None:
    uid = _s(ev, "Uniqueid")
    if not uid or uid in st.channels:
        return
    linkedid = _s(ev, "Linkedid") or uid
    name = _s(ev, "Channel")
    ch = Channel(
        uniqueid=uid,
        name=name,
        linkedid=linkedid,
        created=ts,
        state=_s(ev, "ChannelStateDesc"),
        caller_num=_s(ev, "CallerIDNum"),
        caller_name=_s(ev, "CallerIDName"),
        exten=_s(ev, "Exten"),
    )
    st.channels[uid] = ch
    st.by_name[name] = uid
    call = st.calls.get(linkedid)
    if call is None:
        call = st.calls[linkedid] = Call(linkedid=linkedid, started=ts)
        if uid == linkedid:
            call.caller_num = ch.caller_num
            call.did = ch.exten
    call.channels.add(uid)


def _newstate(st: State, ev: Ev, ts: float) -> None:
    ch = st.channels.get(_s(ev, "Uniqueid"))
    if ch is not None:
        ch.state = _s(ev, "ChannelStateDesc")


def _hangup(st: State, ev: Ev, ts: float) -> None:
    _drop_channel(st, _s(ev, "Uniqueid"))


def _rename(st: State, ev: Ev, ts: float) -> None:
    ch = st.channels.get(_s(ev, "Uniqueid"))
    if ch is not None:
        st.by_name.pop(ch.name, None)
        ch.name = _s(ev, "Newname")
        st.by_name[ch.name] = ch.uniqueid


def _bridge_create(st: State, ev: Ev, ts: float) -> None:
    bid = _s(ev, "BridgeUniqueid")
    if bid and bid not in st.bridges:
        st.bridges[bid] = Bridge(bid)


def _bridge_destroy(st: State, ev: Ev, ts: float) -> None:
    b = st.bridges.pop(_s(ev, "BridgeUniqueid"), None)
    if b is not None:
        for uid in b.channels:
            ch = st.channels.get(uid)
            if ch is not None and ch.bridge == b.id:
                ch.bridge = None


def _bridge_enter(st: State, ev: Ev, ts: float) -> None:
    ch = st.channels.get(_s(ev, "Uniqueid"))
    if ch is None:
        return
    bid = _s(ev, "BridgeUniqueid")
    b = st.bridges.get(bid)
    if b is None:
        b = st.bridges[bid] = Bridge(bid)
    b.channels.add(ch.uniqueid)
    ch.bridge = bid


def _leave_bridge(st: State, bid: str, uid: str) -> None:
    b = st.bridges.get(bid)
    if b is not None and uid in b.channels:
        b.channels.discard(uid)
        if not b.channels:
            # an emptied bridge is gone even if its BridgeDestroy raced ahead of this leave
            del st.bridges[bid]


def _bridge_leave(st: State, ev: Ev, ts: float) -> None:
    uid = _s(ev, "Uniqueid")
    bid = _s(ev, "BridgeUniqueid")
    _leave_bridge(st, bid, uid)
    ch = st.channels.get(uid)
    if ch is not None and ch.bridge == bid:
        ch.bridge = None


def _var_set(st: State, ev: Ev, ts: float) -> None:
    var = _s(ev, "Variable")
    if var in ("__CTI_DNIS", "CTI_DNIS"):
        call = st.calls.get(_s(ev, "Linkedid"))
        if call is not None and not call.did:
            call.did = _s(ev, "Value")


def _member(st: State, ev: Ev) -> QueueMember:
    queue = _s(ev, "Queue")
    iface = _s(ev, "Interface") or _s(ev, "Location")
    key = (queue, iface)
    m = st.members.get(key)
    if m is None:
        m = st.members[key] = QueueMember(queue=queue, interface=iface, name=_s(ev, "MemberName") or iface)
    return m


def _member_fields(m: QueueMember, ev: Ev, ts: float) -> None:
    name = _s(ev, "MemberName") or _s(ev, "Name")
    if name:
        m.name = name
    if "Status" in ev:
        m.status = _int(ev, "Status")
        m.ringing = m.status == RINGING
    if "Paused" in ev:
        paused = _s(ev, "Paused") == "1"
        if paused and not m.paused:
            last = _int(ev, "LastPause")
            m.paused_since = float(last) if last else ts
        elif not paused:
            m.paused_since = None
        m.paused = paused
        m.paused_reason = _s(ev, "PausedReason") if paused else ""
    if "Penalty" in ev:
        m.penalty = _int(ev, "Penalty")
    if "CallsTaken" in ev:
        m.calls_taken = _int(ev, "CallsTaken")
    if "Wrapuptime" in ev:
        m.wrapup_s = float(_int(ev, "Wrapuptime"))
    if "LoginTime" in ev:
        lt = _int(ev, "LoginTime")
        m.login_time = float(lt) if lt else m.login_time


def _member_update(st: State, ev: Ev, ts: float) -> None:
    _member_fields(_member(st, ev), ev, ts)


def _member_removed(st: State, ev: Ev, ts: float) -> None:
    st.members.pop((_s(ev, "Queue"), _s(ev, "Interface")), None)


def _members_named(st: State, queue: str, name: str, iface: str) -> QueueMember | None:
    m = st.members.get((queue, iface))
    if m is not None:
        return m
    for m in st.members.values():
        if m.queue == queue and m.name == name:
            return m
    return None


def _agent_called(st: State, ev: Ev, ts: float) -> None:
    ch = st.channels.get(_s(ev, "DestUniqueid"))
    if ch is not None:
        ch.agent = _s(ev, "MemberName")
    m = _members_named(st, _s(ev, "Queue"), _s(ev, "MemberName"), _s(ev, "Interface"))
    if m is not None:
        m.ringing = True


def _agent_ring_end(st: State, ev: Ev, ts: float) -> None:  # AgentRingNoAnswer
    m = _members_named(st, _s(ev, "Queue"), _s(ev, "MemberName"), _s(ev, "Interface"))
    if m is not None:
        m.ringing = False


def _agent_connect(st: State, ev: Ev, ts: float) -> None:
    uid = _s(ev, "Uniqueid")
    if uid not in st.channels:
        return  # the caller already hung up (cross-channel race): nothing live to connect
    m = _members_named(st, _s(ev, "Queue"), _s(ev, "MemberName"), _s(ev, "Interface"))
    if m is not None:
        m.ringing = False
        if _s(ev, "DestUniqueid") in st.channels:
            m.in_call = uid
    call = st.calls.get(_s(ev, "Linkedid"))
    if call is not None:
        call.answered_by = _s(ev, "MemberName")
        call.answered_at = ts


def _dial_end(st: State, ev: Ev, ts: float) -> None:
    """A Dial outside app_queue answered (the order owner first, capture 12): no AgentConnect will
    name who answered, the caller's DialEnd ANSWER does. AgentConnect, when it follows, overrides."""
    lid, uid = _s(ev, "Linkedid"), _s(ev, "Uniqueid")
    if _s(ev, "DialStatus") != "ANSWER" or not uid or uid != lid or lid.startswith("cti-"):
        return
    call = st.calls.get(lid)
    dest = _s(ev, "DestChannel")
    if call is None or call.answered_by is not None or "/" not in dest:
        return
    call.answered_by = dest.partition("/")[2].rpartition("-")[0] or None
    call.answered_at = ts


def _agent_complete(st: State, ev: Ev, ts: float) -> None:
    m = _members_named(st, _s(ev, "Queue"), _s(ev, "MemberName"), _s(ev, "Interface"))
    if m is not None:
        # a late AgentComplete of an older call must not end the current one; an unknown/stale
        # marker (a resync that could not name the caller) is cleared
        if m.in_call is not None and (m.in_call == _s(ev, "Uniqueid") or m.in_call not in st.channels):
            m.in_call = None
        m.wrapup_until = ts + m.wrapup_s if m.wrapup_s > 0 else None


def _caller_join(st: State, ev: Ev, ts: float) -> None:
    uid = _s(ev, "Uniqueid")
    if uid not in st.channels:
        return
    queue = _s(ev, "Queue")
    st.callers[(queue, uid)] = QueueCaller(
        queue=queue,
        uniqueid=uid,
        channel=_s(ev, "Channel"),
        position=_int(ev, "Position"),
        joined=ts,
        caller_num=_s(ev, "CallerIDNum"),
        linkedid=_s(ev, "Linkedid"),
    )
    st.channels[uid].queue = queue
    call = st.calls.get(_s(ev, "Linkedid"))
    if call is not None:
        call.queue = queue


def _leave_queue(st: State, key: tuple[str, str]) -> None:
    c = st.callers.pop(key, None)
    if c is None:
        return
    ch = st.channels.get(c.uniqueid)
    if ch is not None:
        ch.queue = None
    # everyone behind moves up one, as Asterisk does (Position in later events agrees)
    for o in st.callers.values():
        if o.queue == c.queue and o.position > c.position:
            o.position -= 1


def _caller_leave(st: State, ev: Ev, ts: float) -> None:
    _leave_queue(st, (_s(ev, "Queue"), _s(ev, "Uniqueid")))


HANDLERS: dict[str, Callable[[State, Ev, float], None]] = {
    "Newchannel": _new_channel,
    "Newstate": _newstate,
    "Hangup": _hangup,
    "Rename": _rename,
    "BridgeCreate": _bridge_create,
    "BridgeDestroy": _bridge_destroy,
    "BridgeEnter": _bridge_enter,
    "BridgeLeave": _bridge_leave,
    "VarSet": _var_set,
    "QueueMemberAdded": _member_update,
    "QueueMemberStatus": _member_update,
    "QueueMemberPause": _member_update,
    "QueueMemberPenalty": _member_update,
    "QueueMemberRingInUse": _member_update,
    "QueueMemberRemoved": _member_removed,
    "AgentCalled": _agent_called,
    "AgentRingNoAnswer": _agent_ring_end,
    "AgentConnect": _agent_connect,
    "DialEnd": _dial_end,
    "AgentComplete": _agent_complete,
    "QueueCallerJoin": _caller_join,
    "QueueCallerLeave": _caller_leave,
    "QueueCallerAbandon": _caller_leave,
}


def apply(st: State, ev: Ev, ts: float) -> State:
    """Fold one AMI event (header mapping) into the state; unknown events only advance `last_ts`."""
    # _s, not ev.get: a frame that repeats `Event:` carries a list (unhashable); its first value counts
    h = HANDLERS.get(_s(ev, "Event"))
    if h is not None:
        h(st, ev, ts)
    st.events += 1
    if ts > st.last_ts:
        st.last_ts = ts
    return st


def _hms(s: str) -> float:
    try:
        h, m, sec = s.split(":")
        return int(h) * 3600 + int(m) * 60 + float(sec)
    except ValueError:
        return 0.0


def from_snapshot(queue_items: Iterable[Ev], channel_items: Iterable[Ev], ts: float) -> State:
    """A fresh state from the list items of `QueueStatus` (QueueParams/QueueMember/QueueEntry) and
    `CoreShowChannels` (CoreShowChannel), as answered at `ts` (capture 07 shows the shapes)."""
    st = State(last_ts=ts)
    for ev in channel_items:
        if ev.get("Event") != "CoreShowChannel":
            continue
        _new_channel(st, ev, ts - _hms(_s(ev, "Duration")))
        bid = _s(ev, "BridgeId")
        if bid:
            _bridge_enter(st, {"Uniqueid": _s(ev, "Uniqueid"), "BridgeUniqueid": bid}, ts)
    for ev in queue_items:
        name = ev.get("Event")
        if name == "QueueMember":
            m = _member(st, ev)
            _member_fields(m, ev, ts)
            if _s(ev, "InCall") == "1":
                # which caller is not in QueueMember: find the bridge peer of the agent's channel
                m.in_call = _peer_of_agent(st, m) or "?"
        elif name == "QueueEntry":
            uid = _s(ev, "Uniqueid")
            queue = _s(ev, "Queue")
            wait = _int(ev, "Wait")
            ch = st.channels.get(uid)
            st.callers[(queue, uid)] = QueueCaller(
                queue=queue,
                uniqueid=uid,
                channel=_s(ev, "Channel"),
                position=_int(ev, "Position"),
                joined=ts - wait,
                caller_num=_s(ev, "CallerIDNum"),
                linkedid=ch.linkedid if ch else "",
            )
            if ch is not None:
                ch.queue = queue
                if ch.linkedid in st.calls:
                    st.calls[ch.linkedid].queue = queue
    return st


def _peer_of_agent(st: State, m: QueueMember) -> str | None:
    iface = m.interface + "-"
    for ch in st.channels.values():
        if ch.name.startswith(iface) and ch.bridge:
            ch.agent = m.name
            b = st.bridges.get(ch.bridge)
            if b:
                for uid in b.channels:
                    if uid != ch.uniqueid:
                        return uid
    return None


def member_is_free(m: QueueMember, now: float) -> bool:
    return (
        m.status == NOT_INUSE
        and not m.paused
        and not m.ringing
        and m.in_call is None
        and (m.wrapup_until is None or now >= m.wrapup_until)
    )

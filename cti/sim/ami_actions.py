"""The AMI actions the simulated PBX answers, one function each, found through `ACTIONS` (lower-case
action name -> handler). Login and Logoff are the server's (cti.sim.ami): they run before a session is
authenticated. Reply shapes (header order, ActionID position, list replies ending in `...Complete` with
`ListItems`, no Privilege/Timestamp on list items) follow asterisk-captures 00, 06c, 07, 09 and 17.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from cti.sim import console, frames
from cti.sim.ami_session import AmiSession
from cti.sim.app_queue import Queue
from cti.sim.frames import Pairs, get, get_all, truthy
from cti.sim.model import Channel, PbxEvent
from cti.sim.originate import OriginateRequest
from cti.sim.pbx import Pbx


class AmiDriver(Protocol):
    """All the AMI server may touch: the PBX (to read and act on), and the four hooks of the time
    driver around an action. The Simulator is one."""

    @property
    def pbx(self) -> Pbx: ...

    def sync_clock(self) -> None:
        """Before an action: bring virtual time up to the wall clock (scaled mode)."""

    def kick(self) -> None:
        """After an action: let the time driver run what the action scheduled."""

    def hold_events(self, into: list[PbxEvent] | None) -> None:
        """Collect events into a list instead of delivering them (None: deliver again)."""

    def deliver(self, ev: PbxEvent) -> None:
        """Send one held event to every session (and in-process listener)."""


Action = Callable[[AmiDriver, AmiSession, Pairs, Pairs], None]


def _error(s: AmiSession, head: Pairs, message: str) -> None:
    s.send([("Response", "Error"), *head, ("Message", message)])


def _channel(d: AmiDriver, s: AmiSession, head: Pairs, name: str) -> Channel | None:
    """The named channel, or None after answering `No such channel` (capture 07)."""
    ch = d.pbx.core.channels.get(name)
    if ch is None:
        _error(s, head, "No such channel")
    return ch


def _ping(d: AmiDriver, s: AmiSession, f: Pairs, head: Pairs) -> None:
    s.send([("Response", "Success"), *head, ("Ping", "Pong"), ("Timestamp", f"{d.pbx.core.now:.6f}")])


def _events(d: AmiDriver, s: AmiSession, f: Pairs, head: Pairs) -> None:
    mask = (get(f, "EventMask") or "on").strip().lower()
    if mask in ("off", "no", "false", "0"):
        s.events_on = False
        s.send([("Response", "Success"), *head, ("Events", "Off")])
        return
    s.events_on = True
    if mask not in ("on", "yes", "true", "1", "all"):
        s.read = frames.parse_read_classes(mask) & s.granted
    s.send([("Response", "Success"), *head, ("Events", "On")])


def _coresettings(d: AmiDriver, s: AmiSession, f: Pairs, head: Pairs) -> None:
    s.send(
        [
            ("Response", "Success"),
            *head,
            ("AMIversion", "11.0.0"),
            ("AsteriskVersion", "22.10.1"),
            ("SystemName", ""),
            ("CoreMaxCalls", "0"),
            ("CoreMaxLoadAvg", "0.000000"),
            ("CoreRunUser", ""),
            ("CoreRunGroup", ""),
            ("CoreMaxFilehandles", "0"),
            ("CoreRealTimeEnabled", "No"),
            ("CoreCDRenabled", "Yes"),
            ("CoreHTTPenabled", "No"),
            ("SoundsSearchCustomDir", "No"),
        ]
    )


def _corestatus(d: AmiDriver, s: AmiSession, f: Pairs, head: Pairs) -> None:
    e = d.pbx.core
    st = datetime.fromtimestamp(e.start_time, UTC)
    s.send(
        [
            ("Response", "Success"),
            *head,
            ("CoreStartupDate", st.strftime("%Y-%m-%d")),
            ("CoreStartupTime", st.strftime("%H:%M:%S")),
            ("CoreReloadDate", st.strftime("%Y-%m-%d")),
            ("CoreReloadTime", st.strftime("%H:%M:%S")),
            ("CoreCurrentCalls", str(len(e.channels))),
            ("CoreProcessedCalls", str(e.processed_calls)),
        ]
    )


def _userevent(d: AmiDriver, s: AmiSession, f: Pairs, head: Pairs) -> None:
    name = get(f, "UserEvent") or ""
    s.send([("Response", "Success"), *head])
    body = [(k, v) for k, v in f if k.lower() not in ("action", "actionid", "userevent")]
    d.pbx.core.emit("UserEvent", "user", [("UserEvent", name), *body])


# ------------------------------------------------------------------ queues
def _queueadd(d: AmiDriver, s: AmiSession, f: Pairs, head: Pairs) -> None:
    q, iface = get(f, "Queue"), get(f, "Interface")
    if not q:
        _error(s, head, "'Queue' not specified.")
        return
    if not iface:
        _error(s, head, "'Interface' not specified.")
        return
    try:
        pen = int(get(f, "Penalty") or 0)
    except ValueError:
        pen = 0
    _deferred(
        d,
        s,
        head,
        lambda: d.pbx.app_queue.add(
            q,
            iface,
            penalty=pen,
            paused=truthy(get(f, "Paused")),
            reason=get(f, "Reason") or "",
            member_name=get(f, "MemberName") or "",
            state_interface=get(f, "StateInterface") or "",
        ),
        "Added interface to queue",
    )


def _queueremove(d: AmiDriver, s: AmiSession, f: Pairs, head: Pairs) -> None:
    q, iface = get(f, "Queue"), get(f, "Interface")
    if not q or not iface:
        _error(s, head, "Need 'Queue' and 'Interface' parameters.")
        return
    _deferred(d, s, head, lambda: d.pbx.app_queue.remove(q, iface), "Removed interface from queue")


def _deferred(d: AmiDriver, s: AmiSession, head: Pairs, fn: Callable[[], str | None], ok: str) -> None:
    """Run fn with its events held back until the reply is written: the reply comes first (INDEX.md)."""
    held: list[PbxEvent] = []
    d.hold_events(held)
    try:
        err = fn()
    finally:
        d.hold_events(None)
    s.send([("Response", "Error" if err else "Success"), *head, ("Message", err or ok)])
    for ev in held:
        d.deliver(ev)


def _queuepause(d: AmiDriver, s: AmiSession, f: Pairs, head: Pairs) -> None:
    iface = get(f, "Interface")
    if not iface:
        _error(s, head, "Need 'Interface' and 'Paused' parameters.")
        return
    paused = truthy(get(f, "Paused"))
    _deferred(
        d,
        s,
        head,
        lambda: d.pbx.app_queue.pause(get(f, "Queue") or None, iface, paused, get(f, "Reason") or ""),
        "Interface paused successfully" if paused else "Interface unpaused successfully",
    )


def _queuepenalty(d: AmiDriver, s: AmiSession, f: Pairs, head: Pairs) -> None:
    iface = get(f, "Interface")
    try:
        pen = int(get(f, "Penalty") or "")
    except ValueError:
        _error(s, head, "Need 'Interface' and 'Penalty' parameters.")
        return
    _deferred(
        d,
        s,
        head,
        lambda: d.pbx.app_queue.penalty(get(f, "Queue") or None, iface or "", pen),
        "Interface penalty set successfully",
    )


def _pjsipqualify(d: AmiDriver, s: AmiSession, f: Pairs, head: Pairs) -> None:
    """Capture 17: `Endpoint: agent1` -> Success "Endpoint found, will qualify", then the events."""
    ep = get(f, "Endpoint") or ""
    _deferred(d, s, head, lambda: d.pbx.core.pjsip_qualify(ep), "Endpoint found, will qualify")


def _queuelog(d: AmiDriver, s: AmiSession, f: Pairs, head: Pairs) -> None:
    s.send([("Response", "Success"), *head, ("Message", "Event added successfully")])


def _queuestatus(d: AmiDriver, s: AmiSession, f: Pairs, head: Pairs) -> None:
    e, app_queue = d.pbx.core, d.pbx.app_queue
    qf, mf = get(f, "Queue"), get(f, "Member")
    aid = head
    s.send([("Response", "Success"), *aid, ("EventList", "start"), ("Message", "Queue status will follow")])
    n = 0
    for q in app_queue.queues.values():
        if qf and q.name != qf:
            continue
        s.send([("Event", "QueueParams"), *_queue_params(q), *aid])
        n += 1
        for m in q.members.values():
            if mf and m.interface != mf and m.name != mf:
                continue
            s.send([*m.list_item(app_queue.member_status(m)), *aid])
            n += 1
        if mf:
            continue
        for i, en in enumerate(q.entries, 1):
            ch = en.call.caller
            s.send(
                [
                    ("Event", "QueueEntry"),
                    ("Queue", q.name),
                    ("Position", str(i)),
                    ("Channel", ch.name),
                    ("Uniqueid", ch.uniqueid),
                    ("CallerIDNum", ch.cid_num),
                    ("CallerIDName", ch.cid_name),
                    ("ConnectedLineNum", ch.conn_num),
                    ("ConnectedLineName", ch.conn_name),
                    ("Wait", str(int(e.now - en.joined))),
                    ("Priority", "0"),
                    *aid,
                ]
            )
            n += 1
    s.send([("Event", "QueueStatusComplete"), *aid, ("EventList", "Complete"), ("ListItems", str(n))])


def _queue_params(q: Queue) -> Pairs:
    hold = int(q.hold_total / q.connected) if q.connected else 0
    talk = int(q.talk_total / q.completed) if q.completed else 0
    perf = 100.0 * q.in_sl / q.connected if q.connected else 0.0
    perf2 = 100.0 * q.in_sl / (q.connected + q.abandoned) if (q.connected + q.abandoned) else 0.0
    return [
        ("Queue", q.name),
        ("Max", str(q.cfg.maxlen)),
        ("Strategy", q.cfg.strategy),
        ("Calls", str(len(q.entries))),
        ("Holdtime", str(hold)),
        ("TalkTime", str(talk)),
        ("Completed", str(q.completed)),
        ("Abandoned", str(q.abandoned)),
        ("ServiceLevel", str(q.cfg.servicelevel)),
        ("ServicelevelPerf", f"{perf:.1f}"),
        ("ServicelevelPerf2", f"{perf2:.1f}"),
        ("Weight", "0"),
    ]


def _queuesummary(d: AmiDriver, s: AmiSession, f: Pairs, head: Pairs) -> None:
    e, app_queue = d.pbx.core, d.pbx.app_queue
    qf = get(f, "Queue")
    s.send([("Response", "Success"), *head, ("EventList", "start"), ("Message", "Queue summary will follow")])
    n = 0
    for q in app_queue.queues.values():
        if qf and q.name != qf:
            continue
        avail = sum(1 for m in q.members.values() if not m.paused and app_queue.member_status(m) == 1)
        longest = int(max((e.now - en.joined for en in q.entries), default=0))
        hold = int(q.hold_total / q.connected) if q.connected else 0
        talk = int(q.talk_total / q.completed) if q.completed else 0
        s.send(
            [
                ("Event", "QueueSummary"),
                ("Queue", q.name),
                ("LoggedIn", str(sum(1 for m in q.members.values() if app_queue.member_status(m) != 5))),
                ("Available", str(avail)),
                ("Callers", str(len(q.entries))),
                ("HoldTime", str(hold)),
                ("TalkTime", str(talk)),
                ("LongestHoldTime", str(longest)),
                *head,
            ]
        )
        n += 1
    s.send([("Event", "QueueSummaryComplete"), *head, ("EventList", "Complete"), ("ListItems", str(n))])


# ------------------------------------------------------------------ channels
def _coreshowchannels(d: AmiDriver, s: AmiSession, f: Pairs, head: Pairs) -> None:
    e = d.pbx.core
    s.send([("Response", "Success"), *head, ("EventList", "start"), ("Message", "Channels will follow")])
    n = 0
    for ch in list(e.channels.values()):
        secs = int(e.now - ch.created)
        dur = f"{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}"
        app, data = (ch.app, ch.appdata)
        if ch.callee or (ch.context == "agents" and ch.app == "AppQueue"):
            app, data = "AppQueue", "(Outgoing Line)"
        s.send(
            [
                ("Event", "CoreShowChannel"),
                *head,
                *ch.snapshot(),
                ("Application", app),
                ("ApplicationData", data),
                ("Duration", dur),
                ("BridgeId", ch.bridge.uniqueid if ch.bridge else ""),
            ]
        )
        n += 1
    s.send([("Event", "CoreShowChannelsComplete"), *head, ("EventList", "Complete"), ("ListItems", str(n))])


def _status(d: AmiDriver, s: AmiSession, f: Pairs, head: Pairs) -> None:
    e = d.pbx.core
    name = get(f, "Channel")
    chans = [e.channels[name]] if name and name in e.channels else ([] if name else list(e.channels.values()))
    if name and not chans:
        _error(s, head, "No such channel")
        return
    s.send(
        [
            ("Response", "Success"),
            *head,
            ("EventList", "start"),
            ("Message", "Channel status will follow"),
        ]
    )
    for ch in chans:
        s.send(
            [
                ("Event", "Status"),
                ("Privilege", "Call"),
                *ch.snapshot(),
                ("Type", ch.tech),
                ("DNID", ch.dnid),
                ("EffectiveConnectedLineNum", ch.conn_num),
                ("EffectiveConnectedLineName", ch.conn_name),
                ("TimeToHangup", "0"),
                ("BridgeID", ch.bridge.uniqueid if ch.bridge else ""),
                ("Application", ch.app),
                ("Data", ch.appdata),
                ("Nativeformats", "(ulaw)"),
                ("Readformat", "ulaw"),
                ("Readtrans", ""),
                ("Writeformat", "ulaw"),
                ("Writetrans", ""),
                ("Callgroup", "0"),
                ("Pickupgroup", "0"),
                ("Seconds", str(int(e.now - ch.created))),
                *head,
            ]
        )
    s.send(
        [
            ("Event", "StatusComplete"),
            *head,
            ("EventList", "Complete"),
            ("ListItems", str(len(chans))),
            ("Items", str(len(chans))),
        ]
    )


def _var_request(d: AmiDriver, s: AmiSession, f: Pairs, head: Pairs) -> tuple[str, Channel | None] | None:
    """(variable, its channel or None for a global), or None after answering the error (capture 07)."""
    name, var = get(f, "Channel"), get(f, "Variable")
    if not var:
        _error(s, head, "No variable specified")
        return None
    if not name:
        return var, None
    ch = _channel(d, s, head, name)
    return None if ch is None else (var, ch)


def _setvar(d: AmiDriver, s: AmiSession, f: Pairs, head: Pairs) -> None:
    req = _var_request(d, s, f, head)
    if req is None:
        return
    var, ch = req
    s.send([("Response", "Success"), *head, ("Message", "Variable Set")])
    if ch is not None:
        d.pbx.core.set_var(ch, var, get(f, "Value") or "")
    else:
        d.pbx.core.globals[var] = get(f, "Value") or ""


def _getvar(d: AmiDriver, s: AmiSession, f: Pairs, head: Pairs) -> None:
    req = _var_request(d, s, f, head)
    if req is None:
        return
    var, ch = req
    if ch is not None:
        cid = ch.callerid(var)
        val = cid if cid is not None else ch.vars.get(var.lstrip("_"), "")
    else:
        val = d.pbx.core.globals.get(var, "")
    s.send([("Response", "Success"), *head, ("Variable", var), ("Value", val)])


def _hangup(d: AmiDriver, s: AmiSession, f: Pairs, head: Pairs) -> None:
    ch = _channel(d, s, head, get(f, "Channel") or "")
    if ch is None:
        return
    s.send([("Response", "Success"), *head, ("Message", "Channel Hungup")])
    try:
        cause = int(get(f, "Cause") or 16)
    except ValueError:
        cause = 16
    d.pbx.hangup(ch, cause)


def _redirect(d: AmiDriver, s: AmiSession, f: Pairs, head: Pairs) -> None:
    name = get(f, "Channel") or ""
    ch = d.pbx.core.channels.get(name)
    if ch is None:
        _error(s, head, "Channel does not exist: " + name)
        return
    err = d.pbx.redirect(ch, get(f, "Context") or "", get(f, "Exten") or "")
    if err:
        _error(s, head, err)
    else:
        s.send([("Response", "Success"), *head, ("Message", "Redirect successful")])


def _mixmonitor(d: AmiDriver, s: AmiSession, f: Pairs, head: Pairs) -> None:
    ch = _channel(d, s, head, get(f, "Channel") or "")
    if ch is None:
        return
    path = get(f, "File") or f"/var/spool/asterisk/monitor/{ch.uniqueid}.wav"
    s.send([("Response", "Success"), *head])
    d.pbx.mixmonitor.start(ch, path)


def _stopmixmonitor(d: AmiDriver, s: AmiSession, f: Pairs, head: Pairs) -> None:
    ch = _channel(d, s, head, get(f, "Channel") or "")
    if ch is None:
        return
    if ch.recording is None:
        _error(s, head, "Could not stop MixMonitor")
        return
    s.send([("Response", "Success"), *head])
    d.pbx.mixmonitor.stop(ch, stopped=True)


def _originate(d: AmiDriver, s: AmiSession, f: Pairs, head: Pairs) -> None:
    chan = get(f, "Channel")
    if not chan:
        _error(s, head, "Channel not specified")
        return
    variables: dict[str, str] = {}
    for v in get_all(f, "Variable"):
        for part in v.split(","):
            k, _, val = part.partition("=")
            if k:
                variables[k.strip()] = val
    try:
        timeout = int(get(f, "Timeout") or 30000)
    except ValueError:
        timeout = 30000
    req = OriginateRequest(
        channel=chan,
        context=get(f, "Context") or "",
        exten=get(f, "Exten") or "",
        callerid=get(f, "CallerID") or "",
        timeout_ms=timeout,
        action_id=get(f, "ActionID"),
        channel_id=get(f, "ChannelId"),
        variables=variables,
        application=get(f, "Application") or "",
        data=get(f, "Data") or "",
    )
    call = d.pbx.originate(req)
    pjsip = chan.upper().startswith("PJSIP/")
    known = ("callback", "callback-did", "agents", "cti-outbound")
    if pjsip and not req.application and req.context not in known:
        # 09: a PJSIP channel with a missing Context/Exten fails synchronously
        _error(s, head, "Extension does not exist.")
        return
    if not truthy(get(f, "Async")):
        if not call.reachable():
            _error(s, head, "Originate failed")
            return
        req.send_response = False  # OriginateResponse is only sent for Async originates
    s.send([("Response", "Success"), *head, ("Message", "Originate successfully queued")])
    d.pbx.core.after(0, call.start)


def _command(d: AmiDriver, s: AmiSession, f: Pairs, head: Pairs) -> None:
    cmd = " ".join((get(f, "Command") or "").split())
    out = console.run(d.pbx, cmd)
    if out is None:
        first = " ".join(cmd.split()[:2])
        s.send(
            [
                ("Response", "Error"),
                *head,
                ("Message", "Command output follows"),
                (
                    "Output",
                    f"No such command '{cmd}' (type 'core show help {first}' for other possible commands)",
                ),
            ]
        )
        return
    s.send(
        [
            ("Response", "Success"),
            *head,
            ("Message", "Command output follows"),
            *[("Output", line) for line in out],
        ]
    )


def _listcommands(d: AmiDriver, s: AmiSession, f: Pairs, head: Pairs) -> None:
    s.send([("Response", "Success"), *head, *[(n.capitalize(), "") for n in sorted(ACTIONS)]])


ACTIONS: dict[str, Action] = {
    "ping": _ping,
    "events": _events,
    "coresettings": _coresettings,
    "corestatus": _corestatus,
    "userevent": _userevent,
    "queueadd": _queueadd,
    "queueremove": _queueremove,
    "queuepause": _queuepause,
    "queuepenalty": _queuepenalty,
    "queuelog": _queuelog,
    "queuestatus": _queuestatus,
    "queuesummary": _queuesummary,
    "pjsipqualify": _pjsipqualify,
    "coreshowchannels": _coreshowchannels,
    "status": _status,
    "setvar": _setvar,
    "getvar": _getvar,
    "hangup": _hangup,
    "redirect": _redirect,
    "mixmonitor": _mixmonitor,
    "stopmixmonitor": _stopmixmonitor,
    "originate": _originate,
    "command": _command,
    "listcommands": _listcommands,
}

# app_queue's actions: unknown while Asterisk is still loading modules after a restart (capture 17)
QUEUE_ACTIONS = frozenset(
    {"queuestatus", "queuesummary", "queueadd", "queueremove", "queuepause", "queuepenalty", "queuelog",
     "queuereset", "queuereload", "queuerule", "queuememberringinuse", "queuechangepriority", "queues"}
)  # fmt: skip

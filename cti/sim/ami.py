"""The AMI server: sessions, Login, read-class filtering and the actions the CTI needs.

Reply shapes (header order, ActionID position, list replies ending in `...Complete` with `ListItems`,
missing Privilege/Timestamp on list items) follow asterisk-captures 00/07/06c/09.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import structlog

from cti.sim import frames
from cti.sim.engine import Event
from cti.sim.frames import Pairs, encode, get, get_all, truthy

if TYPE_CHECKING:
    from cti.sim.simulator import Simulator

log = structlog.get_logger(__name__)
SESSION_IDS = itertools.count(0x7F5E0C001460, 0x10000)


def _tv(ts: float) -> str:
    d = datetime.fromtimestamp(ts, UTC)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}+0000"


def _exclude(events: tuple[str, ...], prefixes: tuple[str, ...]) -> Callable[[Event], bool]:
    """eventfilter(action(exclude),name(...)) and eventfilter(action(exclude),header(Channel),
    method(starts_with)) = prefix, as user ctifilter in manager.conf."""
    names = frozenset(events)

    def keep(ev: Event) -> bool:
        if ev.name in names:
            return False
        ch = next((v for k, v in ev.pairs if k == "Channel"), "")
        return not (ch and ch.startswith(prefixes))

    return keep


def event_bytes(ev: Event) -> bytes:
    if not ev.data:
        ev.data = encode(
            [("Event", ev.name), ("Privilege", f"{ev.cls},all"), ("Timestamp", f"{ev.ts:.6f}"), *ev.pairs]
        )
    return ev.data


class AmiSession:
    def __init__(self, server: AmiServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.user: str | None = None
        self.read: frozenset[str] = frozenset()
        self.events_on = True
        self.session_id = f"0x{next(SESSION_IDS):x}"
        peer = writer.get_extra_info("peername") or ("127.0.0.1", 0)
        sock = writer.get_extra_info("sockname") or ("127.0.0.1", 0)
        self.remote = f"IPV4/TCP/{peer[0]}/{peer[1]}"
        self.local = f"IPV4/TCP/{sock[0]}/{sock[1]}"
        self.login_ts = 0.0
        self.closing = False
        self.filters: list[Callable[[Event], bool]] = []
        self.pending: list[bytes] = []

    def send(self, pairs: Pairs) -> None:
        self.push(encode(pairs))

    def push(self, data: bytes) -> None:
        """Queue bytes; everything queued in one loop iteration goes out in one write (fewer syscalls)."""
        if self.closing:
            return
        if not self.pending:
            self.server.schedule_flush(self)
        self.pending.append(data)

    def flush(self) -> None:
        if self.pending and not self.closing:
            data = b"".join(self.pending) if len(self.pending) > 1 else self.pending[0]
            self.pending.clear()
            try:
                self.writer.write(data)
            except (RuntimeError, ConnectionError, OSError):
                self.closing = True
        else:
            self.pending.clear()

    def wants(self, ev: Event) -> bool:
        return (
            self.user is not None
            and self.events_on
            and ev.cls in self.read
            and all(f(ev) for f in self.filters)
        )


# app_queue's actions: unknown while Asterisk is still loading modules after a restart (capture 17)
QUEUE_ACTIONS = frozenset(
    {"queuestatus", "queuesummary", "queueadd", "queueremove", "queuepause", "queuepenalty", "queuelog",
     "queuereset", "queuereload", "queuerule", "queuememberringinuse", "queuechangepriority", "queues"}
)  # fmt: skip


class AmiServer:
    def __init__(
        self, sim: Simulator, users: dict[str, tuple[str, str]], auth_fail_delay: float = 1.0
    ) -> None:
        self.sim = sim
        self.users = users
        self.sessions: list[AmiSession] = []
        self.auth_fail_delay = auth_fail_delay
        self.server: asyncio.base_events.Server | None = None
        self.port = 0
        self.user_filters: dict[str, list[Callable[[Event], bool]]] = {}
        self._dirty: list[AmiSession] = []
        self._flush_scheduled = False
        self.booting_until = float("-inf")  # engine time until which app_queue is not loaded
        for user, (events, prefixes) in sim.scenario.ami_excludes.items():
            self.user_filters[user] = [_exclude(events, prefixes)]

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self.server = await asyncio.start_server(self._client, host, port, limit=1 << 20)
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for s in list(self.sessions):
            s.closing = True
            s.writer.close()
        if self.server is not None:
            try:
                await asyncio.wait_for(self.server.wait_closed(), 2)
            except TimeoutError:
                pass

    def schedule_flush(self, s: AmiSession) -> None:
        self._dirty.append(s)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._flush_scheduled = False
        dirty, self._dirty = self._dirty, []
        for s in dirty:
            s.flush()

    def broadcast(self, ev: Event) -> None:
        for s in self.sessions:
            if s.wants(ev):
                s.push(event_bytes(ev))

    def buffered(self) -> int:
        return max(
            (
                s.writer.transport.get_write_buffer_size()
                for s in self.sessions
                if not s.writer.transport.is_closing()
            ),
            default=0,
        )

    async def drain(self, timeout: float = 5.0) -> None:
        """Backpressure for fast mode; a client that reads nothing for `timeout` s is dropped, as
        Asterisk drops a session after manager.conf writetimeout."""
        for s in list(self.sessions):
            if not s.writer.transport.is_closing() and s.writer.transport.get_write_buffer_size() > 1 << 20:
                try:
                    await asyncio.wait_for(s.writer.drain(), timeout)
                except (ConnectionError, OSError):
                    pass
                except TimeoutError:
                    s.closing = True
                    s.writer.transport.abort()
                    if s in self.sessions:
                        self.sessions.remove(s)

    def security(
        self,
        name: str,
        s: AmiSession,
        extra: Pairs,
        severity: str = "Informational",
        exclude: AmiSession | None = None,
        account: bool = True,
    ) -> None:
        now = self.sim.engine.now
        pairs: Pairs = [
            ("EventTV", _tv(now)),
            ("Severity", severity),
            ("Service", "AMI"),
            ("EventVersion", "1"),
        ]
        if account:
            pairs.append(("AccountID", s.user or ""))
        pairs += [("SessionID", s.session_id), ("LocalAddress", s.local), ("RemoteAddress", s.remote), *extra]
        ev = Event(name, "security", now, pairs)
        for other in self.sessions:
            if other is not exclude and other.wants(ev):
                other.push(event_bytes(ev))

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        s = AmiSession(self, reader, writer)
        self.sessions.append(s)
        parser = frames.FrameParser()
        try:
            writer.write(frames.BANNER)
            while not s.closing:
                data = await reader.read(65536)
                if not data:
                    break
                for frame in parser.feed(data):
                    await self._handle(s, frame)
                    if s.closing:
                        break
                await writer.drain()
        except (ConnectionError, OSError, ValueError):
            pass
        finally:
            s.closing = True
            if s in self.sessions:
                self.sessions.remove(s)
            try:
                writer.close()
            except RuntimeError:
                pass

    # ------------------------------------------------------------------ dispatch
    async def _handle(self, s: AmiSession, frame: Pairs) -> None:
        action = (get(frame, "Action") or "").strip()
        aid = get(frame, "ActionID")
        head: Pairs = [("ActionID", aid)] if aid is not None else []
        low = action.lower()
        if not action:
            s.send([("Response", "Error"), *head, ("Message", "Missing action in request")])
            return
        if low == "login":
            await self._login(s, frame, head)
            return
        if low == "logoff":
            s.send([("Response", "Goodbye"), *head, ("Message", "Thanks for all the fish.")])
            s.flush()
            await s.writer.drain()
            s.closing = True
            s.writer.close()
            return
        if s.user is None:
            s.send([("Response", "Error"), *head, ("Message", "Permission denied")])
            self.security(
                "RequestNotAllowed",
                s,
                [("RequestType", action), ("SessionTV", _tv(self.sim.engine.now))],
                severity="Error",
                exclude=s,
            )
            return
        handler = getattr(self, f"a_{low}", None)
        if low in QUEUE_ACTIONS and self.booting():
            handler = None  # capture 17: Login works ~0.6 s before app_queue registers its actions
        if handler is None:
            s.send(
                [
                    ("Response", "Error"),
                    *head,
                    (
                        "Message",
                        f"Invalid/unknown command: {action}. "
                        "Use Action: ListCommands to show available commands.",
                    ),
                ]
            )
            self.security(
                "RequestBadFormat",
                s,
                [
                    ("RequestType", f"Action: {action}"),
                    ("SessionTV", _tv(s.login_ts)),
                    ("AccountID", s.user or ""),
                ],
                severity="Error",
                account=False,
            )
            return
        self.sim.sync_clock()
        try:
            handler(s, frame, head)
        except Exception:  # answer instead of dropping the session on a simulator bug
            log.exception("sim.ami_action_failed", action=action)
            s.send([("Response", "Error"), *head, ("Message", f"Internal simulator error in {action}")])
        self.sim.kick()

    def booting(self) -> bool:
        return self.sim.engine.now < self.booting_until

    def drop_all(self) -> None:
        """Asterisk going down (capture 17): what was queued is written, then EOF, no Goodbye."""
        for s in list(self.sessions):
            s.flush()
            s.closing = True
            s.writer.close()
            if s in self.sessions:
                self.sessions.remove(s)

    async def _login(self, s: AmiSession, frame: Pairs, head: Pairs) -> None:
        user = get(frame, "Username") or ""
        secret = get(frame, "Secret") or ""
        known = self.users.get(user)
        if known is None or known[0] != secret:
            s.user = user
            self.security(
                "InvalidPassword", s, [("SessionTV", _tv(self.sim.engine.now))], severity="Error", exclude=s
            )
            s.user = None
            await asyncio.sleep(self.auth_fail_delay)
            s.send([("Response", "Error"), *head, ("Message", "Authentication failed")])
            s.flush()
            await s.writer.drain()
            s.closing = True
            s.writer.close()
            return
        s.user = user
        s.read = frames.parse_read_classes(known[1])
        s.filters = list(self.user_filters.get(user, []))
        s.login_ts = self.sim.engine.now
        ev = get(frame, "Events")
        if ev is not None and ev.strip().lower() == "off":
            s.events_on = False
        s.send([("Response", "Success"), *head, ("Message", "Authentication accepted")])
        if "system" in s.read and s.events_on and not self.booting():  # not captured while booting
            up = int(self.sim.engine.now - self.sim.engine.start_time)
            s.send(
                [
                    ("Event", "FullyBooted"),
                    ("Privilege", "system,all"),
                    ("Uptime", str(up)),
                    ("LastReload", str(up)),
                    ("Status", "Fully Booted"),
                ]
            )
        self.security("SuccessfulAuth", s, [("UsingPassword", "0"), ("SessionTV", _tv(s.login_ts))])

    # ------------------------------------------------------------------ simple actions
    def a_ping(self, s: AmiSession, f: Pairs, head: Pairs) -> None:
        s.send(
            [("Response", "Success"), *head, ("Ping", "Pong"), ("Timestamp", f"{self.sim.engine.now:.6f}")]
        )

    def a_events(self, s: AmiSession, f: Pairs, head: Pairs) -> None:
        mask = (get(f, "EventMask") or "on").strip().lower()
        if mask in ("off", "no", "false", "0"):
            s.events_on = False
            s.send([("Response", "Success"), *head, ("Events", "Off")])
            return
        s.events_on = True
        if mask not in ("on", "yes", "true", "1", "all"):
            s.read = frames.parse_read_classes(mask) & frames.parse_read_classes(self.users[s.user or ""][1])
        s.send([("Response", "Success"), *head, ("Events", "On")])

    def a_coresettings(self, s: AmiSession, f: Pairs, head: Pairs) -> None:
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

    def a_corestatus(self, s: AmiSession, f: Pairs, head: Pairs) -> None:
        e = self.sim.engine
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

    def a_userevent(self, s: AmiSession, f: Pairs, head: Pairs) -> None:
        name = get(f, "UserEvent") or ""
        s.send([("Response", "Success"), *head])
        body = [(k, v) for k, v in f if k.lower() not in ("action", "actionid", "userevent")]
        self.sim.engine.emit("UserEvent", "user", [("UserEvent", name), *body])

    # ------------------------------------------------------------------ queues
    def a_queueadd(self, s: AmiSession, f: Pairs, head: Pairs) -> None:
        q, iface = get(f, "Queue"), get(f, "Interface")
        if not q:
            s.send([("Response", "Error"), *head, ("Message", "'Queue' not specified.")])
            return
        if not iface:
            s.send([("Response", "Error"), *head, ("Message", "'Interface' not specified.")])
            return
        try:
            pen = int(get(f, "Penalty") or 0)
        except ValueError:
            pen = 0
        self._deferred(
            s,
            head,
            lambda: self.sim.engine.queue_add(
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

    def a_queueremove(self, s: AmiSession, f: Pairs, head: Pairs) -> None:
        q, iface = get(f, "Queue"), get(f, "Interface")
        if not q or not iface:
            s.send([("Response", "Error"), *head, ("Message", "Need 'Queue' and 'Interface' parameters.")])
            return
        self._deferred(
            s, head, lambda: self.sim.engine.queue_remove(q, iface), "Removed interface from queue"
        )

    def _deferred(self, s: AmiSession, head: Pairs, fn: Callable[[], str | None], ok: str) -> None:
        """Run fn with its events held back until the reply is written: the reply comes first (INDEX.md)."""
        held: list[Event] = []
        self.sim.hold_events(held)
        try:
            err = fn()
        finally:
            self.sim.hold_events(None)
        s.send([("Response", "Error" if err else "Success"), *head, ("Message", err or ok)])
        for ev in held:
            self.sim.deliver(ev)

    def a_queuepause(self, s: AmiSession, f: Pairs, head: Pairs) -> None:
        iface = get(f, "Interface")
        if not iface:
            s.send([("Response", "Error"), *head, ("Message", "Need 'Interface' and 'Paused' parameters.")])
            return
        paused = truthy(get(f, "Paused"))
        self._deferred(
            s,
            head,
            lambda: self.sim.engine.queue_pause(
                get(f, "Queue") or None, iface, paused, get(f, "Reason") or ""
            ),
            "Interface paused successfully" if paused else "Interface unpaused successfully",
        )

    def a_queuepenalty(self, s: AmiSession, f: Pairs, head: Pairs) -> None:
        iface = get(f, "Interface")
        try:
            pen = int(get(f, "Penalty") or "")
        except ValueError:
            s.send([("Response", "Error"), *head, ("Message", "Need 'Interface' and 'Penalty' parameters.")])
            return
        self._deferred(
            s,
            head,
            lambda: self.sim.engine.queue_penalty(get(f, "Queue") or None, iface or "", pen),
            "Interface penalty set successfully",
        )

    def a_pjsipqualify(self, s: AmiSession, f: Pairs, head: Pairs) -> None:
        """Capture 17: `Endpoint: agent1` -> Success "Endpoint found, will qualify", then the events."""
        ep = get(f, "Endpoint") or ""
        self._deferred(s, head, lambda: self.sim.engine.pjsip_qualify(ep), "Endpoint found, will qualify")

    def a_queuelog(self, s: AmiSession, f: Pairs, head: Pairs) -> None:
        s.send([("Response", "Success"), *head, ("Message", "Event added successfully")])

    def a_queuestatus(self, s: AmiSession, f: Pairs, head: Pairs) -> None:
        e = self.sim.engine
        qf, mf = get(f, "Queue"), get(f, "Member")
        aid = head
        s.send(
            [("Response", "Success"), *aid, ("EventList", "start"), ("Message", "Queue status will follow")]
        )
        n = 0
        for q in e.queues.values():
            if qf and q.name != qf:
                continue
            s.send([("Event", "QueueParams"), *self._queue_params(q), *aid])
            n += 1
            for m in q.members.values():
                if mf and m.interface != mf and m.name != mf:
                    continue
                s.send([*m.list_item(e.member_status(m)), *aid])
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

    def _queue_params(self, q) -> Pairs:  # type: ignore[no-untyped-def]
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

    def a_queuesummary(self, s: AmiSession, f: Pairs, head: Pairs) -> None:
        e = self.sim.engine
        qf = get(f, "Queue")
        s.send(
            [("Response", "Success"), *head, ("EventList", "start"), ("Message", "Queue summary will follow")]
        )
        n = 0
        for q in e.queues.values():
            if qf and q.name != qf:
                continue
            avail = sum(1 for m in q.members.values() if not m.paused and e.member_status(m) == 1)
            longest = int(max((e.now - en.joined for en in q.entries), default=0))
            hold = int(q.hold_total / q.connected) if q.connected else 0
            talk = int(q.talk_total / q.completed) if q.completed else 0
            s.send(
                [
                    ("Event", "QueueSummary"),
                    ("Queue", q.name),
                    ("LoggedIn", str(sum(1 for m in q.members.values() if e.member_status(m) != 5))),
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
    def a_coreshowchannels(self, s: AmiSession, f: Pairs, head: Pairs) -> None:
        e = self.sim.engine
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
        s.send(
            [("Event", "CoreShowChannelsComplete"), *head, ("EventList", "Complete"), ("ListItems", str(n))]
        )

    def a_status(self, s: AmiSession, f: Pairs, head: Pairs) -> None:
        e = self.sim.engine
        name = get(f, "Channel")
        chans = (
            [e.channels[name]] if name and name in e.channels else ([] if name else list(e.channels.values()))
        )
        if name and not chans:
            s.send([("Response", "Error"), *head, ("Message", "No such channel")])
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

    def a_setvar(self, s: AmiSession, f: Pairs, head: Pairs) -> None:
        e = self.sim.engine
        name, var, value = get(f, "Channel"), get(f, "Variable"), get(f, "Value") or ""
        if not var:
            s.send([("Response", "Error"), *head, ("Message", "No variable specified")])
            return
        if name:
            ch = e.channels.get(name)
            if ch is None:
                s.send([("Response", "Error"), *head, ("Message", "No such channel")])
                return
            s.send([("Response", "Success"), *head, ("Message", "Variable Set")])
            if var.upper() == "CALLERID(NAME)":
                e.set_callerid(ch, None, value)
            elif var.upper() == "CALLERID(NUM)":
                e.set_callerid(ch, value, None)
            else:
                e.varset(ch, var, value)
            return
        e.globals[var] = value
        s.send([("Response", "Success"), *head, ("Message", "Variable Set")])

    def a_getvar(self, s: AmiSession, f: Pairs, head: Pairs) -> None:
        e = self.sim.engine
        name, var = get(f, "Channel"), get(f, "Variable")
        if not var:
            s.send([("Response", "Error"), *head, ("Message", "No variable specified")])
            return
        if name:
            ch = e.channels.get(name)
            if ch is None:
                s.send([("Response", "Error"), *head, ("Message", "No such channel")])
                return
            up = var.upper()
            if up == "CALLERID(NAME)":
                val = "" if ch.cid_name == "<unknown>" else ch.cid_name
            elif up == "CALLERID(NUM)":
                val = "" if ch.cid_num == "<unknown>" else ch.cid_num
            else:
                val = ch.vars.get(var.lstrip("_"), "")
        else:
            val = e.globals.get(var, "")
        s.send([("Response", "Success"), *head, ("Variable", var), ("Value", val)])

    def a_hangup(self, s: AmiSession, f: Pairs, head: Pairs) -> None:
        name = get(f, "Channel") or ""
        ch = self.sim.engine.channels.get(name)
        if ch is None:
            s.send([("Response", "Error"), *head, ("Message", "No such channel")])
            return
        s.send([("Response", "Success"), *head, ("Message", "Channel Hungup")])
        try:
            cause = int(get(f, "Cause") or 16)
        except ValueError:
            cause = 16
        self.sim.hangup_channel(ch, cause)

    def a_redirect(self, s: AmiSession, f: Pairs, head: Pairs) -> None:
        name = get(f, "Channel") or ""
        ch = self.sim.engine.channels.get(name)
        if ch is None:
            s.send([("Response", "Error"), *head, ("Message", "Channel does not exist: " + name)])
            return
        err = self.sim.redirect(ch, get(f, "Context") or "", get(f, "Exten") or "", get(f, "Priority") or "1")
        if err:
            s.send([("Response", "Error"), *head, ("Message", err)])
        else:
            s.send([("Response", "Success"), *head, ("Message", "Redirect successful")])

    def a_mixmonitor(self, s: AmiSession, f: Pairs, head: Pairs) -> None:
        e = self.sim.engine
        ch = e.channels.get(get(f, "Channel") or "")
        if ch is None:
            s.send([("Response", "Error"), *head, ("Message", "No such channel")])
            return
        path = get(f, "File") or f"/var/spool/asterisk/monitor/{ch.uniqueid}.wav"
        s.send([("Response", "Success"), *head])
        e.start_recording(ch, path)

    def a_stopmixmonitor(self, s: AmiSession, f: Pairs, head: Pairs) -> None:
        e = self.sim.engine
        ch = e.channels.get(get(f, "Channel") or "")
        if ch is None:
            s.send([("Response", "Error"), *head, ("Message", "No such channel")])
            return
        if ch.recording is None:
            s.send([("Response", "Error"), *head, ("Message", "Could not stop MixMonitor")])
            return
        s.send([("Response", "Success"), *head])
        e.finish_recording(ch, stopped=True)

    def a_originate(self, s: AmiSession, f: Pairs, head: Pairs) -> None:
        from cti.sim.originate import CustomerFirstCall, OriginateCall, OriginateRequest, is_customer_first

        chan = get(f, "Channel")
        if not chan:
            s.send([("Response", "Error"), *head, ("Message", "Channel not specified")])
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
        call: OriginateCall | CustomerFirstCall
        if is_customer_first(chan):
            call = CustomerFirstCall(self.sim.engine, req)
        else:
            call = OriginateCall(self.sim.engine, req)
        pjsip = chan.upper().startswith("PJSIP/")
        if pjsip and not req.application and req.context not in ("callback", "callback-did", "agents"):
            # 09: a PJSIP channel with a missing Context/Exten fails synchronously
            s.send([("Response", "Error"), *head, ("Message", "Extension does not exist.")])
            return
        if not truthy(get(f, "Async")):
            if not call.reachable():
                s.send([("Response", "Error"), *head, ("Message", "Originate failed")])
                return
            req.send_response = False  # OriginateResponse is only sent for Async originates
        s.send([("Response", "Success"), *head, ("Message", "Originate successfully queued")])
        self.sim.engine.after(0, call.start)

    def a_command(self, s: AmiSession, f: Pairs, head: Pairs) -> None:
        cmd = " ".join((get(f, "Command") or "").split())
        out = self.sim.cli(cmd)
        if out is None:
            first = " ".join(cmd.split()[:2])
            s.send(
                [
                    ("Response", "Error"),
                    *head,
                    ("Message", "Command output follows"),
                    (
                        "Output",
                        f"No such command '{cmd}' "
                        f"(type 'core show help {first}' for other possible commands)",
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

    def a_listcommands(self, s: AmiSession, f: Pairs, head: Pairs) -> None:
        names = sorted(n[2:] for n in dir(self) if n.startswith("a_"))
        s.send([("Response", "Success"), *head, *[(n.capitalize(), "") for n in names]])

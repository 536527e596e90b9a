"""The AMI server of the simulated PBX: TCP sessions, Login/Logoff, read-class filtering, security
events, and dispatch of every other action through `cti.sim.ami_actions.ACTIONS`. It knows the PBX only
through an `AmiDriver` (the Simulator), never the simulator's own controls.

Reply shapes and security events follow asterisk-captures 00/07/06c/09; restart behaviour 17.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from cti.sim import frames
from cti.sim.ami_actions import ACTIONS, QUEUE_ACTIONS, AmiDriver
from cti.sim.ami_session import AmiSession, event_bytes, exclude_filter, tv
from cti.sim.frames import Pairs, get
from cti.sim.model import PbxEvent

__all__ = ["AmiServer", "AmiSession", "event_bytes"]

log = structlog.get_logger(__name__)


class AmiServer:
    def __init__(
        self,
        driver: AmiDriver,
        users: dict[str, tuple[str, str]],
        excludes: dict[str, tuple[tuple[str, ...], tuple[str, ...]]],
        auth_fail_delay: float = 1.0,
    ) -> None:
        self.driver = driver
        self.users = users
        self.sessions: list[AmiSession] = []
        self.auth_fail_delay = auth_fail_delay
        self.server: asyncio.base_events.Server | None = None
        self.port = 0
        self.user_filters: dict[str, list[Callable[[PbxEvent], bool]]] = {}
        self._dirty: list[AmiSession] = []
        self._flush_scheduled = False
        self.booting_until = float("-inf")  # virtual time until which app_queue is not loaded
        for user, (events, prefixes) in excludes.items():
            self.user_filters[user] = [exclude_filter(events, prefixes)]

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

    def broadcast(self, ev: PbxEvent) -> None:
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
        now = self.driver.pbx.core.now
        pairs: Pairs = [
            ("EventTV", tv(now)),
            ("Severity", severity),
            ("Service", "AMI"),
            ("EventVersion", "1"),
        ]
        if account:
            pairs.append(("AccountID", s.user or ""))
        pairs += [("SessionID", s.session_id), ("LocalAddress", s.local), ("RemoteAddress", s.remote), *extra]
        ev = PbxEvent(name, "security", now, pairs)
        for other in self.sessions:
            if other is not exclude and other.wants(ev):
                other.push(event_bytes(ev))

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        s = AmiSession(reader, writer, self.schedule_flush)
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
            await s.last_reply([("Response", "Goodbye"), *head, ("Message", "Thanks for all the fish.")])
            return
        if s.user is None:
            s.send([("Response", "Error"), *head, ("Message", "Permission denied")])
            self.security(
                "RequestNotAllowed",
                s,
                [("RequestType", action), ("SessionTV", tv(self.driver.pbx.core.now))],
                severity="Error",
                exclude=s,
            )
            return
        handler = ACTIONS.get(low)
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
                    ("SessionTV", tv(s.login_ts)),
                    ("AccountID", s.user or ""),
                ],
                severity="Error",
                account=False,
            )
            return
        self.driver.sync_clock()
        try:
            handler(self.driver, s, frame, head)
        except Exception:  # answer instead of dropping the session on a simulator bug
            log.exception("sim.ami_action_failed", action=action)
            s.send([("Response", "Error"), *head, ("Message", f"Internal simulator error in {action}")])
        self.driver.kick()

    def booting(self) -> bool:
        return self.driver.pbx.core.now < self.booting_until

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
                "InvalidPassword",
                s,
                [("SessionTV", tv(self.driver.pbx.core.now))],
                severity="Error",
                exclude=s,
            )
            s.user = None
            await asyncio.sleep(self.auth_fail_delay)
            await s.last_reply([("Response", "Error"), *head, ("Message", "Authentication failed")])
            return
        s.user = user
        s.granted = s.read = frames.parse_read_classes(known[1])
        s.filters = list(self.user_filters.get(user, []))
        s.login_ts = self.driver.pbx.core.now
        ev = get(frame, "Events")
        if ev is not None and ev.strip().lower() == "off":
            s.events_on = False
        s.send([("Response", "Success"), *head, ("Message", "Authentication accepted")])
        if "system" in s.read and s.events_on and not self.booting():  # not captured while booting
            core = self.driver.pbx.core
            up = int(core.now - core.start_time)
            s.send(
                [
                    ("Event", "FullyBooted"),
                    ("Privilege", "system,all"),
                    ("Uptime", str(up)),
                    ("LastReload", str(up)),
                    ("Status", "Fully Booted"),
                ]
            )
        self.security("SuccessfulAuth", s, [("UsingPassword", "0"), ("SessionTV", tv(s.login_ts))])

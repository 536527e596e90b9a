"""Our asyncio AMI client on top of the sans-IO codec (docs/decisions/0200-ami-codec.md) and the
sans-IO action bookkeeping (`cti.ami.actions`: replies matched to actions, EventList collection, the
keepalive verdict, backoff). This class only does the I/O, the waiting and the delivery.

Guarantees (each one a panoramisk 1.4 defect we measured, see the decision note):
- `start()` raises `AuthenticationError` on `Authentication failed` (never a silent half-login).
- every action has a timeout; an action while disconnected waits at most that long for a connection.
- nothing is ever re-sent after a reconnect: an action in flight when the connection drops fails
  with `ConnectionLost` ("outcome unknown"); the caller decides (an Originate is never sent twice).
- a Ping every `ping_interval` s; no answer within `ping_timeout` s = dead peer -> reconnect with
  exponential backoff + jitter.
- `close()` closes the socket and cancels a scheduled reconnect.
- events are delivered to subscribers one at a time, in arrival order; an async subscriber is
  awaited before the next event (backpressure reaches the socket instead of growing a buffer).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import os
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog

from cti.ami.actions import ActionReply, PendingActions, action_frame, backoff_delay, ping_verdict
from cti.ami.codec import Banner, Decoder, Message, ProtocolError, encode
from cti.clock import Clock, SystemClock

log = structlog.get_logger(__name__)

EventHandler = Callable[[Message], Awaitable[None] | None]
ConnectHook = Callable[["AMIClient"], Awaitable[None]]


class AMIError(Exception):
    """Base of everything this client raises."""


class AuthenticationError(AMIError):
    """Asterisk answered the Login with an error (wrong user or secret)."""


class NotConnected(AMIError):
    """No connection to Asterisk within the action's timeout; the action was not sent."""


class ConnectionLost(AMIError):
    """The connection dropped after the action was sent: Asterisk may or may not have run it."""


class ActionTimeout(AMIError, TimeoutError):
    """No (complete) reply in time. The action was sent; its outcome is unknown."""


class ActionError(AMIError):
    """Asterisk replied `Response: Error`."""

    def __init__(self, action: str, reply: Message) -> None:
        self.action = action
        self.reply = reply
        super().__init__(f"AMI {action} failed: {reply.first('Message') or reply.name}")


Reply = ActionReply  # the name this module used to define; kept for importers


class _Delivery:
    """One async subscriber: its own ordered queue and task. A handler may await an AMI action (the
    peak guard's QueuePause, the dispatcher's bookkeeping) without blocking the reader, which must
    keep reading to deliver that action's reply; awaited inline, the two would deadlock until the
    action timed out. Bounded: a handler that falls this far behind slows the reader (backpressure)."""

    def __init__(self, handler: EventHandler, maxsize: int) -> None:
        self.handler = handler
        self.queue: asyncio.Queue[Message] = asyncio.Queue(maxsize)
        self.task: asyncio.Task[None] | None = None

    async def put(self, msg: Message) -> None:
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(
                self._run(), name=f"ami-deliver-{getattr(self.handler, '__name__', '')}"
            )
        await self.queue.put(msg)

    async def _run(self) -> None:
        while True:
            msg = await self.queue.get()
            try:
                await self.handler(msg)  # type: ignore[misc]
            except Exception:
                log.exception("ami event handler failed", ami_event=msg.name)
            finally:
                self.queue.task_done()

    async def close(self, drain_s: float) -> None:
        if self.task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.queue.join(), drain_s)
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        self.task = None


class AMIClient:
    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        *,
        action_timeout: float = 10.0,
        connect_timeout: float = 5.0,
        ping_interval: float = 20.0,
        ping_timeout: float = 5.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        clock: Clock | None = None,
        read_size: int = 65536,
    ) -> None:
        self.host, self.port = host, port
        self._username, self._secret = username, secret
        self.action_timeout = action_timeout
        self.connect_timeout = connect_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.clock: Clock = clock or SystemClock()
        self.read_size = read_size
        self.banner: Banner | None = None
        self.connects = 0  # successful logins so far (1 after start, +1 per reconnect)
        self.last_error: BaseException | None = None
        self._ids = (f"cti-{os.getpid()}-{random.getrandbits(24):06x}-{n}" for n in itertools.count(1))
        self._actions = PendingActions()  # sans-IO: which replies are awaited, lists being collected
        self._waiting: dict[str, asyncio.Future[ActionReply]] = {}  # ActionID -> whoever awaits it
        self._handlers: list[tuple[EventHandler, _Delivery | None]] = []
        self._on_connect: list[ConnectHook] = []
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._ping_task: asyncio.Task[None] | None = None
        self._last_rx = 0.0  # loop time of the last bytes read from the peer
        self._supervisor: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._lost: asyncio.Event = asyncio.Event()
        self._closing = False

    @classmethod
    def from_settings(cls, ami: Any, clock: Clock | None = None) -> AMIClient:
        """From `Settings.ami` (host, port, username, secret, action_timeout_s, ping_interval_s,
        reconnect_max_s). The secret stays a SecretStr until this point."""
        return cls(
            ami.host,
            ami.port,
            ami.username,
            ami.secret.get_secret_value(),
            action_timeout=ami.action_timeout_s,
            ping_interval=ami.ping_interval_s,
            ping_timeout=min(ami.action_timeout_s, ami.ping_interval_s),
            backoff_max=ami.reconnect_max_s,
            clock=clock,
        )

    # ---- subscription -------------------------------------------------------------------
    def subscribe(self, handler: EventHandler, *, queue_max: int = 10000) -> Callable[[], None]:
        """Call `handler(msg)` for every event in arrival order; returns an unsubscribe function.
        A sync handler runs inline in the reader; a coroutine handler runs in its own ordered task,
        so it may itself await actions of this client."""
        delivery = _Delivery(handler, queue_max) if inspect.iscoroutinefunction(handler) else None
        entry = (handler, delivery)
        self._handlers.append(entry)
        return lambda: self._handlers.remove(entry) if entry in self._handlers else None

    def on_connect(self, hook: ConnectHook) -> None:
        """`await hook(client)` after every successful login (first connect and each reconnect),
        before `start()` returns; the place to resynchronise state."""
        self._on_connect.append(hook)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # ---- lifecycle ----------------------------------------------------------------------
    async def start(self, *, retry: bool = False) -> None:
        """Connect and log in, then keep the connection up until close().

        retry=False: the first failure raises (NotConnected, AuthenticationError).
        retry=True: keep trying with backoff until connected (Asterisk may start after us); a refused
        login still raises at once, because waiting will not fix a wrong secret."""
        if self._supervisor is not None:
            raise RuntimeError("AMIClient already started")
        self._closing = False
        attempt = 0
        while True:
            try:
                await self._connect_once()
                break
            except AuthenticationError:
                raise
            except AMIError as e:
                if not retry:
                    raise
                self.last_error = e
                log.warning("ami not reachable yet", error=str(e), attempt=attempt + 1)
                await self.clock.sleep(self._backoff(attempt))
                attempt += 1
        self._supervisor = asyncio.create_task(self._supervise(), name="ami-supervisor")

    async def close(self) -> None:
        """Log off, close the socket, cancel keepalive and any scheduled reconnect. Idempotent."""
        self._closing = True
        tasks = [t for t in (self._supervisor, self._ping_task) if t is not None]
        for t in tasks:
            t.cancel()
        w = self._writer
        if w is not None and self._connected.is_set():
            with contextlib.suppress(Exception):
                w.write(encode({"Action": "Logoff", "ActionID": next(self._ids)}))
        self._drop_connection(AMIError("client closed"))
        if self._reader_task is not None:
            tasks.append(self._reader_task)
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._supervisor = self._ping_task = self._reader_task = None
        for _, delivery in self._handlers:  # events already read reach their handlers before we stop
            if delivery is not None:
                await delivery.close(drain_s=self.action_timeout)

    async def __aenter__(self) -> AMIClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---- actions ------------------------------------------------------------------------
    async def action(
        self,
        name: str,
        headers: Mapping[str, str | list[str]] | None = None,
        *,
        timeout: float | None = None,
        check: bool = True,
    ) -> ActionReply:
        """Send one action and wait for its reply (and all list items for list actions).

        Raises NotConnected (not sent), ActionTimeout / ConnectionLost (sent, outcome unknown),
        ActionError (Asterisk said Error; only when `check`)."""
        timeout = self.action_timeout if timeout is None else timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if not self._connected.is_set():
            if self._closing:
                raise NotConnected(f"AMI {name} not sent: client is closed")
            try:
                await asyncio.wait_for(self._connected.wait(), timeout)
            except TimeoutError:
                raise NotConnected(
                    f"AMI {name} not sent: no connection to {self.host}:{self.port} within {timeout:g}s"
                ) from None
        return await self._send(name, headers, deadline - loop.time(), check)

    async def _send(
        self,
        name: str,
        headers: Mapping[str, str | list[str]] | None,
        timeout: float,
        check: bool,
    ) -> ActionReply:
        writer = self._writer
        if writer is None or not self._connected.is_set():
            raise NotConnected(f"AMI {name} not sent: not connected")
        action_id = next(self._ids)
        data = encode(action_frame(name, action_id, headers))
        fut: asyncio.Future[ActionReply] = asyncio.get_running_loop().create_future()
        self._actions.add(action_id, name)
        self._waiting[action_id] = fut
        try:
            writer.write(data)
            try:
                reply = await asyncio.wait_for(asyncio.shield(fut), max(0.0, timeout))
            except TimeoutError:
                raise ActionTimeout(
                    f"AMI {name} (ActionID {action_id}): no complete reply within {timeout:g}s; "
                    "it may or may not have run"
                ) from None
        finally:
            self._actions.forget(action_id)
            self._waiting.pop(action_id, None)
        if check and reply.response.first("Response") == "Error":
            raise ActionError(name, reply.response)
        return reply

    async def ping(self, timeout: float | None = None) -> ActionReply:
        return await self.action("Ping", timeout=timeout)

    # ---- connection ---------------------------------------------------------------------
    async def _connect_once(self) -> None:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), self.connect_timeout
            )
        except (OSError, TimeoutError) as e:
            raise NotConnected(f"cannot connect to AMI at {self.host}:{self.port}: {e}") from e
        decoder = Decoder()
        try:
            self.banner = await asyncio.wait_for(self._read_banner(reader, decoder), self.connect_timeout)
        except BaseException:
            writer.close()
            raise
        self._writer = writer
        self._lost = asyncio.Event()
        self._reader_task = asyncio.create_task(self._read_loop(reader, decoder, writer), name="ami-reader")
        # Login goes out before we call ourselves connected: actions queued by others wait for it
        self._connected.set()
        try:
            reply = await self._send(
                "Login",
                {"Username": self._username, "Secret": self._secret},
                self.action_timeout,
                check=False,
            )
        except (ConnectionLost, ActionTimeout, NotConnected) as e:
            await self._abandon(e)
            raise NotConnected(f"AMI login to {self.host}:{self.port} got no answer: {e}") from e
        if reply.response.first("Response") != "Success":
            await self._abandon(AMIError("login refused"))
            raise AuthenticationError(
                f"AMI login as {self._username!r} refused by {self.host}:{self.port}: "
                f"{reply.response.first('Message')}"
            )
        self.connects += 1
        log.info("ami connected", host=self.host, port=self.port, banner=str(self.banner), n=self.connects)
        # Events of the previous connection still queued for handlers are handled before the hooks
        # resynchronise: a snapshot must never be overtaken by older events.
        for _, delivery in self._handlers:
            if delivery is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(delivery.queue.join(), self.action_timeout)
        try:
            for hook in list(self._on_connect):
                await hook(self)
        except Exception as e:
            # e.g. the resync could not finish: state would be wrong, so this connection is no good
            await self._abandon(e)
            if isinstance(e, AMIError):
                raise
            raise AMIError(f"on_connect hook failed: {e!r}") from e
        if self.ping_interval > 0:
            self._ping_task = asyncio.create_task(self._keepalive(), name="ami-keepalive")

    async def _read_banner(self, reader: asyncio.StreamReader, decoder: Decoder) -> Banner:
        while True:
            data = await reader.read(self.read_size)
            if not data:
                raise NotConnected(f"AMI at {self.host}:{self.port} closed before the greeting")
            try:
                out = decoder.feed(data)
            except ProtocolError as e:
                raise NotConnected(str(e)) from e
            if out:
                banner = out[0]
                assert isinstance(banner, Banner)
                if len(out) > 1:  # frames glued to the banner: none expected before Login
                    log.warning("ami frames before login ignored", n=len(out) - 1)
                return banner

    async def _abandon(self, exc: BaseException) -> None:
        """Give up the connection being set up: close it and wait for its reader to finish, so a
        late end-of-file from it can never touch the next connection."""
        self._drop_connection(exc)
        task, self._reader_task = self._reader_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _read_loop(
        self, reader: asyncio.StreamReader, decoder: Decoder, writer: asyncio.StreamWriter
    ) -> None:
        exc: BaseException = ConnectionLost("connection closed by Asterisk")
        try:
            loop = asyncio.get_running_loop()
            while True:
                data = await reader.read(self.read_size)
                if not data:
                    break
                self._last_rx = loop.time()
                for msg in decoder.feed(data):
                    await self._dispatch(msg)  # type: ignore[arg-type]
        except asyncio.CancelledError:
            exc = ConnectionLost("reader cancelled")
            raise
        except (OSError, ProtocolError) as e:
            exc = ConnectionLost(f"AMI connection error: {e}")
        finally:
            if self._writer is writer:  # still the current connection (not one already replaced)
                self._drop_connection(exc)

    async def _dispatch(self, msg: Message) -> None:
        routed = self._actions.receive(msg)
        if routed.kind == "completed":
            assert routed.action_id is not None and routed.reply is not None
            fut = self._waiting.get(routed.action_id)
            if fut is not None and not fut.done():
                fut.set_result(routed.reply)
            return
        if routed.kind != "event":
            return  # part of a list being collected, or a reply nobody waits for any more
        for handler, delivery in self._handlers:
            if delivery is not None:
                await delivery.put(msg)
                continue
            try:
                handler(msg)
            except Exception:
                log.exception("ami event handler failed", ami_event=msg.name)

    def _drop_connection(self, exc: BaseException) -> None:
        """Forget the socket; every in-flight action fails now (never re-sent)."""
        was = self._connected.is_set()
        self._connected.clear()
        w, self._writer = self._writer, None
        if w is not None:
            with contextlib.suppress(Exception):
                w.close()
        for aid, action in self._actions.drop_all():
            fut = self._waiting.pop(aid, None)
            if fut is not None and not fut.done():
                fut.set_exception(
                    ConnectionLost(f"AMI {action} (ActionID {aid}): connection lost, outcome unknown ({exc})")
                )
        if self._ping_task is not None and self._ping_task is not asyncio.current_task():
            self._ping_task.cancel()
        if was and not self._closing:
            log.warning("ami connection lost", host=self.host, port=self.port, reason=str(exc))
        self._lost.set()

    async def _keepalive(self) -> None:
        while True:
            await self.clock.sleep(self.ping_interval)
            try:
                await self._send("Ping", None, self.ping_timeout, check=False)
            except ActionTimeout:
                quiet_s = asyncio.get_running_loop().time() - self._last_rx
                held = any(d is not None and d.queue.full() for _, d in self._handlers)
                if (
                    ping_verdict(quiet_s=quiet_s, ping_timeout=self.ping_timeout, subscribers_held=held)
                    == "late"
                ):
                    log.warning("ami Ping reply late; peer still sending", quiet_s=round(quiet_s, 1))
                    continue
                log.warning("ami peer did not answer Ping: treating as dead", timeout=self.ping_timeout)
                self._drop_connection(ConnectionLost("no Ping reply (half-open connection)"))
                return
            except AMIError:
                return

    def _backoff(self, attempt: int) -> float:
        return backoff_delay(
            attempt, initial=self.backoff_initial, maximum=self.backoff_max, jitter=random.random()
        )

    async def _supervise(self) -> None:
        while not self._closing:
            await self._lost.wait()
            if self._reader_task is not None:
                self._reader_task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._reader_task
                self._reader_task = None
            attempt = 0
            while not self._closing:
                delay = self._backoff(attempt)
                await self.clock.sleep(delay)
                try:
                    await self._connect_once()
                    break
                except AuthenticationError as e:
                    self.last_error = e
                    log.error("ami reconnect: login refused", error=str(e))
                except AMIError as e:
                    self.last_error = e
                    log.warning("ami reconnect failed", error=str(e), attempt=attempt + 1)
                attempt += 1

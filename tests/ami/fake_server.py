"""A fake AMI server on 127.0.0.1:<random port> speaking the Asterisk 22 wire format (captures 00/07).

Behaviour switches let a test reproduce each panoramisk defect: ignore pings (half-open), hold an
action without a reply, drop every connection, refuse the login, push raw bytes in small chunks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

from cti.ami.codec import Decoder, Message, encode

BANNER = b"Asterisk Call Manager/11.0.0\r\n"

Handler = Callable[["FakeConn", Message], "list[dict[str, str]] | None"]


@dataclass
class FakeConn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    logged_in: bool = False

    def send(self, frame: dict[str, str] | bytes) -> None:
        self.writer.write(frame if isinstance(frame, bytes) else encode(frame))

    def close(self) -> None:
        self.writer.close()


@dataclass
class FakeAMI:
    username: str = "cti"
    secret: str = "secret"
    answer_pings: bool = True
    hold: set[str] = field(default_factory=set)  # action names never answered
    handlers: dict[str, Handler] = field(default_factory=dict)
    received: list[Message] = field(default_factory=list)
    conns: list[FakeConn] = field(default_factory=list)
    logins: int = 0
    on_login: Callable[[FakeConn], None] | None = None
    port: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> FakeAMI:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for c in self.conns:
            c.close()
        for t in list(self._tasks):
            t.cancel()
            with contextlib.suppress(BaseException):
                await t
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1)

    def drop_all(self) -> None:
        for c in self.conns:
            c.close()
        self.conns.clear()

    def broadcast(self, frame: dict[str, str] | bytes) -> None:
        for c in self.conns:
            if c.logged_in:
                c.send(frame)

    def actions(self, name: str) -> list[Message]:
        return [m for m in self.received if m.get("Action") == name]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        conn = FakeConn(reader, writer)
        self.conns.append(conn)
        writer.write(BANNER)
        dec = Decoder(expect_banner=False)
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                for msg in dec.feed(data):
                    assert isinstance(msg, Message)
                    self.received.append(msg)
                    await self._handle(conn, msg)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _handle(self, conn: FakeConn, msg: Message) -> None:
        action = msg.first("Action")
        aid = msg.get("ActionID")
        head = {"Response": "Success"}
        if aid is not None:
            head["ActionID"] = aid  # type: ignore[assignment]
        if action == "Login":
            if msg.get("Username") == self.username and msg.get("Secret") == self.secret:
                conn.logged_in = True
                self.logins += 1
                conn.send({**head, "Message": "Authentication accepted"})
                conn.send({"Event": "FullyBooted", "Privilege": "system,all", "Status": "Fully Booted"})
                if self.on_login:
                    self.on_login(conn)
            else:
                await asyncio.sleep(0.05)  # Asterisk waits ~1 s, then answers and closes
                conn.send(
                    {
                        "Response": "Error",
                        **({"ActionID": aid} if aid else {}),  # type: ignore[dict-item]
                        "Message": "Authentication failed",
                    }
                )
                await conn.writer.drain()
                conn.close()
            return
        if not conn.logged_in:
            conn.send({"Response": "Error", "ActionID": aid, "Message": "Permission denied"})  # type: ignore[dict-item]
            return
        if action in self.hold:
            return
        if action == "Ping":
            if self.answer_pings:
                conn.send({**head, "Ping": "Pong", "Timestamp": "1795430948.197228"})
            return
        if action == "Logoff":
            conn.send({"Response": "Goodbye", "ActionID": aid, "Message": "Thanks for all the fish."})  # type: ignore[dict-item]
            conn.close()
            return
        h = self.handlers.get(action)
        if h is not None:
            frames = h(conn, msg)
            for f in frames or ():
                conn.send({k: (aid if v == "$ID" else v) for k, v in f.items()})  # type: ignore[misc]
            return
        conn.send(
            {
                "Response": "Error",
                "ActionID": aid,  # type: ignore[dict-item]
                "Message": f"Invalid/unknown command: {action}. Use Action: ListCommands to show "
                "available commands.",
            }
        )

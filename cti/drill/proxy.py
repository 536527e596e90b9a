"""A TCP proxy a drill puts in front of PostgreSQL or AMI to break the link the ways networks break:

- `cut()`: open connections are reset and new ones refused (a cable pulled, a firewall RST);
- `blackhole()`: connections are still accepted (the SYN is answered by the kernel) but nothing is
  forwarded either way and no FIN is ever sent: a half-open link, or a server that hangs;
- `restore()`: back to forwarding. Connections that were blackholed stay dead (their bytes are gone),
  as they would after a real outage: the client must notice and reconnect.

`tap(direction, bytes, forwarded)` sees every chunk read from either side, with whether it was passed
on: the drill counts AMI frames the simulator emitted and the ones the CTI's socket got.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

# direction: "down" = from the server (PostgreSQL, Asterisk) to the client (the CTI), "up" = back
Tap = Callable[["Pipe", str, bytes, bool], None]


@dataclass(eq=False)
class Pipe:
    """One proxied connection."""

    client: asyncio.StreamWriter
    server: asyncio.StreamWriter
    forwarding: bool = True
    n: int = 0
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def abort(self) -> None:
        for w in (self.client, self.server):
            with contextlib.suppress(Exception):
                w.transport.abort()


class TcpProxy:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, unix_path: str | None = None,
                 tap: Tap | None = None) -> None:  # fmt: skip
        self.target_host = host
        self.target_port = port
        self.unix_path = unix_path
        self.tap = tap
        self.port = 0
        self.mode = "forward"  # forward | cut | blackhole
        self.pipes: list[Pipe] = []
        self.connections = 0
        self._server: asyncio.Server | None = None

    @classmethod
    async def for_postgres(cls, dsn: str) -> tuple[TcpProxy, str]:
        """A started proxy in front of the server of `dsn` (TCP or a Unix socket, as the embedded
        server has), and the DSN that goes through it."""
        parts = urlsplit(dsn)
        host = parse_qs(parts.query).get("host", [""])[0]
        port = parts.port or 5432
        unix = f"{host}/.s.PGSQL.{port}" if host.startswith("/") else None
        proxy = cls(parts.hostname or "127.0.0.1", port, unix_path=unix)
        await proxy.start()
        user = parts.username or "postgres"
        return proxy, f"postgresql://{user}@127.0.0.1:{proxy.port}{parts.path}"

    async def start(self, port: int = 0) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", port or self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "blackhole":  # accepted, never answered, never closed (until restore+close)
            self.pipes.append(Pipe(writer, writer, forwarding=False))
            return
        try:
            if self.unix_path:
                up_r, up_w = await asyncio.open_unix_connection(self.unix_path)
            else:
                up_r, up_w = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        pipe = Pipe(writer, up_w, n=self.connections)
        self.pipes.append(pipe)
        pipe.tasks = [
            asyncio.create_task(self._pump(pipe, reader, up_w, "up")),
            asyncio.create_task(self._pump(pipe, up_r, writer, "down")),
        ]

    async def _pump(self, pipe: Pipe, r: asyncio.StreamReader, w: asyncio.StreamWriter, way: str) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await r.read(65536):
                if self.tap is not None:
                    self.tap(pipe, way, data, pipe.forwarding)
                if pipe.forwarding:
                    w.write(data)
                    await w.drain()
        if pipe.forwarding:  # a clean end on one side is passed on; a blackholed pipe stays silent
            with contextlib.suppress(Exception):
                w.close()

    async def cut(self) -> None:
        """Reset every open connection and refuse new ones."""
        self.mode = "cut"
        if self._server is not None:
            self._server.close()
            self._server = None
        for p in self.pipes:
            p.forwarding = False
            p.abort()
        self.pipes.clear()
        await asyncio.sleep(0)

    def blackhole(self) -> None:
        """Stop forwarding on every connection, keep them open, accept new ones and ignore them."""
        self.mode = "blackhole"
        for p in self.pipes:
            p.forwarding = False

    async def restore(self) -> None:
        """Forward again. The server's side of each blackholed connection is reset: by the time the
        network is back the server has given up on those clients (the leader's lock connection sets TCP
        keepalives of ~4 s, cti.cluster.leader.KEEPALIVE; a server writing to a dead peer gives up on
        retransmission). Kept open, they would hold the leader's advisory lock forever, which no real
        blackhole does. The client's side stays silent: the client must notice by itself."""
        for p in self.pipes:
            if not p.forwarding and p.server is not p.client:
                with contextlib.suppress(Exception):
                    p.server.transport.abort()
        was, self.mode = self.mode, "forward"
        if was == "cut" or self._server is None:
            await self.start(self.port)

    async def close(self) -> None:
        await self.cut()

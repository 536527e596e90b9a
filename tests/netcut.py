"""A TCP proxy in front of PostgreSQL that a test can cut and restore: a real outage, as the client
sees it (open connections dropped, new ones refused), without stopping the shared server."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import parse_qs, urlsplit, urlunsplit


class NetCut:
    def __init__(self, target_url: str) -> None:
        parts = urlsplit(target_url)
        q = parse_qs(parts.query)
        self._unix = q["host"][0] if q.get("host") and q["host"][0].startswith("/") else None
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 5432
        if self._unix:
            self._unix = f"{self._unix}/.s.PGSQL.{self._port}"
        self._target = parts
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.StreamWriter] = set()
        self.port = 0

    @property
    def url(self) -> str:
        p = self._target
        user = p.username or "postgres"
        return urlunsplit(("postgresql", f"{user}@127.0.0.1:{self.port}", p.path, "", ""))

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if self._unix:
                up_r, up_w = await asyncio.open_unix_connection(self._unix)
            else:
                up_r, up_w = await asyncio.open_connection(self._host, self._port)
        except OSError:
            writer.close()
            return
        self._pipes.update((writer, up_w))

        async def pump(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            w.close()

        await asyncio.gather(pump(reader, up_w), pump(up_r, writer))
        self._pipes.difference_update((writer, up_w))

    async def cut(self) -> None:
        """Drop every open connection and refuse new ones."""
        if self._server:
            self._server.close()
            self._server = None
        for w in list(self._pipes):
            w.transport.abort()
        self._pipes.clear()
        await asyncio.sleep(0.05)

    async def restore(self) -> None:
        await self.start()

    async def close(self) -> None:
        await self.cut()

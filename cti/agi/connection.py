"""One FastAGI TCP connection as an asyncio.Protocol: bytes into a buffer, complete lines out.

Replaces StreamReader/StreamWriter on the hot path (docs/decisions/0301-route-hot-path.md): a line
already in the buffer is returned without suspending, and a reply that arrives completes the one
waiting read straight from `data_received`. Lines split across packets, several lines in one packet
and a multi-line reply cut anywhere are all just bytes in the buffer until a separator shows up.

After the session the server half-closes; the rest (reading until Asterisk closes, then closing)
happens in the protocol callbacks, so the session's task can end at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

from cti.agi.protocol import MAX_LINE_BYTES, AgiHangup, AgiProtocolError


class AgiConnection(asyncio.Protocol):
    def __init__(
        self,
        on_open: Callable[[AgiConnection], Any],
        on_close: Callable[[AgiConnection], Any],
        *,
        limit: int = MAX_LINE_BYTES,
    ) -> None:
        self._on_open = on_open
        self._on_close = on_close
        self.limit = limit
        self.loop = asyncio.get_running_loop()  # not looked up per read: that costs a getpid()
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._scanned = 0  # bytes of _buf already searched for the current separator
        self._sep = b"\n"
        self._waiter: asyncio.Future[bytes] | None = None
        self._eof = False  # Asterisk closed its side (or the connection is gone)
        self._paused = False
        self._draining = False  # after the session: discard input, close on EOF
        self._close_timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._on_open(self)

    def data_received(self, data: bytes) -> None:
        if self._draining:
            return
        self._buf += data
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            try:
                line = self._take(self._sep)
            except AgiProtocolError as e:
                waiter.set_exception(e)
                return
            if line is not None:
                waiter.set_result(line)
                return
        if len(self._buf) > 2 * self.limit and not self._paused and self.transport is not None:
            self._paused = True  # nobody is reading: stop taking more
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake_with_hangup("connection closed by Asterisk")
        if self._draining:
            self._close()
        return True  # we close (after our own half-close, if not done yet)

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._wake_with_hangup(f"connection lost: {exc}" if exc else "connection closed by Asterisk")
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        self._on_close(self)

    # -- reading ---------------------------------------------------------------------------------
    def take(self, sep: bytes) -> bytes | None:
        """Bytes up to `sep` (without it) if they are already here, else None."""
        return self._take(sep)

    async def read_until(self, sep: bytes) -> bytes:
        """Bytes up to `sep` (without it). AgiHangup at EOF, also when EOF cuts a line short;
        AgiProtocolError past `limit` bytes without `sep`."""
        line = self._take(sep)
        if line is not None:
            return line
        if self._eof:
            raise AgiHangup("connection closed by Asterisk")
        self._sep = sep
        self._waiter = waiter = self.loop.create_future()
        try:
            return await waiter
        finally:
            self._waiter = None

    def _take(self, sep: bytes) -> bytes | None:
        buf = self._buf
        start = self._scanned if sep == self._sep else 0
        i = buf.find(sep, start)
        if i < 0:
            if len(buf) > self.limit:
                raise AgiProtocolError(f"no line end within {self.limit} bytes")
            self._scanned = max(0, len(buf) - len(sep) + 1)
            return None
        if i > self.limit:
            raise AgiProtocolError(f"line longer than {self.limit} bytes")
        line = bytes(buf[:i])
        del buf[: i + len(sep)]
        self._scanned = 0
        if self._paused and len(buf) <= self.limit and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return line

    def _wake_with_hangup(self, why: str) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(AgiHangup(why))

    # -- writing and closing ---------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            raise AgiHangup("connection already closed")
        transport.write(data)

    def finish(self, close_wait_s: float) -> None:
        """Half-close, then read (and drop) until Asterisk closes: it writes HANGUP after the script
        ends (capture 01), and a server that fully closes first never sees it. Gives up after
        `close_wait_s`. Returns at once; the protocol callbacks do the rest."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        self._draining = True
        self._buf.clear()
        if self._paused:
            self._paused = False
            transport.resume_reading()
        if self._eof:
            self._close()
            return
        try:
            if transport.can_write_eof():
                transport.write_eof()
        except (OSError, RuntimeError):
            self._close()
            return
        self._close_timer = self.loop.call_later(close_wait_s, self._close)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _close(self) -> None:
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

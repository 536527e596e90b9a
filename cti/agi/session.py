"""One FastAGI session over an AgiConnection: send a command, read its reply, in lockstep.

EOF and `HANGUP` end the session as AgiHangup (a caller hanging up is normal, not an error). A
command cancelled while its reply is outstanding (session timeout) is remembered, so the failure
path can read that late reply before it sends anything else and stay in sync.
"""

from __future__ import annotations

import asyncio

from cti.agi.connection import AgiConnection
from cti.agi.protocol import (
    AgiCommandError,
    AgiHangup,
    Environment,
    Reply,
    ReplyParser,
    command_line,
    parse_200,
    parse_environment_block,
    quote,
)


async def read_environment(conn: AgiConnection, timeout_s: float) -> Environment:
    """The agi_ block in one read (up to the empty line), not one await per line. Asterisk sends it
    at once, so it is usually here already and needs no timer."""
    raw = conn.take(b"\n\n")
    if raw is None:
        async with asyncio.timeout(timeout_s):
            raw = await conn.read_until(b"\n\n")
    return parse_environment_block(raw.decode("utf-8", "replace").replace("\r", ""))


class AgiSession:
    def __init__(self, conn: AgiConnection, env: Environment) -> None:
        self.conn = conn
        self.env = env
        self.hung_up = False
        self.commands_sent = 0
        self._pending: str | None = None  # command whose reply has not been read yet

    @property
    def uniqueid(self) -> str:
        return self.env.get("agi_uniqueid")

    async def command(self, line: str) -> Reply:
        if self.hung_up:
            raise AgiHangup("channel already hung up")
        if self._pending is not None:
            await self.drain_pending()
        try:
            self.conn.write(line.encode("utf-8") + b"\n")
        except AgiHangup:
            self.hung_up = True
            raise
        self.commands_sent += 1
        self._pending = line
        reply = await self._read_reply(line)
        self._pending = None
        return reply

    async def _read_line(self) -> str:
        try:
            raw = await self.conn.read_until(b"\n")
        except AgiHangup:
            self.hung_up = True
            self._pending = None
            raise
        return raw.decode("utf-8", "replace")

    async def _read_reply(self, line: str) -> Reply:
        first = await self._read_line()
        fast = parse_200(first)  # nearly every reply: one line, no parser object
        if fast is not None:
            return fast
        parser = ReplyParser(line)
        try:
            got = parser.feed_line(first)
            while got is None:
                got = parser.feed_line(await self._read_line())
            return got
        except AgiHangup:
            self.hung_up = True
            self._pending = None
            raise
        except AgiCommandError:
            self._pending = None
            raise

    async def drain_pending(self) -> None:
        """Read the reply of a command whose wait was cancelled; errors in it do not matter."""
        line, self._pending = self._pending, None
        if line is None:
            return
        try:
            await self._read_reply(line)
        except AgiCommandError:
            pass

    # -- the commands our handlers use -------------------------------------------------------
    async def get_variable(self, name: str) -> str | None:
        """Value, or None when the variable is not set (`200 result=0`)."""
        r = await self.command(f"GET VARIABLE {quote(name)}")
        return r.data if r.result == "1" else None

    async def get_full_variable(self, expr: str) -> str | None:
        r = await self.command(f"GET FULL VARIABLE {quote(expr)}")
        return r.data if r.result == "1" else None

    async def set_variable(self, name: str, value: object) -> None:
        await self.command(f"SET VARIABLE {quote(name)} {quote(value)}")

    async def answer(self) -> None:
        await self.command("ANSWER")

    async def stream_file(self, name: str, escape_digits: str = "") -> str:
        """Play a prompt; returns the digit that interrupted it, or ''."""
        r = await self.command(command_line("STREAM", "FILE", quoted=(name, escape_digits)))
        code = r.result_int or 0
        return chr(code) if code > 0 else ""

    async def get_data(self, prompt: str, timeout_ms: int, max_digits: int) -> str:
        """Digits keyed (Asterisk stops at `#` or max_digits); '' on timeout without digits."""
        line = command_line("GET", "DATA", quoted=(prompt,)) + f" {int(timeout_ms)} {int(max_digits)}"
        r = await self.command(line)
        if r.result == "-1":
            raise AgiHangup("GET DATA failed (channel gone)")
        return r.result if r.result.strip("0123456789*#") == "" else ""

    async def say_digits(self, digits: str) -> None:
        await self.command(command_line("SAY", "DIGITS", quoted=(digits, "")))

    async def record_file(self, path: str, fmt: str, max_ms: int, silence_s: int) -> Reply:
        line = command_line("RECORD", "FILE", quoted=(path, fmt, "#"))
        line += f" {int(max_ms)} BEEP s={int(silence_s)}"
        return await self.command(line)

    async def hangup(self) -> None:
        try:
            await self.command("HANGUP")
        except AgiHangup:
            pass

"""One FastAGI session over an AgiConnection: send a command, read its reply, in lockstep.

EOF and `HANGUP` end the session as AgiHangup (a caller hanging up is normal, not an error). A
command cancelled while its reply is outstanding (session timeout) is remembered, so the failure
path can read that late reply before it sends anything else and stay in sync.

`result=-1` from a playback command (STREAM FILE, SAY DIGITS, GET DATA, WAIT FOR DIGIT) is NOT a
hangup: capture 15 has `GET DATA` -> `200 result=-1` at once for a missing prompt while the caller is
still there. Asterisk tells a hangup by `HANGUP` on the socket and 511 on the next command (capture
19), so those methods report "could not play" and the next command finds out whether the caller left.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class Playback:
    """What a STREAM FILE / SAY DIGITS did: the escape digit that cut it short ('' if none), and
    whether it played at all (`result=-1`: missing file, or a caller who just left)."""

    digit: str = ""
    played: bool = True


def _playback(r: Reply) -> Playback:
    code = r.result_int or 0
    if code < 0:
        return Playback("", False)
    return Playback(chr(code) if code > 0 else "", True)


def recorded(r: Reply) -> bool:
    """Whether RECORD FILE wrote a file. `(writefile)`: it could not open the file (a directory that
    does not exist, capture 15); `(randomerror)`: the beep could not be played, recording never
    started (res_agi); `(hangup)` still leaves what was said."""
    if r.data in ("writefile", "randomerror"):
        return False
    return r.result != "-1" or r.data == "hangup"


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

    async def stream_file(self, name: str, escape_digits: str = "") -> Playback:
        """Play a prompt; a key in escape_digits stops it and is returned (Asterisk consumes it)."""
        r = await self.command(command_line("STREAM", "FILE", quoted=(name, escape_digits)))
        return _playback(r)

    async def get_data(self, prompt: str, timeout_ms: int, max_digits: int) -> str | None:
        """Digits keyed (Asterisk stops at `#` or max_digits); '' on timeout or a lone `#`
        (`200 result=`, capture 16). None when GET DATA answered -1: the prompt could not be
        played (capture 15) or the caller just left; the next command tells which."""
        line = command_line("GET", "DATA", quoted=(prompt,)) + f" {int(timeout_ms)} {int(max_digits)}"
        r = await self.command(line)
        if r.result == "-1":
            return None
        return r.result if r.result.strip("0123456789*#") == "" else ""

    async def wait_for_digit(self, timeout_ms: int) -> str | None:
        """One key: `200 result=<ascii>`, '' on timeout (`result=0`), None on -1 (failure/hangup)."""
        r = await self.command(f"WAIT FOR DIGIT {int(timeout_ms)}")
        code = r.result_int
        if code is None or code < 0:
            return None
        return chr(code) if code > 0 else ""

    async def say_digits(self, digits: str, escape_digits: str = "") -> Playback:
        """Read a number back; a key in escape_digits stops it and is returned (capture 16: with ""
        a caller's early `1` is swallowed)."""
        return _playback(await self.command(command_line("SAY", "DIGITS", quoted=(digits, escape_digits))))

    async def record_file(self, path: str, fmt: str, max_ms: int, silence_s: int) -> Reply:
        line = command_line("RECORD", "FILE", quoted=(path, fmt, "#"))
        line += f" {int(max_ms)} BEEP s={int(silence_s)}"
        return await self.command(line)

    async def hangup(self) -> None:
        try:
            await self.command("HANGUP")
        except AgiHangup:
            pass

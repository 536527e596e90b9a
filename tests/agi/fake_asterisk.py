"""A raw FastAGI client that behaves like Asterisk 22 on the wire (captures 01/04): sends the agi_
block, answers each command line, writes `HANGUP` after the server half-closes, then closes.

Commands are split with the port of res_agi.c parse_args, so a value that survives here survives in
Asterisk. Channel variables live in `vars`; DTMF answers for GET DATA come from `dtmf`.

Playback as captured (15, 16): a sound in `missing` answers STREAM FILE `200 result=-1 endpos=0` and
GET DATA `200 result=-1` at once; `typed` holds what the caller keys during each successive STREAM
FILE / SAY DIGITS ('' = nothing): a first key among the escape digits stops it (`result=<ascii>`),
one that is not is lost, and the keys after it arrive late (`late`, read by the next GET DATA or
WAIT FOR DIGIT). RECORD FILE into a directory that does not exist is `200 result=-1 (writefile)`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cti.agi.protocol import parse_args
from tests.captures import capture_dir


def capture_env(scenario: str = "01-inbound-answered") -> list[str]:
    """The agi_ lines Asterisk sent in a capture, verbatim."""
    raw = (capture_dir(scenario) / "agi.from-asterisk.raw").read_bytes().decode("utf-8")
    head, _, _ = raw.partition("\n\n")
    return head.split("\n")


def env_lines(**overrides: str) -> list[str]:
    """Capture 01's environment with some values replaced (`agi_callerid="..."`)."""
    out = []
    for line in capture_env():
        key, _, value = line.partition(": ")
        out.append(f"{key}: {overrides.pop(key, value)}")
    out += [f"{k}: {v}" for k, v in overrides.items()]
    return out


@dataclass
class FakeChannel:
    vars: dict[str, str] = field(default_factory=dict)
    dtmf: list[str] = field(default_factory=list)  # answers to successive GET DATA
    sent: list[str] = field(default_factory=list)  # command lines received from the server
    argv: list[list[str]] = field(default_factory=list)  # the same, as Asterisk splits them
    missing: set[str] = field(default_factory=set)  # sound files that do not exist
    typed: list[str] = field(default_factory=list)  # keys during successive playbacks
    late: str = ""  # keys pressed after a playback was stopped, not yet read
    hung_up_by_script: bool = False
    got_eof: bool = False
    custom: Callable[[list[str]], list[str] | None] | None = None

    def reply(self, line: str) -> list[str]:
        argv = parse_args(line)
        self.sent.append(line)
        self.argv.append(argv)
        if self.custom is not None:
            got = self.custom(argv)
            if got is not None:
                return got
        words = [a.upper() for a in argv]
        if words[:3] == ["GET", "FULL", "VARIABLE"]:
            # Asterisk substitutes ${...} (unset -> empty) and always answers result=1
            value = re.sub(r"\$\{([^${}]+)\}", lambda m: self.vars.get(m.group(1), ""), argv[3])
            return [f"200 result=1 ({value})"]
        if words[:2] == ["GET", "VARIABLE"]:
            name = argv[2]
            if name in self.vars:
                return [f"200 result=1 ({self.vars[name]})"]
            return ["200 result=0"]
        if words[:2] == ["SET", "VARIABLE"]:
            if len(argv) != 4:
                return [
                    "520-Invalid command syntax.  Proper usage follows:",
                    "Sets a variable to the current channel.",
                    "520 End of proper usage.",
                ]
            self.vars[argv[2]] = argv[3]
            return ["200 result=1"]
        if words[:1] == ["ANSWER"]:
            return ["200 result=0"]
        if words[:2] == ["STREAM", "FILE"]:
            if argv[2] in self.missing:
                return ["200 result=-1 endpos=0"]
            hit = self._during_playback(argv[3] if len(argv) > 3 else "")
            return [f"200 result={ord(hit)} endpos=4000" if hit else "200 result=0 endpos=8000"]
        if words[:2] == ["SAY", "DIGITS"]:
            hit = self._during_playback(argv[3] if len(argv) > 3 else "")
            return [f"200 result={ord(hit)}" if hit else "200 result=0"]
        if words[:2] == ["GET", "DATA"]:
            if argv[2] in self.missing:
                return ["200 result=-1"]
            if self.late:
                digits, self.late = self.late, ""
            else:
                digits = self.dtmf.pop(0) if self.dtmf else ""
            if digits.endswith("#"):
                return [f"200 result={digits[:-1]}"]  # `200 result=` for a lone # (capture 16)
            return [f"200 result={digits}" if digits else "200 result= (timeout)"]
        if words[:3] == ["WAIT", "FOR", "DIGIT"]:
            if not self.late and self.dtmf:
                self.late = self.dtmf.pop(0)
            if not self.late:
                return ["200 result=0"]
            key, self.late = self.late[0], self.late[1:]
            return [f"200 result={ord(key)}"]
        if words[:2] == ["RECORD", "FILE"]:
            if not Path(argv[2]).parent.is_dir():
                return ["200 result=-1 (writefile)"]
            return ["200 result=0 (timeout) endpos=16000"]
        if words[:1] == ["HANGUP"]:
            self.hung_up_by_script = True
            return ["200 result=1"]
        return ["510 Invalid or unknown command"]

    def _during_playback(self, escape: str) -> str:
        keys = self.typed.pop(0) if self.typed else ""
        if not keys:
            return ""
        self.late += keys[1:]
        return keys[0] if keys[0] in escape else ""  # not an escape digit: Asterisk drops it


async def run_call(
    port: int,
    channel: FakeChannel,
    env: list[str] | None = None,
    *,
    hangup_after: int | None = None,
    host: str = "127.0.0.1",
) -> FakeChannel:
    """One AGI() execution against the server. `hangup_after=N`: the caller hangs up after N
    commands (Asterisk then sends HANGUP and closes)."""
    reader, writer = await asyncio.open_connection(host, port)
    lines = env if env is not None else env_lines()
    writer.write(("\n".join(lines) + "\n\n").encode("utf-8"))
    await writer.drain()
    try:
        while True:
            raw = await reader.readline()
            if not raw:  # server half-closed: the script ended
                channel.got_eof = True
                writer.write(b"HANGUP\n")
                break
            if hangup_after is not None and len(channel.sent) >= hangup_after:
                writer.write(b"HANGUP\n")
                break
            for out in channel.reply(raw.decode("utf-8").rstrip("\n")):
                writer.write(out.encode("utf-8") + b"\n")
            await writer.drain()
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
    return channel

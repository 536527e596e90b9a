"""FastAGI wire format without I/O: the `agi_` environment block, command lines, replies.

Like h11: bytes/lines in, values out. The session (cti/agi/session.py) does the reading and writing.

Facts from the Asterisk 22.10.1 captures (`asterisk-captures/01`, `04`) and res_agi.c:
- The environment is `agi_key: value` lines ending with an empty line; values may be empty
  (`agi_accountcode: `) and are raw UTF-8 (`agi_calleridname: 张三`).
- Replies: `200 result=1 (13812345678)`, `200 result=0`, `200 result=-1 endpos=0`,
  `510 Invalid or unknown command`, and a multi-line usage reply
  `520-Invalid command syntax.  Proper usage follows:` … `520 End of proper usage.`
  GET DATA puts digits in `result=` (`200 result=123`, `200 result= (timeout)`).
- After the script ends, or when the channel hangs up mid-session, Asterisk writes `HANGUP`.
- Command arguments are split by res_agi's parse_args: whitespace separates, `"` toggles quoting,
  `\\` makes the next character literal (including `"` and `\\`). A line ends at `\\n`, so a value
  can never carry a newline: we replace CR/LF/NUL with a space rather than desync the session.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_ENV_LINES = 256  # a real block has ~25 lines plus agi_arg_N; more is not Asterisk
MAX_LINE_BYTES = 65536  # also bounds the whole agi_ block (read in one piece)


class AgiProtocolError(Exception):
    """Asterisk (or whoever connected) sent something that is not FastAGI."""


class AgiHangup(Exception):
    """The channel hung up (`HANGUP` line) or the connection ended (EOF). A normal end of a call."""


class AgiCommandError(Exception):
    """A command was refused: 510 (unknown), 511 (dead channel), 520 (usage)."""

    def __init__(self, code: int, message: str, command: str) -> None:
        super().__init__(f"{code} {message} (command: {command})")
        self.code = code
        self.message = message
        self.command = command


@dataclass(frozen=True, slots=True)
class Reply:
    code: int
    result: str  # the text after `result=`; digits for most commands, the keyed digits for GET DATA
    data: str | None = None  # the text in parentheses, if any
    endpos: int | None = None

    @property
    def result_int(self) -> int | None:
        try:
            return int(self.result)
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class Environment:
    values: dict[str, str]

    def get(self, key: str, default: str = "") -> str:
        return self.values.get(key, default)

    @property
    def script(self) -> str:
        """Script name from `agi_network_script` (`route` for agi://host:port/route?x=1)."""
        raw = self.values.get("agi_network_script", "")
        return raw.split("?", 1)[0].strip("/")

    @property
    def args(self) -> list[str]:
        out = []
        i = 1
        while f"agi_arg_{i}" in self.values:
            out.append(self.values[f"agi_arg_{i}"])
            i += 1
        return out


def parse_environment_block(block: str) -> Environment:
    """The whole agi_ block at once (everything before the empty line, newlines included): the same
    rules as EnvironmentParser in one pass."""
    lines = block.split("\n")
    if len(lines) > MAX_ENV_LINES:
        raise AgiProtocolError(f"environment block longer than {MAX_ENV_LINES} lines")
    values: dict[str, str] = {}
    for line in lines:
        line = line.rstrip("\r")
        if line:
            key, value = _env_line(line)
            values[key] = value
    return Environment(values)


def _env_line(line: str) -> tuple[str, str]:
    """`agi_key: value` -> (key, value); the one rule for both environment readers."""
    key, sep, value = line.partition(":")
    if not sep or not key.startswith("agi_"):
        raise AgiProtocolError(f"not an agi_ environment line: {line[:60]!r}")
    # `agi_accountcode: ` -> ''; values keep inner spaces
    return key.strip(), value[1:] if value.startswith(" ") else value


def parse_200(line: str) -> Reply | None:
    """Fast path for the common `200 result=...` line; None for anything else."""
    common = _COMMON_200.get(line)
    if common is not None:  # SET VARIABLE's reply, most of a call's: one shared immutable Reply
        return common
    m = _REPLY_200.match(line)
    if m is None:
        return None
    endpos = m.group(3)
    return Reply(200, m.group(1), m.group(2), int(endpos) if endpos is not None else None)


class EnvironmentParser:
    """Feed lines (without the newline) until `done`; then read `.environment`."""

    def __init__(self) -> None:
        self._values: dict[str, str] = {}
        self._lines = 0
        self.done = False

    def feed_line(self, line: str) -> None:
        if self.done:
            raise AgiProtocolError("environment already complete")
        line = line.rstrip("\r")
        if line == "":
            self.done = True
            return
        self._lines += 1
        if self._lines > MAX_ENV_LINES:
            raise AgiProtocolError(f"environment block longer than {MAX_ENV_LINES} lines")
        key, value = _env_line(line)
        self._values[key] = value

    @property
    def environment(self) -> Environment:
        if not self.done:
            raise AgiProtocolError("environment not complete")
        return Environment(dict(self._values))


_COMMON_200 = {f"200 result={r}": Reply(200, r) for r in ("0", "1", "-1")}
_REPLY_200 = re.compile(r"^200 result=(\S*)(?: \((.*)\))?(?: endpos=(-?\d+))?\s*$", re.DOTALL)


class ReplyParser:
    """Feed reply lines; `feed_line` returns a Reply when one is complete, else None.

    Raises AgiHangup on `HANGUP`, AgiCommandError on 510/511/520 (after the whole multi-line 520
    block has been consumed, so the next reply is read in sync).
    """

    def __init__(self, command: str) -> None:
        self.command = command
        self._usage: list[str] | None = None

    def feed_line(self, line: str) -> Reply | None:
        line = line.rstrip("\r")
        if self._usage is not None:
            if line.startswith("520 "):
                self._usage.append(line[4:])
                raise AgiCommandError(520, "\n".join(self._usage), self.command)
            self._usage.append(line)
            return None
        if line == "HANGUP":
            raise AgiHangup("HANGUP from Asterisk")
        if line.startswith("520-"):
            self._usage = [line[4:]]
            return None
        m = _REPLY_200.match(line)
        if m:
            endpos = m.group(3)
            return Reply(200, m.group(1), m.group(2), int(endpos) if endpos is not None else None)
        code, _, message = line.partition(" ")
        if code.isdigit() and len(code) == 3:
            raise AgiCommandError(int(code), message, self.command)
        raise AgiProtocolError(f"unexpected reply line {line[:80]!r} to {self.command!r}")


_NEEDS_ESCAPING = re.compile(r'[\r\n\x00\\"]')


def quote(value: object) -> str:
    """One argument as res_agi's parse_args reads it back unchanged (UTF-8 passes through raw)."""
    s = str(value)
    if _NEEDS_ESCAPING.search(s) is None:  # nearly every value: nothing to replace
        return f'"{s}"'
    s = s.replace("\r", " ").replace("\n", " ").replace("\x00", " ")
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


_NEEDS_QUOTING = re.compile(r'[\s"\\]')


def command_line(*words: object, quoted: tuple[object, ...] = ()) -> str:
    """`GET VARIABLE` + quoted args -> one line. Words are trusted tokens (command names, numbers)."""
    for w in words:
        if _NEEDS_QUOTING.search(str(w)):
            raise ValueError(f"command word {w!r} needs quoting; pass it in `quoted`")
    parts = [str(w) for w in words] + [quote(q) for q in quoted]
    return " ".join(parts)


def parse_args(line: str) -> list[str]:
    """res_agi.c parse_args, ported: how Asterisk splits a command line we send. Used by tests and
    by the simulator-side client to check that what we send is what Asterisk will read."""
    argv: list[str] = []
    cur: list[str] | None = None
    quoted = escaped = False
    whitespace = True
    for ch in line:
        if ch == '"' and not escaped:
            quoted = not quoted
            if quoted and whitespace:
                cur = []
                argv.append("")
                whitespace = False
            escaped = False
            if cur is not None:
                argv[-1] = "".join(cur)
            continue
        if ch in " \t" and not quoted and not escaped:
            whitespace = True
            cur = None
            continue
        if ch == "\\" and not escaped:
            escaped = True
            continue
        if whitespace:
            cur = []
            argv.append("")
            whitespace = False
        assert cur is not None
        cur.append(ch)
        argv[-1] = "".join(cur)
        escaped = False
    return argv

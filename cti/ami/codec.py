"""Sans-IO AMI codec: bytes in, messages out (no sockets, no asyncio, no clock).

Wire format (Asterisk 22, see ../shared/asterisk-captures/INDEX.md): a one-line banner
`Asterisk Call Manager/11.0.0\\r\\n`, then frames of `Key: Value\\r\\n` lines, each frame ended by an
empty line. UTF-8 is sent raw. We only ever decode *complete* frames: the frame terminator is pure
ASCII, so a multi-byte character split across TCP reads is simply still in the buffer and is decoded
whole once the rest arrives (panoramisk decodes every read with errors='ignore' and loses it).

A header with an empty value (`Value: ` at the end of a VarSet) is kept as "". A repeated header
(`Output`, `Variable`, `ChanVariable`) becomes a list of its values, in order, at the position of its
first occurrence (Asterisk sends repeats consecutively, so `encode(parse(frame)) == frame`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

BANNER_PREFIX = b"Asterisk Call Manager/"
_EOL = b"\r\n"
_EOM = b"\r\n\r\n"
# Headers on a line without ": " (never seen from Asterisk 22, but a proxy or an old box may send one)
UNPARSED = "_unparsed"
MAX_FRAME = 1 << 20  # a frame larger than 1 MiB without a terminator is a broken peer, not AMI
_MAX_BANNER = 1024  # `Asterisk Call Manager/11.0.0` is 28 bytes
_GROW_IN_PLACE = 1 << 16  # a partial frame larger than this grows in a bytearray (see Decoder.feed)


class ProtocolError(Exception):
    """The byte stream is not AMI (bad banner, oversized frame)."""


class Message(dict[str, "str | list[str]"]):
    """One AMI frame: header name -> value (a list for repeated headers). Case-sensitive, like the
    wire; use `.get()` with the exact spelling Asterisk uses (`Uniqueid`, `Linkedid`, `ActionID`)."""

    # `raw`: the frame's bytes as received (set by Decoder; absent on messages built in code). Hashing
    # them is the cheapest stable identity of an event (cti.ami.events.digest).
    __slots__ = ("raw",)

    @property
    def name(self) -> str:
        """Event name, or `Response` for a reply (e.g. `Success`), or '' for a frame with neither."""
        v = self.get("Event")
        if v is None:
            v = self.get("Response", "")
        return v if isinstance(v, str) else v[0]

    @property
    def is_event(self) -> bool:
        return "Event" in self

    @property
    def is_response(self) -> bool:
        return "Response" in self and "Event" not in self

    def first(self, key: str, default: str = "") -> str:
        v = self.get(key)
        if v is None:
            return default
        return v if isinstance(v, str) else v[0]


class Banner(str):
    """The greeting line, e.g. `Asterisk Call Manager/11.0.0` (without CRLF)."""

    @property
    def version(self) -> str:
        return self.partition("/")[2]


def parse_frame(text: str) -> Message:
    """Parse one decoded frame (lines joined by CRLF, terminator removed)."""
    lines = text.split("\r\n")
    # fast path (nearly every frame): all lines `Key: value`, no repeated header
    try:
        msg = Message([line.split(": ", 1) for line in lines])  # type: ignore[misc]
    except ValueError:
        pass
    else:
        if len(msg) == len(lines):
            return msg
    return _parse_lines(lines)


def _parse_lines(lines: list[str]) -> Message:
    msg = Message()
    for line in lines:
        k, sep, v = line.partition(": ")
        if not sep:
            if line.endswith(":"):  # `Key:` with no space: still an empty value
                k, v = line[:-1], ""
            elif not line:
                continue
            else:
                k, v = UNPARSED, line
        old = msg.get(k)
        if old is None:
            msg[k] = v
        elif isinstance(old, list):
            old.append(v)
        else:
            msg[k] = [old, v]
    return msg


class Decoder:
    """Incremental decoder. `feed(data)` returns the messages completed by `data` (the banner first,
    as a `Banner`). Frames are decoded as UTF-8; an invalid byte becomes U+FFFD (and `errors` counts
    it) rather than killing the connection, because nothing already received may be lost."""

    __slots__ = ("_banner_seen", "_buf", "decode_errors")

    def __init__(self, expect_banner: bool = True) -> None:
        self._buf: bytes | bytearray = b""
        self._banner_seen = not expect_banner
        self.decode_errors = 0

    @property
    def pending(self) -> int:
        """Bytes received but not yet part of a complete frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Message | Banner]:
        out: list[Message | Banner] = []
        # Only the new bytes (and 3 before them: a terminator may straddle two reads) are searched, and
        # a partial frame grows in place: a peer trickling a 1 MB frame a byte at a time costs linear
        # work, not a copy and a rescan of the whole buffer per byte (bench.fuzz_ami).
        buf: bytes | bytearray
        held = self._buf
        if not held:
            scanned, buf = 0, data
        else:
            scanned = max(0, len(held) - 3)
            if isinstance(held, bytes) and len(held) < _GROW_IN_PLACE:
                buf = held + data  # the usual case, a frame split across two reads: cheapest as bytes
            else:
                held = held if isinstance(held, bytearray) else bytearray(held)
                held += data
                buf = held
        if not self._banner_seen:
            buf = bytes(buf)
            i = buf.find(_EOL)
            if i < 0:
                if len(buf) >= len(BANNER_PREFIX) and not buf.startswith(BANNER_PREFIX):
                    raise ProtocolError(f"not an AMI server: greeting starts {buf[:40]!r}")
                if len(buf) > _MAX_BANNER:
                    raise ProtocolError(f"greeting longer than {_MAX_BANNER} bytes without an end")
                self._buf = buf
                return out
            line = buf[:i]
            if not line.startswith(BANNER_PREFIX):
                raise ProtocolError(f"not an AMI server: greeting {line[:80]!r}")
            out.append(Banner(line.decode("utf-8", "replace")))
            self._banner_seen = True
            buf, scanned = buf[i + 2 :], 0
        end = buf.rfind(_EOM, scanned)
        if end < 0:
            if len(buf) > MAX_FRAME:
                raise ProtocolError(f"frame larger than {MAX_FRAME} bytes without an end")
            self._buf = buf
            return out
        frames = buf[:end] if isinstance(buf, bytes) else bytes(buf[:end])
        self._buf = buf[end + 4 :]
        # Asterisk sometimes separates frames by a lone CRLF too much; empty chunks are skipped
        for chunk in frames.split(_EOM):
            if not chunk:
                continue
            try:
                text = chunk.decode("utf-8")
            except UnicodeDecodeError:
                self.decode_errors += 1
                text = chunk.decode("utf-8", "replace")
            msg = parse_frame(text)
            msg.raw = chunk
            out.append(msg)
        return out


def encode(headers: Mapping[str, str | list[str]] | Iterable[tuple[str, str]]) -> bytes:
    """Serialise one frame (an action we send, or a message back to its wire form).

    A list value is written as one line per item. CR/LF inside a value would inject headers, so it is
    refused with a clear error instead of being sent."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    parts: list[str] = []
    for k, v in items:
        for one in v if isinstance(v, list) else (v,):
            s = str(one)
            if "\r" in s or "\n" in s or "\r" in k or "\n" in k:
                raise ValueError(f"AMI header {k!r} contains a line break: refused")
            parts.append(f"{k}: {s}\r\n")
    parts.append("\r\n")
    return "".join(parts).encode("utf-8")

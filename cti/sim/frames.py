"""AMI frame encoding and parsing, without I/O.

A frame is an ordered list of (header, value) pairs; order matters (ActionID sits second in
responses but last in QueueMember items, see asterisk-captures/INDEX.md). Text is UTF-8, raw.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

BANNER = b"Asterisk Call Manager/11.0.0\r\n"

Pairs = list[tuple[str, str]]

# Read classes used by the captured events; `all` on a user grants every one.
READ_CLASSES = (
    "system",
    "call",
    "log",
    "verbose",
    "command",
    "agent",
    "user",
    "config",
    "dtmf",
    "reporting",
    "cdr",
    "dialplan",
    "originate",
    "agi",
    "cc",
    "aoc",
    "test",
    "security",
    "message",
)


def encode(pairs: Iterable[tuple[str, str]]) -> bytes:
    """One frame: `Name: value` lines joined by CRLF plus the empty line."""
    return ("".join([f"{k}: {v}\r\n" for k, v in pairs]) + "\r\n").encode("utf-8")


def parse_read_classes(spec: str) -> frozenset[str]:
    parts = {p.strip().lower() for p in spec.split(",") if p.strip()}
    if "all" in parts:
        return frozenset(READ_CLASSES)
    return frozenset(parts)


class FrameParser:
    """Accumulates bytes from a socket and yields complete frames.

    Bytes are split on the blank line before decoding, so a multi-byte UTF-8 character split across
    two reads is reassembled. Clients may end lines with CRLF or bare LF.
    """

    def __init__(self, max_frame: int = 1 << 20) -> None:
        self._buf = bytearray()
        self._max = max_frame

    def feed(self, data: bytes) -> list[Pairs]:
        self._buf += data
        out: list[Pairs] = []
        while True:
            text = bytes(self._buf)
            norm = text.replace(b"\r\n", b"\n")
            idx = norm.find(b"\n\n")
            if idx < 0:
                if len(self._buf) > self._max:
                    raise ValueError("AMI frame too large")
                return out
            raw_frame = norm[:idx]
            rest = norm[idx + 2 :]
            self._buf = bytearray(rest)
            pairs = parse_block(raw_frame.decode("utf-8", errors="replace"))
            if pairs:
                out.append(pairs)


def parse_block(text: str) -> Pairs:
    pairs: Pairs = []
    for line in text.split("\n"):
        line = line.rstrip("\r")
        if not line:
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue
        pairs.append((key.strip(), value[1:] if value.startswith(" ") else value))
    return pairs


def get(pairs: Sequence[tuple[str, str]], name: str, default: str | None = None) -> str | None:
    """Case-insensitive header lookup (Asterisk treats action headers case-insensitively)."""
    low = name.lower()
    for k, v in pairs:
        if k.lower() == low:
            return v
    return default


def get_all(pairs: Sequence[tuple[str, str]], name: str) -> list[str]:
    low = name.lower()
    return [v for k, v in pairs if k.lower() == low]


def truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on", "y", "t")

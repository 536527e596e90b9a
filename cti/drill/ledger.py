"""What a drill counts on the AMI link, from the bytes on the wire (the proxy's tap), not from the CTI.

`lost_events`, precisely: an AMI *event* frame (has `Event:`, no `ActionID:` — so not an item of a
list the CTI asked for, such as QueueStatus's QueueMember rows, which it keeps in its `resync` row)
that the simulated Asterisk wrote to a CTI session after that session's Login was accepted, and that
is neither in the `events` table nor in a spool segment when the drill ends. A frame is identified as
the listener identifies it: the BLAKE2b digest of its bytes (`cti.ami.events.digest`), counted with
multiplicity, so a frame stored twice cannot hide one never stored.

Each lost frame is put in one of two classes, which the drill prints:
- `undelivered`: the proxy read it from Asterisk but never wrote it to the CTI's socket (the link was
  cut or blackholed under it). AMI has no replay: no CTI can store these; it must rebuild its state
  from the resync snapshot and the CDRs instead.
- `delivered`: written to the CTI's socket and still not stored. Must be 0, except when the drill
  SIGKILLs the CTI: then these are the frames that sat in its socket buffer or its memory.

It also reads the CTI's actions going up: each `Originate` by its ChannelId (a callback attempt's
id), so an attempt dialed twice — even across a crash — is counted from the wire.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections import Counter
from dataclasses import dataclass, field

from cti.ami.codec import Banner, Decoder, Message, ProtocolError
from cti.drill.proxy import Pipe


def frame_digest(raw: bytes) -> str:
    """Same as cti.ami.events.digest for a received frame (the stored key is `<Event>:<digest>[:n]`)."""
    return hashlib.blake2b(raw, digest_size=12).hexdigest()


@dataclass
class _Conn:
    emitted: Decoder = field(default_factory=Decoder)
    delivered: Decoder = field(default_factory=Decoder)
    actions: Decoder = field(default_factory=lambda: Decoder(expect_banner=False))
    logged_in: bool = False
    delivering: bool = True


@dataclass
class AmiLedger:
    emitted: Counter[str] = field(default_factory=Counter)
    delivered: Counter[str] = field(default_factory=Counter)
    names: dict[str, str] = field(default_factory=dict)  # digest -> event name, for the report
    stamps: dict[str, float] = field(default_factory=dict)  # digest -> the frame's Timestamp
    originates: Counter[str] = field(default_factory=Counter)  # ChannelId -> times sent
    originate_wall: list[float] = field(default_factory=list)  # monotonic time of each Originate
    logins: list[float] = field(default_factory=list)  # monotonic time of each accepted Login
    _conns: dict[int, _Conn] = field(default_factory=dict)

    def tap(self, pipe: Pipe, way: str, data: bytes, forwarded: bool) -> None:
        c = self._conns.setdefault(id(pipe), _Conn())
        if way == "up":
            if forwarded:
                self._read_actions(c, data)
            return
        try:
            for m in c.emitted.feed(data):
                self._emitted(c, m)
            if c.delivering and not forwarded:
                c.delivering = False  # a frame cut in two is not delivered; nothing after it is either
            if c.delivering:
                for m in c.delivered.feed(data):
                    if isinstance(m, Message) and c.logged_in and _is_event(m):
                        self.delivered[frame_digest(m.raw)] += 1
        except ProtocolError:
            c.delivering = False

    def _emitted(self, c: _Conn, m: Message | Banner) -> None:
        if not isinstance(m, Message):
            return
        if not c.logged_in:
            if m.first("Response") == "Success" and m.first("Message") == "Authentication accepted":
                c.logged_in = True
                self.logins.append(time.monotonic())
            return
        if _is_event(m):
            d = frame_digest(m.raw)
            self.emitted[d] += 1
            self.names.setdefault(d, m.name)
            with contextlib.suppress(ValueError):
                self.stamps.setdefault(d, float(m.first("Timestamp") or "nan"))

    def _read_actions(self, c: _Conn, data: bytes) -> None:
        try:
            msgs = c.actions.feed(data)
        except ProtocolError:
            return
        for m in msgs:
            if isinstance(m, Message) and m.first("Action").lower() == "originate":
                self.originates[m.first("ChannelId") or m.first("ActionID")] += 1
                self.originate_wall.append(time.monotonic())

    def lost(self, stored: Counter[str]) -> dict[str, object]:
        """Emitted minus stored, split by whether the CTI's socket ever got the frame."""
        undelivered: Counter[str] = Counter()
        delivered: Counter[str] = Counter()
        when: list[float] = []
        for d, n in self.emitted.items():
            kept = stored.get(d, 0)
            if n <= kept:
                continue
            got = min(n, self.delivered.get(d, 0))
            lost_after = max(0, got - kept)  # on the CTI's socket, then gone
            if lost_after:
                delivered[self.names[d]] += lost_after
                when.append(self.stamps.get(d, float("nan")))
            if n - max(got, kept):
                undelivered[self.names[d]] += n - max(got, kept)
        return {
            "events_emitted": sum(self.emitted.values()),
            "lost_events": sum(undelivered.values()) + sum(delivered.values()),
            "lost_events_undelivered": sum(undelivered.values()),
            "lost_events_delivered": sum(delivered.values()),
            "lost_event_types": dict((undelivered + delivered).most_common(8)),
            # Asterisk's Timestamps of the delivered-and-lost frames: which moment of the drill lost them
            "lost_delivered_between": [min(when), max(when)] if when else None,
        }

    def originates_sent_twice(self) -> int:
        return sum(1 for n in self.originates.values() if n > 1)


def _is_event(m: Message) -> bool:
    return "Event" in m and "ActionID" not in m

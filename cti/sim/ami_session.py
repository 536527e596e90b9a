"""One AMI session of the simulated PBX: who logged in, what they may read, their event filters, and
the bytes queued for their socket. Event frames are encoded once for every session (`event_bytes`)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from datetime import UTC, datetime

from cti.sim.frames import Pairs, encode, get
from cti.sim.model import PbxEvent

SESSION_IDS = itertools.count(0x7F5E0C001460, 0x10000)


def tv(ts: float) -> str:
    """Security events' EventTV / SessionTV: ISO time with milliseconds and +0000 (capture 00)."""
    d = datetime.fromtimestamp(ts, UTC)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}+0000"


def exclude_filter(events: tuple[str, ...], prefixes: tuple[str, ...]) -> Callable[[PbxEvent], bool]:
    """eventfilter(action(exclude),name(...)) and eventfilter(action(exclude),header(Channel),
    method(starts_with)) = prefix, as user ctifilter in manager.conf."""
    names = frozenset(events)

    def keep(ev: PbxEvent) -> bool:
        if ev.name in names:
            return False
        ch = get(ev.pairs, "Channel") or ""
        return not (ch and ch.startswith(prefixes))

    return keep


def event_bytes(ev: PbxEvent) -> bytes:
    if not ev.data:
        ev.data = encode(
            [("Event", ev.name), ("Privilege", f"{ev.cls},all"), ("Timestamp", f"{ev.ts:.6f}"), *ev.pairs]
        )
    return ev.data


class AmiSession:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        schedule_flush: Callable[[AmiSession], None],
    ) -> None:
        self.reader = reader
        self.writer = writer
        self._schedule_flush = schedule_flush
        self.user: str | None = None
        self.granted: frozenset[str] = frozenset()  # the user's read classes (manager.conf `read`)
        self.read: frozenset[str] = frozenset()  # what this session receives (narrowed by Events)
        self.events_on = True
        self.session_id = f"0x{next(SESSION_IDS):x}"
        peer = writer.get_extra_info("peername") or ("127.0.0.1", 0)
        sock = writer.get_extra_info("sockname") or ("127.0.0.1", 0)
        self.remote = f"IPV4/TCP/{peer[0]}/{peer[1]}"
        self.local = f"IPV4/TCP/{sock[0]}/{sock[1]}"
        self.login_ts = 0.0
        self.closing = False
        self.filters: list[Callable[[PbxEvent], bool]] = []
        self.pending: list[bytes] = []

    def send(self, pairs: Pairs) -> None:
        self.push(encode(pairs))

    def push(self, data: bytes) -> None:
        """Queue bytes; everything queued in one loop iteration goes out in one write (fewer syscalls)."""
        if self.closing:
            return
        if not self.pending:
            self._schedule_flush(self)
        self.pending.append(data)

    async def last_reply(self, pairs: Pairs) -> None:
        """Write this reply and everything queued before it, then close (Logoff, failed Login)."""
        self.send(pairs)
        self.flush()
        await self.writer.drain()
        self.closing = True
        self.writer.close()

    def flush(self) -> None:
        if self.pending and not self.closing:
            data = b"".join(self.pending) if len(self.pending) > 1 else self.pending[0]
            self.pending.clear()
            try:
                self.writer.write(data)
            except (RuntimeError, ConnectionError, OSError):
                self.closing = True
        else:
            self.pending.clear()

    def wants(self, ev: PbxEvent) -> bool:
        return (
            self.user is not None
            and self.events_on
            and ev.cls in self.read
            and all(f(ev) for f in self.filters)
        )

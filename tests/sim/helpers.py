"""Raw-socket AMI client, a scripted FastAGI server, and capture parsing for the fidelity tests."""

from __future__ import annotations

import asyncio
import re
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from cti.sim import Simulator
from tests.captures import CAPTURES

Frame = list[tuple[str, str]]


def parse_frames(text: str) -> list[Frame]:
    out: list[Frame] = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        pairs = []
        for line in block.split("\n"):
            if not line or line.startswith("#") or ":" not in line:
                continue
            k, _, v = line.partition(":")
            pairs.append((k, v[1:] if v.startswith(" ") else v))
        if pairs:
            out.append(pairs)
    return out


def capture_frames(scenario: str, name: str = "ami.txt") -> list[Frame]:
    return parse_frames((CAPTURES / scenario / name).read_text(encoding="utf-8"))


def d(frame: Frame) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in frame:
        out.setdefault(k, v)
    return out


def keys(frame: Frame) -> list[str]:
    return [k for k, _ in frame]


class RawAmi:
    """Bytes in, frames out; no library between the test and the wire."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.buf = b""
        self.frames: list[Frame] = []
        self.raw = b""
        self.banner = b""

    @classmethod
    async def connect(cls, port: int) -> RawAmi:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        c = cls(r, w)
        c.banner = await asyncio.wait_for(r.readline(), 5)
        return c

    async def send(self, *pairs: tuple[str, str]) -> None:
        self.writer.write(("".join(f"{k}: {v}\r\n" for k, v in pairs) + "\r\n").encode())
        await self.writer.drain()

    async def login(self, user: str = "cti", secret: str = "cti") -> Frame:
        await self.send(("Action", "Login"), ("ActionID", "ami-001"), ("Username", user), ("Secret", secret))
        return await self.wait(lambda f: f[0][0] == "Response")

    async def _read_more(self, timeout: float) -> bool:
        data = await asyncio.wait_for(self.reader.read(65536), timeout)
        if not data:
            return False
        self.raw += data
        self.buf += data
        while b"\r\n\r\n" in self.buf:
            block, self.buf = self.buf.split(b"\r\n\r\n", 1)
            self.frames.extend(parse_frames(block.decode("utf-8")))
        return True

    async def wait(self, pred: Callable[[Frame], bool], timeout: float = 5.0) -> Frame:
        seen = 0
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            for f in self.frames[seen:]:
                if pred(f):
                    return f
            seen = len(self.frames)
            left = end - loop.time()
            if left <= 0 or not await self._read_more(left):
                raise AssertionError(f"frame not seen; last frames: {self.frames[-5:]}")

    async def action(self, *pairs: tuple[str, str]) -> Frame:
        aid = dict(pairs).get("ActionID")
        start = len(self.frames)
        await self.send(*pairs)
        while True:
            for f in self.frames[start:]:
                if f[0][0] == "Response" and (aid is None or dict(f).get("ActionID") == aid):
                    return f
            start = len(self.frames)
            await self._read_more(5)

    async def drain_for(self, seconds: float = 0.05) -> None:
        try:
            while await self._read_more(seconds):
                pass
        except TimeoutError:
            pass

    async def close(self) -> None:
        self.writer.close()


AgiScript = Callable[[dict[str, str], Callable[[str], Awaitable[str]]], Awaitable[None]]


class FastAgiServer:
    """A FastAGI server run by the test; each script gets the env and a `cmd(line) -> reply` function."""

    def __init__(self, scripts: dict[str, AgiScript], mode: str = "script") -> None:
        self.scripts = scripts
        self.mode = mode
        self.sessions: list[dict[str, object]] = []
        self.server: asyncio.base_events.Server | None = None
        self.port = 0

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self.server:
            self.server.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        rec: dict[str, object] = {"env_lines": [], "transcript": [], "after": b""}
        self.sessions.append(rec)
        if self.mode == "close":
            writer.close()
            return
        env: dict[str, str] = {}
        while True:
            line = (await reader.readline()).decode("utf-8")
            if line in ("\n", ""):
                break
            rec["env_lines"].append(line.rstrip("\n"))  # type: ignore[union-attr]
            k, _, v = line.rstrip("\n").partition(": ")
            env[k] = v
        rec["env"] = env

        async def cmd(text: str) -> str:
            writer.write((text + "\n").encode("utf-8"))
            await writer.drain()
            first = (await reader.readline()).decode("utf-8").rstrip("\n")
            lines = [first]
            m = re.match(r"^(\d{3})-", first)
            while m and not lines[-1].startswith(m.group(1) + " "):  # multi-line reply ends with "520 ..."
                lines.append((await reader.readline()).decode("utf-8").rstrip("\n"))
            reply = "\n".join(lines)
            rec["transcript"].append((text, reply))  # type: ignore[union-attr]
            return reply

        script = self.scripts.get(env.get("agi_network_script", ""))
        if script is not None:
            await script(env, cmd)
        writer.write_eof()
        rec["after"] = await reader.read()
        writer.close()


def per_channel(frames: list[Frame], skip: set[str]) -> dict[str, list[tuple[str, ...]]]:
    """Per-channel sequences of (event, key fields) -- the order Asterisk guarantees."""
    out: dict[str, list[tuple[str, ...]]] = defaultdict(list)
    for f in frames:
        m = d(f)
        ev = m.get("Event")
        if not ev or ev in skip or "Channel" not in m:
            continue
        extra: tuple[str, ...] = ()
        if ev in ("DialEnd", "DialState"):
            extra = (m["DialStatus"], m.get("DestChannel", ""))
        elif ev in ("Hangup",):
            extra = (m["Cause"],)
        elif ev == "Newstate":
            extra = (m["ChannelStateDesc"],)
        elif ev == "Newexten":
            extra = (m["Application"],)
        elif ev in ("AgentComplete",):
            extra = (m["Reason"],)
        elif ev == "QueueCallerAbandon":
            extra = (m["Position"], m["OriginalPosition"])
        elif ev == "AGIExecEnd":
            extra = (m["ResultCode"], m["Result"])
        elif ev == "VarSet":
            extra = (m["Variable"],)
        out[m["Channel"]].append((ev, *extra))
    return dict(out)


@asynccontextmanager
async def started(sim: Simulator) -> AsyncIterator[RawAmi]:
    """Start `sim` and log a raw AMI session in to it; close both after."""
    await sim.start()
    ami = await RawAmi.connect(sim.ami_port)
    await ami.login()
    try:
        yield ami
    finally:
        await ami.close()
        await sim.close()

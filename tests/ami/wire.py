"""Shared helpers: the recorded fixtures and captures as AMI bytes, and a chunking server."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

from tests.captures import AMI_FIXTURES as _ALL_FIXTURES
from tests.captures import CAPTURES

FIXTURES = _ALL_FIXTURES / "cacofonisk"
BANNER = b"Asterisk Call Manager/11.0.0\r\n"


def fixture_files() -> list[Path]:
    return sorted(FIXTURES.rglob("*.json"))


def load_fixture(path: Path) -> list[dict[str, str]]:
    """The events of one fixture, without the recorder's `content` artefact (README)."""
    return [{k: v for k, v in e.items() if k != "content"} for e in json.loads(path.read_text("utf-8"))]


def frame_bytes(event: dict[str, str]) -> bytes:
    return ("".join(f"{k}: {v}\r\n" for k, v in event.items()) + "\r\n").encode("utf-8")


def capture_raws() -> list[Path]:
    return sorted(p for p in CAPTURES.glob("*/ami*.raw") if not p.name.endswith(".sent.raw"))


def chunks(data: bytes, sizes: tuple[int, ...] = (1, 2, 3, 5, 7, 11, 13, 64)) -> Iterator[bytes]:
    """Cut `data` into small irregular pieces: frames, lines and UTF-8 characters get split."""
    i, n = 0, 0
    while i < len(data):
        s = sizes[n % len(sizes)]
        yield data[i : i + s]
        i += s
        n += 1


def login_ok(aid: str) -> bytes:
    return f"Response: Success\r\nActionID: {aid}\r\nMessage: Authentication accepted\r\n\r\n".encode()


class StreamServer:
    """Accepts one AMI client, answers Login / QueueStatus / CoreShowChannels with empty lists, then
    writes `payload` in small chunks (with a yield between them so reads really are split)."""

    def __init__(self, payload: bytes, sizes: tuple[int, ...] = (1, 2, 3, 5, 7, 11, 13, 64, 509)) -> None:
        self.payload = payload
        self.sizes = sizes
        self.port = 0
        self.done = asyncio.Event()
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> StreamServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        from cti.ami.codec import Decoder

        writer.write(BANNER)
        dec = Decoder(expect_banner=False)
        streamed = False
        try:
            while True:
                data = await reader.read(4096)
                if not data:
                    break
                for m in dec.feed(data):
                    aid = m.get("ActionID", "")
                    act = m.get("Action")
                    if act == "Login":
                        writer.write(login_ok(aid))  # type: ignore[arg-type]
                    elif act in ("QueueStatus", "CoreShowChannels"):
                        done = "QueueStatusComplete" if act == "QueueStatus" else "CoreShowChannelsComplete"
                        writer.write(
                            f"Response: Success\r\nActionID: {aid}\r\nEventList: start\r\nMessage: x\r\n\r\n"
                            f"Event: {done}\r\nActionID: {aid}\r\nEventList: Complete\r\n"
                            "ListItems: 0\r\n\r\n".encode()
                        )
                        if act == "CoreShowChannels" and not streamed:
                            streamed = True
                            for piece in chunks(self.payload, self.sizes):
                                writer.write(piece)
                                await writer.drain()
                                await asyncio.sleep(0)
                            self.done.set()
                    elif act == "Logoff":
                        writer.write(f"Response: Goodbye\r\nActionID: {aid}\r\n\r\n".encode())
                        await writer.drain()
                        break
        except ConnectionError:
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

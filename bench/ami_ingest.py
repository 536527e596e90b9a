"""Benchmark: AMI events/s through socket + our codec + client + live-state reducer (a), and on to rows
in PostgreSQL through the listener and the event store (b), against a bare 30-line parser reading the
same byte stream from the same kind of socket in the same run; plus RSS of live state for 2,000
concurrent calls (measured in a fresh subprocess).

    python -m bench.ami_ingest --json [--events 200000] [--persist-events 100000] [--repeat 5]

The byte stream is the real Asterisk 22 events of captures 01-05b (with Timestamp), repeated with
per-copy Uniqueid/Linkedid/channel names and timestamps shifted 20 s per copy, so the state sees many
distinct calls and every event has a distinct natural key. Medians of --repeat runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.shared import CAPTURES

SCENARIOS = ("01", "02", "03", "04", "05a", "05b")
_UID = re.compile(rb"((?:Dest|Bridge)?(?:Uniqueid|Linkedid)|BridgeId): ([0-9a-f.-]+)(\r?)$", re.M)
_CHAN = re.compile(rb"(PJSIP/[a-z0-9]+)-([0-9a-f]{8})")
_TS = re.compile(rb"^Timestamp: (\d+\.\d+)(\r?)$", re.M)


def template_frames() -> list[bytes]:
    frames: list[bytes] = []
    for s in SCENARIOS:
        raw = next(CAPTURES.glob(f"{s}*/ami.raw")).read_bytes().split(b"\r\n", 1)[1]
        frames += [f for f in raw.split(b"\r\n\r\n") if f.startswith(b"Event: ") and b"\r\nTimestamp: " in f]
    return frames


def copy_frames(frames: list[bytes], i: int) -> list[bytes]:
    tag = f"{i:05d}".encode()
    shift = 20.0 * i

    def uid(m: re.Match[bytes]) -> bytes:
        return m.group(1) + b": " + tag + b"-" + m.group(2) + m.group(3)

    def chan(m: re.Match[bytes]) -> bytes:
        return m.group(1) + b"-" + tag + m.group(2)

    def ts(m: re.Match[bytes]) -> bytes:
        return b"Timestamp: " + f"{float(m.group(1)) + shift:.6f}".encode() + m.group(2)

    return [_TS.sub(ts, _CHAN.sub(chan, _UID.sub(uid, f))) for f in frames]


def build_stream(n_events: int) -> tuple[bytes, int]:
    tmpl = template_frames()
    out: list[bytes] = []
    i = 0
    while len(out) < n_events:
        out += copy_frames(tmpl, i)
        i += 1
    out = out[:n_events]
    return b"".join(f + b"\r\n\r\n" for f in out), len(out)


# ---- the bare parser (the limit): 30 lines, no features ----------------------------------------
async def bare_parse(port: int, n: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    buf = b""
    count = 0
    await reader.readline()  # banner
    writer.write(b"Action: Login\r\n\r\n")
    while count < n:
        data = await reader.read(65536)
        if not data:
            break
        buf += data
        *frames, buf = buf.split(b"\r\n\r\n")
        for fr in frames:
            msg = {}
            for line in fr.decode("utf-8").split("\r\n"):
                k, _, v = line.partition(": ")
                msg[k] = v
            if "Event" in msg:
                count += 1
    writer.close()
    return count


# ---- a server that answers Login/QueueStatus/CoreShowChannels, then sends the stream -----------
class Server:
    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.port = 0
        self._srv: asyncio.Server | None = None

    async def __aenter__(self) -> Server:
        self._srv = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._srv.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._srv is not None
        self._srv.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        from cti.ami.codec import Decoder

        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        dec = Decoder(expect_banner=False)
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                for m in dec.feed(data):
                    aid = m.get("ActionID", "")
                    act = m.get("Action")
                    if act == "Login" and not aid:  # the bare parser
                        writer.write(self.payload)
                    elif act == "Login":
                        writer.write(f"Response: Success\r\nActionID: {aid}\r\nMessage: ok\r\n\r\n".encode())
                    elif act in ("QueueStatus", "CoreShowChannels"):
                        c = "QueueStatusComplete" if act == "QueueStatus" else "CoreShowChannelsComplete"
                        writer.write(
                            f"Response: Success\r\nActionID: {aid}\r\nEventList: start\r\n\r\n"
                            f"Event: {c}\r\nActionID: {aid}\r\nEventList: Complete\r\n"
                            "ListItems: 0\r\n\r\n".encode()
                        )
                        if act == "CoreShowChannels":
                            writer.write(self.payload)
                    elif act == "Logoff":
                        break
                await writer.drain()
        writer.close()


async def ours(port: int, n: int, store: Any = None) -> tuple[int, Any]:
    from cti.ami.client import AMIClient
    from cti.ami.listener import AMIListener
    from cti.state.live import LiveState

    done = asyncio.Event()
    live = LiveState()
    client = AMIClient("127.0.0.1", port, "bench", "x", ping_interval=0, action_timeout=60)
    listener = AMIListener(client, live, store)

    def check(_m: Any, _ts: float) -> None:
        if listener.events >= n:
            done.set()

    listener.on_event(check)
    await listener.start()
    await asyncio.wait_for(done.wait(), 600)
    if store is not None:
        await store.flush()
    await client.close()
    return listener.events, live


async def timed(coro: Any) -> tuple[float, Any]:
    t = time.perf_counter()
    r = await coro
    return time.perf_counter() - t, r


async def bench_parse(payload: bytes, n: int, repeat: int) -> tuple[list[float], list[float]]:
    mine, base = [], []
    async with Server(payload) as srv:
        for _ in range(repeat):
            dt, got = await timed(bare_parse(srv.port, n))
            assert got == n, f"bare parser saw {got} of {n}"
            base.append(n / dt)
            dt, (got, _live) = await timed(ours(srv.port, n))
            assert got == n, f"listener saw {got} of {n}"
            mine.append(n / dt)
    return mine, base


async def bench_persist(payload: bytes, n: int, repeat: int) -> tuple[list[float], int]:
    import asyncpg

    from cti.db.scratch import ScratchServer, with_database
    from cti.store.events import EventStore

    server = ScratchServer(prefix="cti_bench_ami")
    await server.start()
    rates, lost = [], 0
    try:
        async with Server(payload) as srv:
            for _ in range(repeat):
                name = await server.new_database()
                url = with_database(server.url, name)
                with tempfile.TemporaryDirectory() as spool:
                    store = EventStore(url, Path(spool))
                    await store.start()
                    dt, _ = await timed(ours(srv.port, n, store))
                    await store.close()
                rates.append(n / dt)
                conn = await asyncpg.connect(url)
                stored = await conn.fetchval("SELECT count(*) FROM events WHERE type <> 'resync'")
                await conn.close()
                lost += n - stored
                await server.drop_database(name)
    finally:
        await server.stop()
    return rates, lost


def state_rss(calls: int) -> dict[str, float]:
    """Run in a fresh process: RSS before and after folding `calls` live (connected) calls."""
    import gc

    import psutil

    from cti.ami.codec import Decoder
    from cti.ami.events import event_ts
    from cti.state.live import LiveState

    raw = next(CAPTURES.glob("01*/ami.raw")).read_bytes().split(b"\r\n", 1)[1]
    frames = [f for f in raw.split(b"\r\n\r\n") if f.startswith(b"Event: ") and b"\r\nTimestamp: " in f]
    last_enter = max(i for i, f in enumerate(frames) if f.startswith(b"Event: BridgeEnter"))
    tmpl = frames[: last_enter + 1]  # every call is up and bridged: the state a live call holds
    gc.collect()
    proc = psutil.Process()
    before = proc.memory_info().rss
    live = LiveState()
    dec = Decoder(expect_banner=False)
    for i in range(calls):
        for m in dec.feed(b"".join(f + b"\r\n\r\n" for f in copy_frames(tmpl, i))):
            live.apply(m, event_ts(m) or 0.0)  # type: ignore[arg-type]
    gc.collect()
    after = proc.memory_info().rss
    s = live.summary()
    assert s["calls"] == calls and s["channels"] == 2 * calls, s
    return {"rss_mb": round(after / 2**20, 1), "state_mb": round((after - before) / 2**20, 1), **s}


async def main(n: int, n_persist: int, repeat: int) -> dict[str, Any]:
    payload, n = build_stream(n)
    mine, base = await bench_parse(payload, n, repeat)
    ppayload, n_persist = build_stream(n_persist)
    prates, lost = await bench_persist(ppayload, n_persist, max(1, repeat // 2 + 1))
    a, b = statistics.median(mine), statistics.median(base)
    return {
        "benchmark": "ami_ingest",
        "events": n,
        "bytes": len(payload),
        "repeat": repeat,
        "parse_reduce_per_s": round(a),
        "baseline_per_s": round(b),
        "ratio": round(a / b, 3),
        "persisted_events": n_persist,
        "persisted_per_s": round(statistics.median(prates)),
        "lost": lost,
        "runs_parse_reduce_per_s": [round(r) for r in mine],
        "runs_baseline_per_s": [round(r) for r in base],
        "runs_persisted_per_s": [round(r) for r in prates],
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--persist-events", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", action="store_true", help="print one JSON object (the default output)")
    ap.add_argument("--rss-only", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    from cti.log import configure

    configure("json", "warning")  # stdout carries exactly one JSON object
    if args.rss_only:
        result: dict[str, Any] = state_rss(args.rss_only)  # type: ignore[assignment]
    else:
        result = asyncio.run(main(args.events, args.persist_events, args.repeat))
        # a fresh process, so the figure is the state's and not the benchmark's buffers
        out = subprocess.run(
            [sys.executable, "-m", "bench.ami_ingest", "--rss-only", "2000"],
            capture_output=True,
            text=True,
            check=True,
        )
        rss = json.loads(out.stdout)
        result["state_2000_calls_rss_mb"] = rss["rss_mb"]
        result["state_2000_calls_delta_mb"] = rss["state_mb"]
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")

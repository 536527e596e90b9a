"""FastAGI `route` throughput and latency against a bare echo server doing the same round trips.

    python -m bench.agi --json [--sessions 3000] [--concurrency 50]

Both servers run in this process, one after the other, against the same load generator, which runs
in a separate process (so its CPU is not billed to the server) and plays Asterisk: it sends capture
01's agi_ block, answers every command line, writes HANGUP when the server half-closes. The route
server is the real one: PostgreSQL (pool; one round trip per day call: recording row + the caller's
orders), the cached agent directory, the event store. The echo server reads the agi_ block and sends
exactly as many commands as a route session does, awaiting each reply, then closes.

Prints one JSON object: route_per_s, echo_per_s, ratio, p50_ms, p99_ms (closed loop at
`--concurrency`: every finished session is replaced at once, so latency there is mostly queueing,
concurrency / throughput), the same at concurrency 1 under `c1`, and per-call latency with calls
arriving at 200/s (`open_loop_200_per_s`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from cti.agi.context import AgiContext, create_pool
from cti.agi.open_orders import OpenOrderNumbers
from cti.agi.registry import default_registry
from cti.agi.server import FastAgiServer
from cti.clock import ManualClock
from cti.config import Settings
from cti.db.scratch import ScratchServer
from cti.log import configure
from cti.runloop import run
from cti.store.events import EventStore

ENV_TEMPLATE = [
    "agi_network: yes",
    "agi_network_script: route",
    "agi_request: agi://127.0.0.1:4573/route",
    "agi_channel: PJSIP/trunk-{n:08x}",
    "agi_language: en",
    "agi_type: PJSIP",
    "agi_uniqueid: 1795430750.{n}",
    "agi_version: 22.10.1",
    "agi_callerid: {caller}",
    "agi_calleridname: 张三",
    "agi_callingpres: 0",
    "agi_callingani2: 0",
    "agi_callington: 0",
    "agi_callingtns: 0",
    "agi_dnid: 4008001234",
    "agi_rdnis: unknown",
    "agi_context: from-trunk",
    "agi_extension: 4008001234",
    "agi_priority: 5",
    "agi_enhanced: 0.0",
    "agi_accountcode: ",
    "agi_threadid: 140042663818944",
]


# ---------------------------------------------------------------------------- load generator (child)
async def _one_session(port: int, n: int, caller: str) -> tuple[float, int]:
    t0 = time.perf_counter()
    commands = 0
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    env = "\n".join(ENV_TEMPLATE).format(n=n, caller=caller) + "\n\n"
    writer.write(env.encode())
    while True:
        line = await reader.readline()
        if not line:
            writer.write(b"HANGUP\n")
            break
        commands += 1
        if line.startswith(b"GET FULL VARIABLE"):
            writer.write(f"200 result=1 (4008001234||1795430750.{n})\n".encode())
        elif line.startswith(b"GET VARIABLE"):
            if b"CTI_DNIS" in line:
                writer.write(b"200 result=1 (4008001234)\n")
            elif b"linkedid" in line:
                writer.write(f"200 result=1 (1795430750.{n})\n".encode())
            else:
                writer.write(b"200 result=0\n")
        else:
            writer.write(b"200 result=1\n")
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return time.perf_counter() - t0, commands


async def _load(port: int, sessions: int, concurrency: int, seed: int, rate: float = 0.0) -> dict[str, Any]:
    rng = random.Random(seed)
    # half the callers are customers with orders (owner lookup on the path), half are new numbers
    callers = [
        f"138{rng.randrange(1, 20001) * 4999:08d}" if rng.random() < 0.5 else f"139{rng.randrange(10**8):08d}"
        for _ in range(sessions)
    ]
    sem = asyncio.Semaphore(concurrency)
    lat: list[float] = []
    cmds: list[int] = []

    start = time.perf_counter()

    async def run(i: int) -> None:
        if rate:  # open loop: calls arrive on a schedule, as they do from a carrier
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
        async with sem:
            t, c = await _one_session(port, seed * 1_000_000 + i, callers[i])
            lat.append(t)
            cmds.append(c)

    t0 = time.perf_counter()
    await asyncio.gather(*(run(i) for i in range(sessions)))
    wall = time.perf_counter() - t0
    lat.sort()
    return {
        "per_s": sessions / wall,
        "p50_ms": statistics.median(lat) * 1000,
        "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000,
        "commands_per_session": statistics.mean(cmds),
    }


def _child(port: int, sessions: int, concurrency: int, seed: int, rate: float, out: Any) -> None:
    # plays Asterisk: the standard asyncio loop, as before the servers moved to uvloop, so the load
    # generator is the same for every figure
    out.put(asyncio.run(_load(port, sessions, concurrency, seed, rate)))


async def _drive(port: int, sessions: int, concurrency: int, seed: int, rate: float = 0.0) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(port, sessions, concurrency, seed, rate, q))
    p.start()
    result = await asyncio.to_thread(q.get)
    await asyncio.to_thread(p.join)
    return result


# ---------------------------------------------------------------------------- the echo server
class EchoServer:
    def __init__(self, round_trips: int) -> None:
        self.round_trips = round_trips
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._on, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _on(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (await reader.readline()).strip():
            pass
        for _ in range(self.round_trips):
            writer.write(b'SET VARIABLE "X" "1"\n')
            await reader.readline()
        writer.write_eof()
        while await reader.read(4096):
            pass
        writer.close()


# ---------------------------------------------------------------------------- main
async def _seed(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            """
            INSERT INTO agents (id, name, interface, did)
            SELECT 'agent' || i, 'Agent ' || i, 'PJSIP/agent' || i, '40080010' || lpad(i::text, 2, '0')
            FROM generate_series(1, 40) i;
            INSERT INTO customers (number) SELECT '138' || lpad((i * 4999)::text, 8, '0')
            FROM generate_series(1, 20000) i ON CONFLICT DO NOTHING;
            INSERT INTO orders (customer_id, owner_agent, status)
            SELECT id, 'agent' || (1 + id % 40), (ARRAY['new','shipped','received'])[1 + id % 3]
            FROM customers;
            ANALYZE;
            """
        )
    finally:
        await conn.close()


async def main(sessions: int, concurrency: int) -> dict[str, Any]:
    configure("console", "warning")  # the server logs nothing per call at warning level
    scratch = ScratchServer(prefix="cti_bench_agi")
    await scratch.start()
    url = await scratch.new_database_url()
    await _seed(url)
    spool = Path(tempfile.mkdtemp(prefix="cti-bench-agi-spool-"))
    store = EventStore(url, spool)
    await store.start()
    pool = await create_pool(url)
    settings = Settings(agi={"port": 0, "session_timeout_s": 5.0})
    open_orders = OpenOrderNumbers(url)
    await open_orders.start()
    ctx = AgiContext(
        settings=settings, clock=ManualClock(_day()), events=store, pool=pool, open_orders=open_orders
    )
    route = FastAgiServer(ctx, default_registry(), host="127.0.0.1", port=0)
    await route.start()
    result: dict[str, Any] = {}
    try:
        # warm-up (directory cache, pool, prepared statements) and how many round trips a session makes
        warm = await _drive(route.port, 50, 1, 7)
        round_trips = round(warm["commands_per_session"])
        echo = EchoServer(round_trips)
        await echo.start()
        for conc, n in ((1, max(200, sessions // 10)), (concurrency, sessions)):
            r = await _drive(route.port, n, conc, 11 + conc)
            e = await _drive(echo.port, n, conc, 11 + conc)
            result[f"c{conc}"] = {
                "route_per_s": round(r["per_s"], 1),
                "echo_per_s": round(e["per_s"], 1),
                "ratio": round(r["per_s"] / e["per_s"], 3),
                "route_p50_ms": round(r["p50_ms"], 3),
                "route_p99_ms": round(r["p99_ms"], 3),
                "echo_p50_ms": round(e["p50_ms"], 3),
                "echo_p99_ms": round(e["p99_ms"], 3),
            }
        # open loop: 200 calls/s arriving (far above a TV-ad peak's ~1-5/s), at most `concurrency` at once
        ro = await _drive(route.port, 2000, concurrency, 31, rate=200.0)
        eo = await _drive(echo.port, 2000, concurrency, 31, rate=200.0)
        result["open_loop_200_per_s"] = {
            "route_p50_ms": round(ro["p50_ms"], 3),
            "route_p99_ms": round(ro["p99_ms"], 3),
            "echo_p50_ms": round(eo["p50_ms"], 3),
            "echo_p99_ms": round(eo["p99_ms"], 3),
        }
        await echo.close()
        await store.flush()
        top = result[f"c{concurrency}"]
        out = {
            "route_per_s": top["route_per_s"],
            "echo_per_s": top["echo_per_s"],
            "ratio": top["ratio"],
            "p50_ms": top["route_p50_ms"],
            "p99_ms": top["route_p99_ms"],
            "concurrency": concurrency,
            "sessions": sessions,
            "event_loop": type(asyncio.get_running_loop()).__module__.split(".")[0],  # uvloop / asyncio
            "round_trips_per_session": round_trips,
            "fallbacks": route.stats.fallbacks,
            "recording_rows": ctx.recordings.written if ctx.recordings else 0,
            "c1": result["c1"],
            "open_loop_200_per_s": result["open_loop_200_per_s"],
            f"c{concurrency}": top,
        }
    finally:
        await route.close()
        await ctx.aclose()
        await pool.close()
        await store.close()
        await scratch.drop_database(url.rsplit("/", 1)[1])
        await scratch.stop()
    return out


def _day() -> datetime:
    return datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai: day routing, DB on the path


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object (the default output)")
    ap.add_argument("--sessions", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=50)
    args = ap.parse_args()
    # both servers share this process, so both run on the product's loop (cti.runloop: uvloop)
    print(json.dumps(run(main(args.sessions, args.concurrency))))

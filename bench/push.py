"""Benchmark: push latency of the agent panel and the wallboard under load.

    python -m bench.push --json [--seconds 20] [--agents 200] [--supervisors 100] [--rate 200]

One process runs the simulated PBX (real AMI over TCP, real time), the CTI's live state, AgentService,
DeskService and the web app; a second process holds `--supervisors` wallboard websockets and
`--agents` agent-panel websockets (one per agent, each logged in). Calls are placed so the PBX sends
about `--rate` AMI events per second (measured, reported as ami_events_per_s).

push latency = when the client received a frame − when the oldest AMI event that frame reflects was
read and folded by the CTI (both wall clock, same machine). server_cpu_share = the server process's
CPU seconds / wall seconds over the loaded window (1.0 = one core busy); peak_rss_mb its peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import re
import resource
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

from cti.agents.service import AgentService
from cti.agi.context import MemoryEvents
from cti.ami.client import AMIClient
from cti.ami.listener import AMIListener
from cti.callbacks.ami_adapter import ami_action
from cti.clock import SystemClock
from cti.config import Settings
from cti.db.scratch import ScratchServer, with_database
from cti.desk.service import DeskService
from cti.log import configure
from cti.policy import load_policy
from cti.sim import Simulator
from cti.sim.scenario import QueueConfig, Scenario
from cti.state.live import LiveState
from cti.web.app import Services, make_app
from cti.web.auth import _token_hash, hash_password

_T_READ = re.compile(r'\{"t_read": ([0-9.]+)')
EVENTS_PER_CALL = 26  # AMI events one answered queue call produces in the simulator (measured)


def _clients(url: str, tokens: list[tuple[str, str]], seconds: float, out: Any) -> None:
    """Child process: open every websocket, record latency of each frame, report percentiles."""

    async def one(session: aiohttp.ClientSession, path: str, lat: list[float], stop: float) -> None:
        async with session.ws_connect(url + path) as ws:
            first = True
            while time.time() < stop:
                try:
                    msg = await asyncio.wait_for(ws.receive(), timeout=max(0.1, stop - time.time()))
                except TimeoutError:
                    break
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                # frames start with {"t_read": …}: read it without parsing the whole board, so the
                # clients' own JSON work does not inflate the server's figure
                m = _T_READ.match(msg.data)
                t = float(m.group(1)) if m else 0.0
                if first:  # the snapshot on connect is not a push
                    first = False
                    continue
                if t:
                    lat.append((time.time() - t) * 1000)

    async def main() -> None:
        lat: list[float] = []
        stop = time.time() + seconds
        sessions = []
        tasks = []
        for token, path in tokens:
            s = aiohttp.ClientSession(cookies={"cti_session": token})
            sessions.append(s)
            tasks.append(asyncio.create_task(one(s, path, lat, stop)))
        await asyncio.gather(*tasks, return_exceptions=True)
        for s in sessions:
            await s.close()
        out.put(lat)

    asyncio.run(main())


async def run(seconds: float, n_agents: int, n_sups: int, rate: float) -> dict[str, Any]:
    server = ScratchServer(prefix="cti_bench_push")
    await server.start()
    name = await server.new_database()
    dsn = with_database(server.url, name)
    pool = await asyncpg.create_pool(dsn, min_size=2, max_size=10)
    ids = [f"agent{i}" for i in range(1, n_agents + 1)]
    pw = hash_password("bench-password")
    now = datetime.now(UTC)
    tokens: list[tuple[str, str]] = []
    async with pool.acquire() as conn:
        await conn.executemany(
            "INSERT INTO agents (id, name, interface, group_name) VALUES ($1, $1, 'PJSIP/' || $1, $2)",
            [(a, f"g{i % 20}") for i, a in enumerate(ids)],
        )
        users = [(a, "agent", a) for a in ids] + [(f"sup{i}", "supervisor", None) for i in range(n_sups)]
        await conn.executemany(
            "INSERT INTO web_users (username, password_hash, role, agent_id) VALUES ($1, $2, $3, $4)",
            [(u, pw, role, ag) for u, role, ag in users],
        )
        for u, role, _ag in users:  # sessions straight in the table: 300 scrypt logins would time the KDF
            token = f"bench-{u}"
            await conn.execute(
                """INSERT INTO web_sessions (token_sha256, username, created_at, expires_at)
                   VALUES ($1, $2, $3, $4)""",
                _token_hash(token), u, now, now + timedelta(hours=1),
            )  # fmt: skip
            tokens.append((token, "/api/desk/ws" if role == "agent" else "/api/wallboard/ws"))

    sim = Simulator(Scenario(queues=(QueueConfig(),)), speed=1.0, agi_url="agi://127.0.0.1:1")
    for a in ids:
        sim.add_agent(a, a)
    await sim.start()
    live = LiveState()
    counted = [0]
    live.subscribe(lambda _l, _e: counted.__setitem__(0, counted[0] + 1))
    client = AMIClient("127.0.0.1", sim.ami_port, "cti", "cti", ping_interval=0)
    listener = AMIListener(client, live)
    clock = SystemClock()
    policy = load_policy()
    events = MemoryEvents()
    agents = AgentService(pool, policy=policy, clock=clock, events=events, ami_action=ami_action(client))
    desk = DeskService(pool, live=live, agents=agents, policy=policy, clock=clock, tz=Settings().tz,
                       events=events, ami_action=ami_action(client))  # fmt: skip
    await desk.start(watch=False)
    await listener.start()
    for a in ids:
        await agents.login(a, via="api")
    app = make_app(Services(pool=pool, live=live, clock=clock, desk=desk))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"

    # the same server and event rate twice: 1 agent + 1 supervisor socket (the baseline), then all
    base = await _phase(url, [tokens[0], tokens[-1]], seconds / 2, rate, sim, counted)
    full = await _phase(url, tokens, seconds, rate, sim, counted)
    await runner.cleanup()
    await desk.close()
    await listener.close()
    await sim.close()
    await pool.close()
    await server.drop_database(name)
    await server.stop()
    ratio = None
    if full["push_p99_ms"] and base["push_p99_ms"]:
        ratio = round(full["push_p99_ms"] / base["push_p99_ms"], 1)
    return {
        "benchmark": "push",
        "agents_ws": n_agents,
        "supervisors_ws": n_sups,
        **full,
        "baseline_1_agent_1_supervisor": base,
        "p99_vs_baseline": ratio,
        "note": "server = simulated PBX + CTI live state + desk + web in one process; clients in another",
    }


async def _phase(
    url: str, tokens: list[tuple[str, str]], seconds: float, rate: float, sim: Simulator, counted: list[int]
) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    proc = ctx.Process(target=_clients, args=(url, tokens, seconds + 5, q))
    proc.start()
    await asyncio.sleep(4)  # let the websockets connect
    calls_per_s = rate / EVENTS_PER_CALL
    r0, c0, t0 = resource.getrusage(resource.RUSAGE_SELF), counted[0], time.monotonic()
    n, window_t, window_c = 0, t0, c0
    while time.monotonic() - t0 < seconds:
        n += 1
        sim.place_call(caller=f"139{n:08d}", did="4008001234", behaviour={"talk_time": 8.0, "patience": 60.0})
        await asyncio.sleep(1 / calls_per_s)
        if time.monotonic() - window_t >= 1.0:  # steer the call rate to the AMI event rate asked for
            got = (counted[0] - window_c) / (time.monotonic() - window_t)
            if got > 0:
                calls_per_s = min(calls_per_s * 2, max(calls_per_s / 2, calls_per_s * rate / got))
            window_t, window_c = time.monotonic(), counted[0]
    wall = time.monotonic() - t0
    r1, c1 = resource.getrusage(resource.RUSAGE_SELF), counted[0]
    lat = sorted(await asyncio.to_thread(q.get, True, 60))
    proc.join(10)
    cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)

    def pct(p: float) -> float | None:
        return round(lat[min(len(lat) - 1, int(p * len(lat)))], 1) if lat else None

    return {
        "seconds": round(wall, 1),
        "ami_events_per_s": round((c1 - c0) / wall),
        "frames_received": len(lat),
        "push_p50_ms": pct(0.5),
        "push_p99_ms": pct(0.99),
        "server_cpu_share": round(cpu / wall, 2),
        "peak_rss_mb": round(r1.ru_maxrss / 1024),
    }


def main() -> None:
    configure(level="warning", stream=sys.stderr)  # stdout carries the one JSON object
    ap = argparse.ArgumentParser(prog="python -m bench.push")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--agents", type=int, default=200)
    ap.add_argument("--supervisors", type=int, default=100)
    ap.add_argument("--rate", type=float, default=200.0)
    a = ap.parse_args()
    out = asyncio.run(run(a.seconds, a.agents, a.supervisors, a.rate))
    json.dump(out, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

"""Simulator throughput: `python -m bench.sim --json` prints one JSON object.

A burst of inbound calls (AGI refused -> queue, as 08b) against enough agents to hold them all, in
fast mode, with one raw-socket AMI client (read = all) reading everything.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import socket
import time

from cti.sim import Simulator
from cti.sim.scenario import AgentProfile, Dist, QueueConfig, Scenario


async def _route_server() -> tuple[asyncio.base_events.Server, int]:
    """A minimal FastAGI `route` script: two SET VARIABLEs, then half-close."""

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (await reader.readline()) not in (b"\n", b""):
            pass
        for cmd in (b'SET VARIABLE CALLERID(name) "138****0000"\n', b"SET VARIABLE CTI_ROUTE queue\n"):
            writer.write(cmd)
            await reader.readline()
        writer.write_eof()
        await reader.read()
        writer.close()

    server = await asyncio.start_server(client, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def run(calls: int, agents: int, with_agi: bool = False) -> dict[str, float | int]:
    agi_server = None
    if with_agi:
        agi_server, dead_port = await _route_server()
    else:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
        s.close()
    sc = Scenario(queues=(QueueConfig(name="sales", strategy="rrmemory", joinempty=True),))
    prof = AgentProfile(answer_delay=Dist("uniform", 1.0, 4.0), talk_time=Dist("uniform", 600.0, 900.0))
    sim = Simulator(sc, speed="max", agi_url=f"agi://127.0.0.1:{dead_port}", seed=1)
    for n in range(1, agents + 1):
        sim.add_agent(f"agent{n}", f"Agent {n}", profile=prof)
    await sim.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.ami_port)
    await reader.readline()
    writer.write(b"Action: Login\r\nUsername: cti\r\nSecret: cti\r\n\r\n")
    received = 0
    done = asyncio.Event()

    async def read_all() -> None:
        nonlocal received
        while True:
            data = await reader.read(1 << 18)
            if not data:
                break
            received += data.count(b"\r\n\r\n")
            if done.is_set() and len(data) < 1 << 18:
                break

    rd = asyncio.create_task(read_all())
    await asyncio.sleep(0.1)
    for n in range(1, agents + 1):
        sim.login(f"agent{n}")
    sim_t0 = sim.now
    t0 = time.perf_counter()
    for i in range(calls):
        sim.place_call(caller=f"138{i:08d}", did="4008001234", behaviour={"patience": 3600}, at=i * 0.05)
    while sim.engine.processed_calls < calls:  # noqa: ASYNC110 - polling a plain counter
        await asyncio.sleep(0.01)
    wall = time.perf_counter() - t0
    sim_s = sim.now - sim_t0
    events = sim.stats.events
    await asyncio.sleep(0.2)
    done.set()
    writer.close()
    rd.cancel()
    await sim.close()
    if agi_server is not None:
        agi_server.close()
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "calls": calls,
        "fastagi": "route server (2 commands per call)" if with_agi else "refused (AGISTATUS=FAILURE)",
        "events": events,
        "events_received_by_client": received,
        "wall_s": round(wall, 3),
        "events_per_s": round(events / wall),
        "max_concurrent_calls": sim.stats.max_concurrent_calls,
        "sim_seconds_per_wall_second": round(sim_s / wall, 1),
        "peak_rss_mb": round(rss_kb / 1024, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", action="store_true", help="print one JSON object (default)")
    ap.add_argument("--calls", type=int, default=1500)
    ap.add_argument("--agents", type=int, default=800)
    ap.add_argument("--with-agi", action="store_true", help="answer each call's FastAGI `route` session")
    a = ap.parse_args()
    print(json.dumps(asyncio.run(run(a.calls, a.agents, a.with_agi))))


if __name__ == "__main__":
    main()

"""Benchmark: the TV-ad evening with 1, 2 and 3 CTI processes on one PostgreSQL, and the leader-kill
drill (2 processes, the leader SIGKILLed a few minutes into the ad). Issue 18.

    python -m bench.scale --json [--speed 20] [--size 1.0] [--kill-after-ad-s 120] [--processes 1,2,3]

Each run prints agents_double_booked (two live attempts to one agent, overlapping > 2 s), originates
sent twice, lost callers (against the simulator's ledger), callback_wait_p95_s; the drill also its
failover_s (wall seconds from the SIGKILL to another process holding a new leader term). --size < 1
shrinks the evening (agents and calls in proportion, the ad 5 minutes in) for a 2-core machine; the
speed is simulated seconds per wall second, shared by the simulator and every CTI process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from cti.cluster.rehearsal import ClusterRehearsal
from cti.config import load_settings
from cti.db.scratch import ScratchServer
from cti.log import configure
from cti.policy import load_policy

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "tv_evening.toml"
KEYS = (
    "agents_double_booked", "originates_sent_twice", "lost", "lost_callable", "callback_wait_p95_s",
    "callbacks_created", "offered", "failover_s", "leader_elections", "ami_reconnects", "wall_seconds",
)  # fmt: skip


async def one(
    server: ScratchServer, processes: int, kill_after: float | None, a: argparse.Namespace
) -> dict[str, Any]:
    dsn = await server.new_database_url()
    settings = load_settings(env={"CTI_DATA_DIR": tempfile.mkdtemp(prefix="cti-bench-scale-")})
    reh = ClusterRehearsal(a.scenario, dsn, settings, load_policy(), processes=processes, size=a.size,
                           speed=a.speed, kill_leader_after_ad_s=kill_after)  # fmt: skip
    out = await reh.run()
    return {k: out.get(k) for k in ("processes", *KEYS)}


async def main(a: argparse.Namespace) -> dict[str, Any]:
    server = ScratchServer(prefix="cti_bench_scale")
    await server.start()
    runs: dict[str, Any] = {}
    try:
        for n in a.processes:
            runs[f"processes_{n}"] = await one(server, n, None, a)
        if not a.no_drill:
            runs["leader_kill_drill"] = await one(server, 2, a.kill_after_ad_s, a)
    finally:
        await server.stop()
    return {"benchmark": "scale", "speed": a.speed, "size": a.size, "runs": runs}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", type=Path, default=SCENARIO)
    ap.add_argument("--speed", type=float, default=20.0)
    ap.add_argument("--size", type=float, default=1.0)
    ap.add_argument("--processes", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 3])
    ap.add_argument("--kill-after-ad-s", type=float, default=120.0)
    ap.add_argument("--no-drill", action="store_true")
    ap.add_argument("--json", action="store_true", help="print one JSON object (the default output)")
    args = ap.parse_args()
    configure("json", "error", stream=sys.stderr)
    json.dump(asyncio.run(main(args)), sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")

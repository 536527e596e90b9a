"""Benchmark: the shipped TV-ad evening (scenarios/tv_evening.toml: 3,000+ calls in the hour after the
ad, 40 agents) on the simulated PBX against the whole CTI server, as fast as the CTI keeps up with.

    python -m bench.peak --json [--speed 60] [--scenario FILE]

"As fast as possible" here is a scaled clock, not a free-running one: the CTI reacts in real time
(FastAGI sessions, Originates, the dispatcher), so the simulator cannot skip ahead of it. --speed is
simulated seconds per wall second; a run that lost the AMI link (ami_reconnects > 0) was too fast
for this machine and its figures say so.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from cti.config import load_settings
from cti.db.scratch import ScratchServer
from cti.log import configure
from cti.policy import load_policy
from cti.rehearsal import Rehearsal
from cti.sim.scenario import load_scenario

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "tv_evening.toml"


async def main(scenario_path: Path, speed: float) -> dict[str, Any]:
    server = ScratchServer(prefix="cti_bench_peak")
    await server.start()
    try:
        dsn = await server.new_database_url()
        settings = load_settings(env={"CTI_DATA_DIR": tempfile.mkdtemp(prefix="cti-bench-peak-")})
        reh = Rehearsal(load_scenario(scenario_path), dsn, settings, load_policy(), speed=speed)
        result = await reh.run()
    finally:
        await server.stop()
    return {"benchmark": "peak", "speed": speed, **result}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", type=Path, default=SCENARIO)
    ap.add_argument("--speed", type=float, default=60.0)
    ap.add_argument("--json", action="store_true", help="print one JSON object (the default output)")
    a = ap.parse_args()
    configure("json", "error", stream=sys.stderr)
    json.dump(asyncio.run(main(a.scenario, a.speed)), sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")

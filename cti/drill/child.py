"""The CTI as a separate process for the SIGKILL drill: the same CtiServer `cti serve` runs, wired as
the rehearsal wires it (its DSN, the simulator's AMI and FastAGI ports, the scenario's DIDs), on a
ScaledClock anchored to the simulator's, so the subprocess lives in the same simulated evening. A
SIGKILL of this process is a real one: no close(), no flush, no goodbye.

    python -m cti.drill.child SCENARIO DSN AMI_PORT AGI_PORT DATA_DIR START_ISO SPEED M0 [--login]

`cti serve` itself cannot be used: it runs on the system clock, and the simulator's evening is hours
ahead of it and 30 times faster. `--login` logs the scenario's agents in (as the rehearsal does) on
the first start; a restarted process puts them back itself after its resync (R-LOGIN).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from datetime import datetime
from pathlib import Path

from cti.clock import ScaledClock
from cti.config import load_settings
from cti.log import configure
from cti.policy import load_policy
from cti.rehearsal import Rehearsal
from cti.sim.scenario import load_scenario


async def main(argv: list[str]) -> None:
    scenario_path, dsn, ami_port, agi_port, data_dir, start, speed, m0 = argv[:8]
    scenario = load_scenario(Path(scenario_path))
    clock = ScaledClock.anchored(datetime.fromisoformat(start), float(speed), float(m0))
    scenario.start = clock.start  # a reduced drill may have moved it; the parent passes its own
    settings = load_settings(env={"CTI_DATA_DIR": data_dir})
    reh = Rehearsal(scenario, dsn, settings, load_policy(), speed=float(speed))
    cti = reh._cti(clock, int(ami_port), int(agi_port))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await cti.start(connect=False)
    try:
        await cti.connect()
        if "--login" in argv:
            assert cti.agents is not None
            for a in scenario.agents:
                await cti.agents.login(a.id, queues=a.queues, penalty=a.penalty)
        print("ready", flush=True)
        await stop.wait()
    finally:
        await cti.close()


if __name__ == "__main__":
    configure("json", "warning", stream=sys.stderr)
    asyncio.run(main(sys.argv[1:]))

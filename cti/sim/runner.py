"""Run a whole scenario (arrivals, shifts) until it ends or `stop` is set: for `cti sim` and `cti demo`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from cti.sim.scenario import Scenario
from cti.sim.simulator import Simulator


async def run_scenario(
    scenario: Scenario,
    *,
    speed: float | str = 1.0,
    ami_host: str = "127.0.0.1",
    ami_port: int = 5038,
    agi_url: str = "agi://127.0.0.1:4573",
    seed: int | None = None,
    stop: asyncio.Event | None = None,
    on_started: Callable[[Simulator], None] | None = None,
) -> dict[str, Any]:
    """Start the simulated PBX with the scenario's traffic; return its summary when the scenario is over
    (its duration passed and every call ended) or when `stop` is set."""
    sim = Simulator(
        scenario, speed=speed, ami_host=ami_host, ami_port=ami_port, agi_url=agi_url, seed=seed, arrivals=True
    )
    await sim.start()
    if on_started is not None:
        on_started(sim)
    stop = stop or asyncio.Event()
    try:
        while not sim.finished.is_set() and not stop.is_set():
            if sim.mode == "scaled" and sim.now >= sim.end_time and sim.engine.calls_active == 0:
                break
            waiters = [asyncio.ensure_future(sim.finished.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(waiters, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
            for w in waiters:
                w.cancel()
    finally:
        await sim.close()
    return sim.summary()

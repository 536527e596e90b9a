"""One CTI process of a multi-process rehearsal (`cti demo --processes N`, bench.scale), started by
cti.cluster.rehearsal as a subprocess: the same CtiServer as `cti serve`, on the virtual time the
parent's simulator runs on (a shared monotonic anchor). Prints `listening`, then `connected`; stops
cleanly on SIGTERM (a SIGKILL is the drill)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from datetime import datetime
from pathlib import Path

from cti.clock import ScaledClock
from cti.config import load_settings
from cti.log import configure
from cti.policy import load_policy
from cti.rehearsal import Rehearsal


async def main(a: argparse.Namespace) -> None:
    from cti.cluster.rehearsal import scenario_for  # the parent's scenario, reduced the same way

    scenario = scenario_for(Path(a.scenario), a.size, a.after_ad_s)
    settings = load_settings(env={"CTI_DATA_DIR": a.data_dir})
    if a.web_port:  # the monitor of `cti demo --processes N`, on process 0
        settings = settings.model_copy(update={"web": settings.web.model_copy(update={"port": a.web_port})})
    reh = Rehearsal(scenario, a.dsn, settings, load_policy(), speed=a.speed, web=bool(a.web_port))
    clock = ScaledClock(datetime.fromisoformat(a.start), a.speed, anchor=a.anchor)
    cti = reh.cti_server(clock, a.ami_port, a.agi_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await cti.start(connect=False)
    print("listening", cti.process, flush=True)
    try:
        connect = asyncio.create_task(cti.connect())
        await asyncio.wait([connect, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
        if connect.done():
            print("connected", cti.process, flush=True)
            await stop.wait()
        else:
            connect.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await connect
    finally:
        await cti.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options = (("dsn", str), ("scenario", str), ("size", float), ("after-ad-s", float), ("data-dir", str),
               ("start", str), ("speed", float), ("anchor", float), ("ami-port", int),
               ("agi-port", int))  # fmt: skip
    for name, kind in options:
        ap.add_argument(f"--{name}", type=kind, required=True)
    ap.add_argument("--web-port", type=int, default=0)
    args = ap.parse_args()
    configure("json", "warning", stream=sys.stderr)
    asyncio.run(main(args))

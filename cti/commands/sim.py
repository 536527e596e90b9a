"""`cti sim`: run a scenario on the simulated PBX so any AMI client / FastAGI server can join."""

from __future__ import annotations

import asyncio
import json
import signal

import click

from cti import runloop
from cti.sim import ScenarioError, Simulator, load_scenario
from cti.sim.runner import run_scenario


@click.command()
@click.option(
    "--scenario",
    "scenario_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Scenario TOML (see scenarios/).",
)
@click.option(
    "--speed",
    default="1",
    show_default=True,
    help="Time factor: 1 = real time, 10 = ten times faster, 'max' = as fast as possible.",
)
@click.option("--ami-port", default=5038, show_default=True, type=int, help="AMI port (0 = any free port).")
@click.option("--agi-url", default="agi://127.0.0.1:4573", show_default=True, help="FastAGI server base URL.")
@click.option("--seed", default=None, type=int, help="Random seed (default: the scenario's).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
def sim(scenario_path: str, speed: str, ami_port: int, agi_url: str, seed: int | None, as_json: bool) -> None:
    """Run SCENARIO on the simulated Asterisk; print offered/answered/abandoned at the end."""
    try:
        scenario = load_scenario(scenario_path)
    except ScenarioError as e:
        raise click.ClickException(str(e)) from None
    if speed == "max":
        spd: float | str = "max"
    else:
        try:
            spd = float(speed)
        except ValueError:
            raise click.BadParameter("a positive number or 'max'", param_hint="--speed") from None
        if spd <= 0:
            raise click.BadParameter("a positive number or 'max'", param_hint="--speed")

    async def go() -> dict[str, object]:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C still prints the summary so far
            loop.add_signal_handler(sig, stop.set)

        def started(s: Simulator) -> None:
            click.echo(
                f"simulated Asterisk: AMI on 127.0.0.1:{s.ami_port}, FastAGI to {agi_url}, "
                f"scenario {scenario.name} ({len(scenario.agents)} agents), speed {speed}",
                err=True,
            )

        return await run_scenario(
            scenario, speed=spd, ami_port=ami_port, agi_url=agi_url, seed=seed, stop=stop, on_started=started
        )

    try:
        summary = runloop.run(go())
    except KeyboardInterrupt:
        return
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(
            f"offered {summary['offered']}, answered {summary['answered']} "
            f"({summary['answered_within_two_rings']} within two rings), abandoned {summary['abandoned']}, "
            f"queue timeouts {summary['queue_timeouts']}, peak concurrent calls "
            f"{summary['max_concurrent_calls']}; answered {summary['answered_pct']}% of offered, "
            f"{summary['two_ring_pct']}% of those within two rings, average wait {summary['avg_wait_s']} s"
        )

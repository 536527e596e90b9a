"""The `cti` command. Each subcommand lives in the module named for what it does; this file only
lists them, so `cti --help` stays fast (subcommand modules are imported when used)."""

from __future__ import annotations

import importlib
from typing import Any

import click

# name -> "module:attribute" of a click.Command. Add a line here for a new subcommand.
COMMANDS: dict[str, str] = {
    "agi": "cti.commands.agi:agi",
    "migrate": "cti.commands.migrate:migrate",
    "check": "cti.commands.check:check",
    "demo": "cti.commands.demo:demo",
    "serve": "cti.commands.serve:serve",
    "user": "cti.commands.user:user",
    "sim": "cti.commands.sim:sim",
    "facts": "cti.commands.facts:facts",
    "peak": "cti.commands.peak:peak",
    "callbacks": "cti.commands.callbacks:callbacks",
    "agents": "cti.commands.agents:agents",
    "prompts": "cti.commands.prompts:prompts",
    "fines": "cti.commands.fines:fines",
    "roster": "cti.commands.roster:roster",
    "orders": "cti.commands.orders:orders",
    "reports": "cti.commands.reports:reports",
    "campaigns": "cti.commands.campaigns:campaigns",
    "contacts": "cti.commands.contacts:contacts",
    "dnc": "cti.commands.dnc:dnc",
    "compliance": "cti.commands.compliance:compliance",
    "linetest": "cti.commands.linetest:linetest",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        cmd: Any = getattr(importlib.import_module(module), attr)
        return cmd


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="CTI_CONFIG",
    help="TOML settings file (default: ./cti.toml if present). CTI_* variables override it.",
)
@click.version_option(package_name="cti")
@click.pass_context
def main(ctx: click.Context, config_path: str | None) -> None:
    """cti: CTI server for Asterisk call centers (FastAGI routing, AMI listener, PostgreSQL event log)."""
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path

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
    "recordings": "cti.commands.recordings:recordings",
    "campaigns": "cti.commands.campaigns:campaigns",
    "contacts": "cti.commands.contacts:contacts",
    "dnc": "cti.commands.dnc:dnc",
    "compliance": "cti.commands.compliance:compliance",
    "linetest": "cti.commands.linetest:linetest",
    "policy": "cti.commands.policy:policy",
}


class LazyGroup(click.Group):
    """Subcommands imported when used; bad input anywhere below turns into one line, exit 2
    (cti/cli_errors.py)."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:  # fmt: skip
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as e:
            from cti.cli_errors import translate

            raise translate(e) from None  # type: ignore[misc]

    def invoke(self, ctx: click.Context) -> Any:
        # what follows the group's own options: the callback checks it for --help
        ctx.meta["cti.rest"] = [*getattr(ctx, "_protected_args", ()), *ctx.args]
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as e:
            from cti.cli_errors import translate  # here, so `cti --help` does not load pydantic

            bad = translate(e)
            if bad is None:
                raise  # a real bug: its traceback is what a developer needs
            raise bad from None

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
    if not set(ctx.meta.get("cti.rest", ())) & set(ctx.help_option_names):
        # every command checks the settings first, so a broken cti.toml or CTI_* variable is named
        # in one line before anything runs, whether or not the command reads that key
        from cti.config import load_settings

        ctx.obj["settings"] = load_settings(config_path)

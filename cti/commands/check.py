"""`cti check`: validate settings and policy and say what is wrong, naming the key."""

from __future__ import annotations

import click

from cti.commands.common import settings_from
from cti.config import ConfigError
from cti.policy import load_policy
from cti.prompts import report


@click.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Validate the settings and the policy file; exit non-zero naming each bad key."""
    settings = settings_from(ctx)
    try:
        policy = load_policy(settings.policy_file)
    except ConfigError as e:
        raise click.ClickException(f"policy error:\n{e}") from None
    click.echo(
        f"settings ok (time zone {settings.timezone}); policy ok: {policy.ring.max_rings} rings × "
        f"{policy.ring.cycle_s:g} s, service hours {policy.service_hours.start:%H:%M}–"
        f"{policy.service_hours.end:%H:%M}, {len(policy.fines)} fine rules"
    )
    # a deployment problem, not a settings error: said, not fatal (the CTI may run where Asterisk's
    # sounds are not mounted)
    prompts = report(settings.prompts.dir)
    if prompts:
        click.echo(f"WARNING {prompts}", err=True)
    else:
        click.echo(f"prompts ok in {settings.prompts.dir}")

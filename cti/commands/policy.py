"""`cti policy`: the house figures (ring cadence, fines in 元, quotas, caps) as a manager changes them,
from now on (cti/policy_admin.py; the managers' page /admin/policy does the same). A bad value is one
line naming the key, and nothing changes."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import click

from cti import policy_admin
from cti.commands.common import settings_from, with_conn


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


@click.group()
def policy() -> None:
    """The house figures (ring cadence, fines in 元, quotas, caps): show, set, unset, history."""


@policy.command("show")
@click.argument("prefix", required=False, default="")
@click.pass_context
def show(ctx: click.Context, prefix: str) -> None:
    """Every figure in force (or those under PREFIX, e.g. `fines`), `*` marking a database override."""
    settings = settings_from(ctx)

    async def go(conn: asyncpg.Connection) -> list[policy_admin.Figure]:
        return await policy_admin.figures(conn, settings.policy_file, prefix)

    for f in with_conn(settings, go):
        mark = f"  * {f.overridden_by}" if f.overridden_by is not None else ""
        click.echo(f"{f.key} = {_show(f.value)}{mark}")


@policy.command("set")
@click.argument("key")
@click.argument("value")
@click.option("--by", required=True, help="Who decided the change (kept in the history).")
@click.pass_context
def set_(ctx: click.Context, key: str, value: str, by: str) -> None:
    """Set KEY (dotted, e.g. fines.agent_hung_up_first.agent) to VALUE from now on."""
    settings = settings_from(ctx)

    async def go(conn: asyncpg.Connection) -> Any:
        try:
            return await policy_admin.set_figure(conn, settings.policy_file, key, value, by)
        except policy_admin.PolicyChangeError as e:
            raise click.BadParameter(str(e), param_hint="VALUE") from None

    stored = with_conn(settings, go)
    click.echo(f"{key} = {_show(stored)} from now on (a running cti serve reads it when it next starts)")


@policy.command("unset")
@click.argument("key")
@click.option("--by", required=True, help="Who decided the change (kept in the history).")
@click.pass_context
def unset(ctx: click.Context, key: str, by: str) -> None:
    """Drop the override of KEY: the file's figure is in force again from now on."""
    settings = settings_from(ctx)

    async def go(conn: asyncpg.Connection) -> None:
        try:
            await policy_admin.unset_figure(conn, key, by)
        except policy_admin.PolicyChangeError as e:
            raise click.BadParameter(str(e), param_hint="KEY") from None

    with_conn(settings, go)
    click.echo(f"{key}: the file's figure again from now on")


@policy.command("history")
@click.argument("key", required=False)
@click.pass_context
def history(ctx: click.Context, key: str | None) -> None:
    """Every change (of KEY, or of all): when it took effect, the value, who made it."""
    settings = settings_from(ctx)

    async def go(conn: asyncpg.Connection) -> list[dict[str, Any]]:
        return await policy_admin.history(conn, key)

    for h in with_conn(settings, go):
        value = "(the file's figure)" if h["value"] is None else _show(h["value"])
        click.echo(f"{h['effective_from']}  {h['key']} = {value}  by {h['changed_by']}")

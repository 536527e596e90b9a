"""`cti callbacks`: look at and manage the callback queue (numbers masked, R-MASK)."""

from __future__ import annotations

from typing import Any, TypeVar

import asyncpg
import click

from cti.callbacks import queries
from cti.callbacks.offer import open_callback
from cti.callbacks.repo import InvalidCallbackNumber
from cti.clock import SystemClock
from cti.commands.common import settings_from, who, with_conn
from cti.masking import mask_number
from cti.policy import load_policy

T = TypeVar("T")


@click.group()
def callbacks() -> None:
    """The callback queue: list, show, add, cancel."""


@callbacks.command("list")
@click.option(
    "--status",
    type=click.Choice([*queries.STATUSES, "all"]),
    default="open",
    show_default=True,
    help="Which callbacks.",
)
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True)
@click.pass_context
def list_cmd(ctx: click.Context, status: str, limit: int) -> None:
    """Callbacks in dispatch order (priority, then first call time)."""
    settings = settings_from(ctx)

    async def go(conn: asyncpg.Connection) -> tuple[dict[str, int], list[queries.CallbackView]]:
        st = None if status == "all" else status
        return await queries.counts(conn), await queries.list_callbacks(conn, status=st, limit=limit)

    n, rows = with_conn(settings, go)
    click.echo("  ".join(f"{k} {v}" for k, v in n.items()))
    tz = settings.tz
    for c in rows:
        click.echo(
            f"{c.id:>7}  {c.number:<14} did {c.did or '-':<12} {c.kind:<7} {c.status:<9} "
            f"{c.outcome or '':<12} prio {c.priority:<3} calls {c.call_count:<3} attempts {c.attempts:<2} "
            f"first {c.first_call_at.astimezone(tz):%m-%d %H:%M:%S}"
        )


@callbacks.command("show")
@click.argument("callback_id", type=int)
@click.pass_context
def show(ctx: click.Context, callback_id: int) -> None:
    """One callback and its attempts."""
    settings = settings_from(ctx)
    found = with_conn(settings, lambda c: queries.get_callback(c, callback_id))
    if found is None:
        raise click.ClickException(f"no callback with id {callback_id}")
    c, attempts = found
    tz = settings.tz
    click.echo(
        f"callback {c.id}: {c.number} (dialed {c.did or '-'}) {c.kind}, {c.status} {c.outcome or ''}, "
        f"{c.call_count} call(s), first {c.first_call_at.astimezone(tz):%Y-%m-%d %H:%M:%S}"
    )
    for a in attempts:
        click.echo(
            f"  attempt {a.attempt} {a.channel_id} {a.agent} {a.state} {a.outcome or ''} "
            f"at {a.recorded_at.astimezone(tz):%H:%M:%S}"
        )


@callbacks.command("add")
@click.option("--number", required=True, help="Customer number to call back.")
@click.option("--did", required=True, help="The number to present (the one the customer dialed).")
@click.pass_context
def add(ctx: click.Context, number: str, did: str) -> None:
    """Add a manual callback (joins the number's open callback if there is one)."""
    settings = settings_from(ctx)
    policy = load_policy(settings.policy_file)

    async def go(conn: asyncpg.Connection) -> Any:
        return await open_callback(
            conn, number=number, did=did, kind="manual", now=SystemClock().now(), policy=policy.callbacks
        )

    try:
        ref = with_conn(settings, go)
    except InvalidCallbackNumber as e:
        raise click.ClickException(f"cannot call back {mask_number(number)}: {e}") from None
    verb = "added" if ref.created else f"joined open callback (now {ref.call_count} calls):"
    click.echo(f"{verb} callback {ref.id}")


@callbacks.command("cancel")
@click.argument("callback_id", type=int)
@click.option("--by", default=None, help="Who cancels (default: the OS user).")
@click.pass_context
def cancel(ctx: click.Context, callback_id: int, by: str | None) -> None:
    """Cancel an open callback."""
    settings = settings_from(ctx)
    try:
        with_conn(
            settings,
            lambda c: queries.cancel_callback(c, callback_id, by=by or who(), now=SystemClock().now()),
        )
    except queries.CannotCancel as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"cancelled callback {callback_id}")

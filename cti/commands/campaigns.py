"""`cti campaigns`: create, list, start/pause/stop, attach a contact list, the funnel report."""

from __future__ import annotations

import json
import re
from datetime import time, timedelta
from typing import Any

import asyncpg
import click

from cti.clock import SystemClock
from cti.commands.common import BadInput, parse_when, settings_from, who, with_conn
from cti.outbound import campaigns as repo
from cti.outbound.funnel import GROUPINGS, HEADERS_ZH, funnel, to_csv, to_json
from cti.outbound.rules import Window
from cti.policy import load_policy_from_db

_WINDOW = re.compile(r"^([\w-]+)=(\d{1,2}:\d{2})-(\d{1,2}:\d{2})$")


def parse_window(spec: str) -> Window:
    """`boss=10:00-11:30` -> Window("boss", 10:00, 11:30)."""
    m = _WINDOW.match(spec.strip())
    if not m:
        raise BadInput(f"call window {spec!r}: use segment=HH:MM-HH:MM, e.g. boss=10:00-11:30")
    try:
        a, b = time.fromisoformat(m.group(2).zfill(5)), time.fromisoformat(m.group(3).zfill(5))
    except ValueError:
        raise BadInput(f"call window {spec!r}: {m.group(2)} or {m.group(3)} is not a time of day") from None
    if b <= a:
        raise BadInput(f"call window {spec!r}: the end must be after the start")
    return Window(m.group(1), a, b)


@click.group()
def campaigns() -> None:
    """Outbound campaigns (R-PACE): every change is an event."""


@campaigns.command("create")
@click.option("--name", required=True)
@click.option("--product", required=True, help="What is sold; caps per product count across campaigns.")
@click.option("--queue", required=True, help="Agent group that works the campaign.")
@click.option("--did", required=True, help="Number presented when the customer never called us.")
@click.option("--mode", type=click.Choice(repo.MODES), required=True)
@click.option(
    "--window", "windows", multiple=True, help="segment=HH:MM-HH:MM (default: default=09:00-21:00)."
)
@click.option("--max-attempts", type=click.IntRange(1, 100), default=3, show_default=True)
@click.option("--retry-backoff", type=click.IntRange(0), default=3600, show_default=True, help="Seconds.")
@click.pass_context
def create(
    ctx: click.Context,
    name: str,
    product: str,
    queue: str,
    did: str,
    mode: str,
    windows: tuple[str, ...],
    max_attempts: int,
    retry_backoff: int,
) -> None:
    """Create a campaign (status draft)."""
    settings = settings_from(ctx)
    wins = tuple(parse_window(w) for w in windows) or (Window("default", time(9), time(21)),)
    if not re.fullmatch(r"\+?[0-9]{3,20}", did):
        raise BadInput(f"--did {did!r} is not a phone number")

    async def go(conn: asyncpg.Connection) -> int:
        try:
            return await repo.create(
                conn,
                name=name,
                product=product,
                queue=queue,
                did=did,
                mode=mode,
                by=who(),
                max_attempts=max_attempts,
                retry_backoff_s=retry_backoff,
                windows=wins,
            )
        except asyncpg.UniqueViolationError:
            raise BadInput(f"a campaign named {name!r} already exists") from None

    click.echo(f"campaign {with_conn(settings, go)} created ({mode}, draft)")


@campaigns.command("list")
@click.pass_context
def list_cmd(ctx: click.Context) -> None:
    settings = settings_from(ctx)

    async def go(conn: asyncpg.Connection) -> list[Any]:
        return await conn.fetch(
            """SELECT k.id, k.name, k.product, k.mode, k.status, k.queue,
                      (SELECT count(*) FROM campaign_contacts cc WHERE cc.campaign_id = k.id) AS contacts,
                      (SELECT count(*) FROM dials d WHERE d.campaign_id = k.id) AS dials
               FROM campaigns k ORDER BY k.id"""
        )

    for r in with_conn(settings, go):
        click.echo(
            f"{r['id']:>4}  {r['name']:<24} {r['product']:<14} {r['mode']:<11} {r['status']:<8} "
            f"queue {r['queue']:<10} contacts {r['contacts']:<8} dials {r['dials']}"
        )


def _status_command(status: str) -> click.Command:
    @click.command(status_name := {"running": "start", "paused": "pause", "stopped": "stop"}[status])
    @click.argument("campaign_id", type=int)
    @click.pass_context
    def cmd(ctx: click.Context, campaign_id: int) -> None:
        settings = settings_from(ctx)

        async def go(conn: asyncpg.Connection) -> None:
            try:
                await repo.set_status(conn, campaign_id, status, by=who())
            except LookupError as e:
                raise BadInput(str(e)) from None

        with_conn(settings, go)
        click.echo(f"campaign {campaign_id}: {status}")

    cmd.help = f"{status_name.capitalize()} a campaign."
    return cmd


for _s in ("running", "paused", "stopped"):
    campaigns.add_command(_status_command(_s))


@campaigns.command("attach")
@click.argument("campaign_id", type=int)
@click.option("--list", "list_name", required=True)
@click.pass_context
def attach(ctx: click.Context, campaign_id: int, list_name: str) -> None:
    """Add a contact list's contacts to a campaign (contacts already in it are kept as they are)."""
    settings = settings_from(ctx)

    async def go(conn: asyncpg.Connection) -> int:
        list_id = await conn.fetchval("SELECT id FROM contact_lists WHERE name = $1", list_name)
        if list_id is None:
            raise BadInput(f"no contact list named {list_name!r}")
        if not await conn.fetchval("SELECT true FROM campaigns WHERE id = $1", campaign_id):
            raise BadInput(f"no campaign {campaign_id}")
        return await repo.attach_list(conn, campaign_id, list_id)

    click.echo(f"{with_conn(settings, go)} contacts added to campaign {campaign_id}")


@campaigns.command("funnel")
@click.option("--by", type=click.Choice(list(GROUPINGS)), default="campaign", show_default=True)
@click.option("--since", required=True, help="Start (site time zone unless an offset is given).")
@click.option("--until", help="End (default: now).")
@click.option("--campaign", "campaign_id", type=int)
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True
)
@click.pass_context
def funnel_cmd(
    ctx: click.Context, by: str, since: str, until: str | None, campaign_id: int | None, fmt: str
) -> None:
    """外呼营销运营效率 funnel (seed 001 附件4) per campaign, agent, hour or day."""
    settings = settings_from(ctx)
    t0 = parse_when(since, settings)
    t1 = parse_when(until, settings) if until else SystemClock().now() + timedelta(seconds=1)

    async def go(c: asyncpg.Connection) -> list[Any]:
        effective = (await load_policy_from_db(c, settings.policy_file)).outbound.effective_talk_s
        return await funnel(c, by, t0, t1, settings.timezone, effective, campaign_id)

    rows = with_conn(settings, go)
    if fmt == "json":
        click.echo(json.dumps(to_json(rows), ensure_ascii=False))
    elif fmt == "csv":
        click.echo(to_csv(rows), nl=False)
    else:
        click.echo("  ".join(HEADERS_ZH.values()))
        for r in rows:
            click.echo(
                f"{r.group:<20} {r.seats:>4} {r.calls_per_seat:>8} {r.dials:>7} {r.connect_rate:>7.1%} "
                f"{r.connects:>6} {r.effective_rate:>7.1%} {r.effective_talks:>6} {r.success_rate:>7.1%} "
                f"{r.orders:>5}"
            )

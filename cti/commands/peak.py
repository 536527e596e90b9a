"""`cti peak`: the media schedule (ad airings), the supervisor switch and the current peak state."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import asyncpg
import click

from cti.clock import SystemClock
from cti.commands.common import settings_from, who, with_conn
from cti.peak import repo
from cti.peak.machine import active_airing
from cti.policy import load_policy

T = TypeVar("T")


def parse_start(text: str, tz: ZoneInfo) -> datetime:
    """ISO date-time; without an offset it is site local time (settings.timezone)."""
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not a date-time like 2026-11-23T20:00 or 2026-11-23 20:00+08:00"
        ) from None
    return dt if dt.tzinfo else dt.replace(tzinfo=tz)


def _fmt(dt: datetime, tz: ZoneInfo) -> str:
    return f"{dt.astimezone(tz):%Y-%m-%d %H:%M:%S}"


@click.group()
def peak() -> None:
    """TV-ad peak mode: media schedule, supervisor switch, status."""


@peak.group()
def schedule() -> None:
    """The media schedule: ad airings that put the center in peak mode."""


@schedule.command("add")
@click.option("--channel", required=True, help="TV channel, e.g. CCTV-1.")
@click.option("--program", required=True, help="Program the ad airs in.")
@click.option("--start", "start", required=True, help="Air time; without an offset, site local time.")
@click.option("--duration", "duration_s", type=int, required=True, help="Spot length in seconds.")
@click.option("--expected", "expected_calls", type=int, default=0, show_default=True, help="Expected calls.")
@click.option(
    "--tail",
    "tail_minutes",
    type=float,
    default=None,
    help="Minutes of peak after the spot (default: policy).",
)
@click.option("--by", "by", default=None, help="Who adds it (default: the OS user).")
@click.pass_context
def schedule_add(
    ctx: click.Context,
    channel: str,
    program: str,
    start: str,
    duration_s: int,
    expected_calls: int,
    tail_minutes: float | None,
    by: str | None,
) -> None:
    """Add an ad airing."""
    settings = settings_from(ctx)
    starts_at = parse_start(start, settings.tz)

    async def go(conn: asyncpg.Connection) -> Any:
        return await repo.add_airing(
            conn,
            channel=channel,
            program=program,
            starts_at=starts_at,
            duration_s=duration_s,
            expected_calls=expected_calls,
            tail_minutes=tail_minutes,
            by=by or who(),
        )

    try:
        a = with_conn(settings, go)
    except repo.ScheduleError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"added airing {a.id}: {a.channel} {a.program} at {_fmt(a.starts_at, settings.tz)}")


@schedule.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include airings whose window has ended.")
@click.pass_context
def schedule_list(ctx: click.Context, show_all: bool) -> None:
    """List airings (current and upcoming unless --all)."""
    settings = settings_from(ctx)
    policy = load_policy(settings.policy_file)
    now = SystemClock().now()
    airings = with_conn(settings, repo.list_airings)
    shown = [a for a in airings if show_all or a.ends_at(policy.peak.tail_minutes) > now]
    if not shown:
        click.echo("no airings" if show_all else "no current or upcoming airings (use --all for past ones)")
        return
    click.echo(f"{'id':>5}  {'start':19}  {'dur_s':>5}  {'tail_min':>8}  {'expected':>8}  channel / program")
    for a in shown:
        tail = a.tail_minutes if a.tail_minutes is not None else policy.peak.tail_minutes
        click.echo(
            f"{a.id:>5}  {a.starts_at.astimezone(settings.tz):%Y-%m-%d %H:%M:%S}  {a.duration_s:>5g}  "
            f"{tail:>8g}  {a.expected_calls:>8}  {a.channel} / {a.program}"
        )


@schedule.command("remove")
@click.argument("airing_id", type=int)
@click.pass_context
def schedule_remove(ctx: click.Context, airing_id: int) -> None:
    """Remove an airing by id."""
    settings = settings_from(ctx)
    if not with_conn(settings, lambda c: repo.remove_airing(c, airing_id)):
        raise click.ClickException(f"no airing with id {airing_id}")
    click.echo(f"removed airing {airing_id}")


def _switch_command(mode: str, help_text: str) -> click.Command:
    @click.command(mode, help=help_text)
    @click.option("--by", "by", default=None, help="Who switches (default: the OS user).")
    @click.pass_context
    def cmd(ctx: click.Context, by: str | None) -> None:
        settings = settings_from(ctx)
        s = with_conn(settings, lambda c: repo.set_switch(c, mode, by=by or who(), now=SystemClock().now()))
        click.echo(f"peak switch: {s.mode} (by {s.updated_by})")

    return cmd


peak.add_command(_switch_command("on", "Force peak mode on (supervisor switch)."))
peak.add_command(_switch_command("off", "Force peak mode off (supervisor switch)."))
peak.add_command(_switch_command("auto", "Let the schedule and queue figures decide (default)."))


@peak.command("status")
@click.pass_context
def status(ctx: click.Context) -> None:
    """Show the switch, the last decided peak state and the airing in effect."""
    settings = settings_from(ctx)
    policy = load_policy(settings.policy_file)
    now = SystemClock().now()

    async def go(conn: asyncpg.Connection) -> tuple[Any, Any, Any]:
        return await repo.get_switch(conn), await repo.load_state(conn), await repo.airings_near(conn, now)

    switch, state, airings = with_conn(settings, go)
    tz = settings.tz
    click.echo(f"switch: {switch.mode} (set {_fmt(switch.updated_at, tz)} by {switch.updated_by})")
    if state is None:
        click.echo("state: not decided yet (the peak monitor has not run)")
    else:
        word = "IN PEAK" if state.in_peak else "not in peak"
        click.echo(
            f"state: {word}, cause {state.cause}, since {state.since.astimezone(tz):%Y-%m-%d %H:%M:%S}"
        )
    a = active_airing(airings, now, policy.peak.tail_minutes)
    if a is not None:
        end = a.ends_at(policy.peak.tail_minutes).astimezone(tz)
        click.echo(f"airing in effect: {a.id} {a.channel} / {a.program}, window ends {end:%H:%M:%S}")
    upcoming = [x for x in airings if x.starts_at > now]
    if upcoming:
        n = upcoming[0]
        click.echo(
            f"next airing: {n.id} {n.channel} / {n.program} at {n.starts_at.astimezone(tz):%Y-%m-%d %H:%M:%S}"
        )

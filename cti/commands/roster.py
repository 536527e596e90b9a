"""`cti roster`: who works which shift under which supervisor (排班)."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import click

from cti.commands.common import parse_day, settings_from, with_conn
from cti.fines.attendance import RosterError, parse_roster_csv, roster_between, set_roster
from cti.fines.rules import RosterEntry


@click.group()
def roster() -> None:
    """The roster: date, shift, group, supervisor, agents."""


def _save(ctx: click.Context, entries: list[RosterEntry], by: str) -> int:
    settings = settings_from(ctx)

    async def go(conn: asyncpg.Connection) -> int:
        try:
            return await set_roster(conn, entries, by)
        except RosterError as e:
            raise click.UsageError(str(e)) from None

    return with_conn(settings, go)


@roster.command("set")
@click.argument("day")
@click.argument("shift")
@click.argument("agents", nargs=-1, required=True)
@click.option("--group", default="default")
@click.option("--supervisor", default=None)
@click.option("--by", default="cli", help="Who made the change.")
@click.pass_context
def set_(
    ctx: click.Context,
    day: str,
    shift: str,
    agents: tuple[str, ...],
    group: str,
    supervisor: str | None,
    by: str,
) -> None:
    """Set DAY's SHIFT for a group: its AGENTS and supervisor."""
    n = _save(ctx, [RosterEntry(parse_day(day), shift, group, supervisor, agents)], by)
    click.echo(f"roster: {n} entry saved")


@roster.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--by", default="cli")
@click.pass_context
def import_(ctx: click.Context, path: Path, by: str) -> None:
    """Import a CSV (day,shift,group,supervisor,agents): all lines or none."""
    try:
        entries = parse_roster_csv(path.read_text(encoding="utf-8-sig"))
    except (RosterError, UnicodeDecodeError) as e:
        raise click.UsageError(f"{path.name}: {e}") from None
    click.echo(f"roster: {_save(ctx, entries, by)} entries imported")


@roster.command("show")
@click.argument("first")
@click.argument("last", required=False)
@click.pass_context
def show(ctx: click.Context, first: str, last: str | None) -> None:
    settings = settings_from(ctx)
    a, b = parse_day(first), parse_day(last or first)
    for e in with_conn(settings, lambda c: roster_between(c, a, b)):
        click.echo(
            f"{e.day} {e.shift:<8} {e.group:<10} supervisor={e.supervisor or '-'} agents={' '.join(e.agents)}"
        )

"""`cti dnc`: the do-not-call list by category (R-DNC): add, remove, check, import a file."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import click

from cti.clock import SystemClock
from cti.commands.common import BadInput, settings_from, who, with_conn
from cti.masking import mask_number
from cti.outbound import dnc as repo
from cti.outbound.imports import BadRow, ImportFileError, open_rows, parse_mapping, parse_rows
from cti.routing.numbers import NotAPhoneNumber, normalise_dialable


def _number(raw: str) -> str:
    try:
        return normalise_dialable(raw)
    except NotAPhoneNumber as e:
        raise BadInput(str(e)) from None


_CATEGORY = click.Choice(repo.CATEGORIES)


@click.group()
def dnc() -> None:
    """Numbers never to dial: malicious, do_not_disturb, complaint, refused_all, public_phone, special."""


@dnc.command("add")
@click.argument("number")
@click.option("--category", type=_CATEGORY, required=True)
@click.option("--reason")
@click.pass_context
def add(ctx: click.Context, number: str, category: str, reason: str | None) -> None:
    settings = settings_from(ctx)
    n = _number(number)
    added = with_conn(
        settings, lambda c: repo.add(c, n, category, at=SystemClock().now(), by=who(), reason=reason)
    )
    click.echo(f"{mask_number(n)} {'added to' if added else 'was already on'} the {category} list")


@dnc.command("remove")
@click.argument("number")
@click.option("--category", type=_CATEGORY, required=True)
@click.pass_context
def remove(ctx: click.Context, number: str, category: str) -> None:
    settings = settings_from(ctx)
    n = _number(number)
    done = with_conn(settings, lambda c: repo.remove(c, n, category, at=SystemClock().now(), by=who()))
    if not done:
        raise BadInput(f"{mask_number(n)} is not on the {category} list")
    click.echo(f"{mask_number(n)} removed from the {category} list (kept in its history)")


@dnc.command("check")
@click.argument("number")
@click.pass_context
def check(ctx: click.Context, number: str) -> None:
    settings = settings_from(ctx)
    n = _number(number)
    cats = with_conn(settings, lambda c: repo.active(c, n))
    click.echo(f"{mask_number(n)}: {', '.join(cats) if cats else 'not on any list'}")


@dnc.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--category", type=_CATEGORY, required=True)
@click.option("--map", "mapping", help="number=<header> when the number column has an unusual name.")
@click.option("--encoding")
@click.pass_context
def import_cmd(
    ctx: click.Context, file: Path, category: str, mapping: str | None, encoding: str | None
) -> None:
    """Add every number in FILE (CSV/XLSX) under --category; bad rows are listed, good ones added."""
    settings = settings_from(ctx)
    try:
        headers, rows, _ = open_rows(file, encoding)
        parsed = parse_rows(headers, rows, parse_mapping(mapping))
    except ImportFileError as e:
        raise BadInput(str(e)) from None

    async def go(conn: asyncpg.Connection) -> tuple[int, list[BadRow]]:
        added, bad = 0, []
        now = SystemClock().now()
        for item in parsed:
            if isinstance(item, BadRow):
                bad.append(item)
            else:
                added += await repo.add(
                    conn, item.number, category, at=now, by=who(), reason=f"import {file.name}"
                )
        return added, bad

    try:
        added, bad = with_conn(settings, go)
    except ImportFileError as e:
        raise BadInput(str(e)) from None
    click.echo(f"{added} numbers added to the {category} list, {len(bad)} bad rows")
    for b in bad[:20]:
        click.echo(f"  row {b.row_no}: {b.reason}")

"""`cti contacts import`: load a contact list (CSV in UTF-8/BOM/GBK, or XLSX) with a progress bar;
bad rows are listed with their row number and reason (numbers masked), good rows are kept."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any

import asyncpg
import click

from cti.commands.common import BadInput, settings_from, who, with_conn
from cti.outbound.imports import ImportFileError, ImportReport, import_file, open_rows, parse_mapping


@click.group()
def contacts() -> None:
    """Contact lists for outbound campaigns."""


@contacts.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--list", "list_name", required=True, help="List to add the contacts to (created if new).")
@click.option("--map", "mapping", help="Column mapping, e.g. number=手机号码,name=姓名,segment=客户类型.")
@click.option("--encoding", help="CSV encoding (default: detected; UTF-8, UTF-8 with BOM or GBK).")
@click.option(
    "--errors",
    "errors_out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the bad rows (row number, reason) to this CSV.",
)
@click.option(
    "--show", type=click.IntRange(0, 1000), default=20, show_default=True, help="Bad rows to print."
)
@click.pass_context
def import_cmd(
    ctx: click.Context,
    file: Path,
    list_name: str,
    mapping: str | None,
    encoding: str | None,
    errors_out: Path | None,
    show: int,
) -> None:
    """Import FILE into a contact list; the same file twice adds nothing."""
    settings = settings_from(ctx)
    try:
        cols = parse_mapping(mapping)
        _, _, length = open_rows(file, encoding)  # checks the file before connecting
    except ImportFileError as e:
        raise BadInput(str(e)) from None

    def go(conn: asyncpg.Connection) -> Any:
        async def run() -> tuple[ImportReport, list[Any]]:
            with click.progressbar(length=length, label=f"importing {file.name}", file=sys.stderr) as bar:
                rep = await import_file(
                    conn,
                    file,
                    list_name=list_name,
                    by=who(),
                    mapping=cols,
                    encoding=encoding,
                    progress=bar.update,
                )
            bad = []
            if errors_out is not None and rep.import_id is not None:
                bad = await conn.fetch(
                    "SELECT row_no, reason FROM contact_import_errors WHERE import_id = $1 ORDER BY row_no",
                    rep.import_id,
                )
            return rep, bad

        return run()

    try:
        rep, all_bad = with_conn(settings, go)
    except ImportFileError as e:
        raise BadInput(str(e)) from None
    if rep.already_imported_at:
        click.echo(
            f"{file.name} was already imported into {list_name} at {rep.already_imported_at}: nothing added"
        )
        return
    click.echo(
        f"{rep.rows_total} rows: {rep.rows_added} added to {list_name}, {rep.rows_duplicate} already there, "
        f"{rep.bad_count} bad"
    )
    for b in rep.bad[:show]:
        click.echo(f"  row {b.row_no}: {b.reason}")
    if rep.bad_count > show:
        click.echo(f"  ... {rep.bad_count - show} more (--errors FILE writes them all)")
    if errors_out is not None:
        with errors_out.open("w", encoding="utf-8-sig", newline="") as f:
            w = csv.writer(f)
            w.writerow(["行号 row", "原因 reason"])
            w.writerows((r["row_no"], r["reason"]) for r in all_bad)

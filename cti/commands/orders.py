"""`cti orders import FILE`: orders from the order system (CSV or XLSX), credited by R-FIRST-OWNER."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import click

from cti.commands.common import settings_from, with_conn
from cti.orders.imports import OrderImportError, parse_csv, parse_xlsx, store


@click.group()
def orders() -> None:
    """Orders (订单) from the order system."""


@orders.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def import_(ctx: click.Context, path: Path) -> None:
    """Import orders (columns external_id, number, agent, created_at[, status, product, duplicate_of,
    parent]); a bad line stops the import and nothing is stored. Importing again updates statuses."""
    settings = settings_from(ctx)
    try:
        if path.suffix.lower() == ".xlsx":
            rows = parse_xlsx(path, settings.tz)
        else:
            rows = parse_csv(path.read_text(encoding="utf-8-sig"), settings.tz)
    except (OrderImportError, UnicodeDecodeError) as e:
        raise click.UsageError(f"{path.name}: {e}") from None

    async def go(conn: asyncpg.Connection) -> dict[str, int]:
        try:
            return await store(conn, rows, "import")
        except OrderImportError as e:
            raise click.UsageError(f"{path.name}: {e}") from None

    counts = with_conn(settings, go)
    click.echo(f"orders: {counts['inserted']} new, {counts['updated']} updated")

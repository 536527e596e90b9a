"""`cti migrate`: apply the numbered SQL files in db/ (or list them with --status)."""

from __future__ import annotations

import asyncpg
import click

from cti.commands.common import run, settings_from
from cti.db.connect import database_url
from cti.db.migrate import migrate as apply_migrations
from cti.db.migrate import status as migration_status


@click.command()
@click.option(
    "--status", "show_status", is_flag=True, help="List applied and pending migrations; change nothing."
)
@click.pass_context
def migrate(ctx: click.Context, show_status: bool) -> None:
    """Apply pending database migrations once each, in order, under an advisory lock."""
    settings = settings_from(ctx)

    async def go() -> None:
        async with database_url(settings) as url:
            conn = await asyncpg.connect(url)
            try:
                if show_status:
                    for m, applied in await migration_status(conn):
                        click.echo(f"{'applied' if applied else 'pending'}  {m.name}")
                    return
                done = await apply_migrations(conn)
                for m in done:
                    click.echo(f"applied  {m.name}")
                click.echo(f"{len(done)} migration(s) applied; database is up to date")
            finally:
                await conn.close()

    run(go())

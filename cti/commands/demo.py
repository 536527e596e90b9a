"""`cti demo`: simulated PBX + CTI + monitor on the embedded database (or DATABASE_URL)."""

from __future__ import annotations

import asyncpg
import click

from cti.commands.common import run, settings_from
from cti.db.connect import database_url
from cti.db.migrate import migrate


@click.command()
@click.pass_context
def demo(ctx: click.Context) -> None:
    """Run the demo: migrate the database, then start the simulated PBX and the CTI server."""
    settings = settings_from(ctx)

    async def go() -> None:
        async with database_url(settings) as url:
            conn = await asyncpg.connect(url)
            try:
                done = await migrate(conn)
                n = await conn.fetchval("SELECT count(*) FROM schema_migrations")
            finally:
                await conn.close()
            where = "DATABASE_URL" if settings.database_url else f"embedded PostgreSQL in {settings.data_dir}"
            click.echo(f"database: {where}; {len(done)} migration(s) applied now, {n} in all")
            click.echo("simulator and CTI server are not built yet: nothing more to run")

    run(go())

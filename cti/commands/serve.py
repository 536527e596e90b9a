"""`cti serve`: the CTI server against a real Asterisk (AMI + FastAGI), with the web monitor."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import asyncpg
import click

from cti.app import CtiServer
from cti.commands.common import run, settings_from
from cti.config import ConfigError
from cti.db.connect import database_url
from cti.db.migrate import migrate
from cti.policy import load_policy_from_db


@click.command()
@click.option("--no-web", is_flag=True, help="Do not serve the monitor (another process does).")
@click.pass_context
def serve(ctx: click.Context, no_web: bool) -> None:
    """Run the CTI server: AMI listener, FastAGI routing, peak mode, callback dispatch, monitor."""
    settings = settings_from(ctx)
    if not settings.ami.secret.get_secret_value():
        raise click.ClickException("configuration error: ami.secret is empty (set CTI_AMI__SECRET)")

    async def go() -> None:
        async with database_url(settings) as url:
            conn = await asyncpg.connect(url)
            try:
                await migrate(conn)
                policy = await load_policy_from_db(conn, settings.policy_file)
            except ConfigError as e:
                raise click.ClickException(f"policy error:\n{e}") from None
            finally:
                await conn.close()
            server = CtiServer(settings, policy, url, web_enabled=not no_web)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError):
                    loop.add_signal_handler(sig, stop.set)
            await server.start()
            click.echo(f"cti serving: FastAGI :{server.agi.port if server.agi else '?'}, "
                       f"monitor http://{settings.web.host}:{server.web_port}/")  # fmt: skip
            try:
                await stop.wait()
            finally:
                await server.close()

    run(go())

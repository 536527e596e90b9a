"""`cti serve`: the CTI server against a real Asterisk (AMI + FastAGI), with the web monitor."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import signal

import asyncpg
import click

from cti.app import CtiServer
from cti.commands.common import run, settings_from
from cti.config import ConfigError, Settings
from cti.db.connect import database_url
from cti.db.migrate import migrate
from cti.policy import load_policy_from_db
from cti.prompts import report


class StartupError(click.ClickException):
    """The server cannot start as configured (a port in use): one line, exit status 2."""

    exit_code = 2


def listen_error(e: OSError, settings: Settings) -> str:
    """`[Errno 98] error while attempting to bind on address ('127.0.0.1', 8080): address already in
    use` -> which of our listeners, and the setting that moves it."""
    text = e.strerror or str(e)
    for what, section, key in (("web monitor", settings.web, "CTI_WEB__PORT"),
                               ("FastAGI", settings.agi, "CTI_AGI__PORT")):  # fmt: skip
        if f"'{section.host}', {section.port})" in text:
            why = "already in use" if e.errno == errno.EADDRINUSE else text.rsplit(": ", 1)[-1]
            return f"{what} cannot listen on {section.host}:{section.port}: {why} (set {key})"
    return f"cannot listen: {text}"


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
            prompts = report(settings.prompts.dir)
            if prompts:
                click.echo(f"WARNING {prompts}", err=True)
            try:
                await server.start()
            except OSError as e:
                await server.close()
                raise StartupError(listen_error(e, settings)) from None
            click.echo(f"cti serving: FastAGI :{server.agi.port if server.agi else '?'}, "
                       f"monitor http://{settings.web.host}:{server.web_port}/")  # fmt: skip
            try:
                await stop.wait()
            finally:
                await server.close()

    run(go())

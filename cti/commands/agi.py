"""`cti agi`: run the FastAGI server (route, night, callback_offer) on settings.agi.host:port."""

from __future__ import annotations

import asyncio
import signal

import click

from cti.agi.app import start_agi
from cti.commands.common import run, settings_from
from cti.db.connect import database_url
from cti.store.events import EventStore


@click.command()
@click.pass_context
def agi(ctx: click.Context) -> None:
    """Serve FastAGI for the dialplan (AGI(agi://HOST:PORT/route)) until interrupted.

    Events go to PostgreSQL through the event store (spool: <data_dir>/spool, the directory the
    degraded-mode script writes to as well). Without AMI live state, a preferred agent is always
    tried first (Dial fails fast if their phone is off); `cti serve` passes the live state."""
    settings = settings_from(ctx)

    async def go() -> None:
        async with database_url(settings) as url:
            store = EventStore(url, settings.spool)
            await store.start()
            service = await start_agi(settings, events=store, dsn=url)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            click.echo(f"FastAGI listening on {settings.agi.host}:{service.server.port}")
            try:
                await stop.wait()
            finally:
                await service.close()
                await store.close()

    run(go())

"""What every subcommand does first: load settings (exit 2 naming the bad key), set up logging."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import asyncpg
import click

from cti import runloop
from cti.config import ConfigError, Settings, load_settings
from cti.db.connect import database_url
from cti.log import configure

T = TypeVar("T")


def settings_from(ctx: click.Context) -> Settings:
    root = ctx.find_root()
    try:
        settings = load_settings((root.obj or {}).get("config_path"))
    except ConfigError as e:
        raise click.ClickException(f"configuration error:\n{e}") from None
    configure(settings.log_format, settings.log_level)
    return settings


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Every command runs on the product's event loop (uvloop; CTI_EVENT_LOOP=asyncio for the
    standard one), the loop bench.agi measures."""
    return runloop.run(coro)


def with_conn(settings: Settings, fn: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """Run `fn(conn)` on a connection to the configured database (embedded when none is set)."""

    async def go() -> T:
        async with database_url(settings) as url:
            conn = await asyncpg.connect(url)
            try:
                return await fn(conn)
            finally:
                await conn.close()

    return run(go())

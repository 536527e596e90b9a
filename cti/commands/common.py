"""What every subcommand does first: load settings (exit 2 naming the bad key), set up logging."""

from __future__ import annotations

import getpass
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg
import click

from cti import runloop
from cti.config import ConfigError, Settings, load_settings
from cti.db.connect import database_url
from cti.log import configure

if TYPE_CHECKING:
    from cti.ami.client import AMIClient
    from cti.store.events import EventStore

T = TypeVar("T")


def settings_from(ctx: click.Context) -> Settings:
    root = ctx.find_root()
    try:
        settings = load_settings((root.obj or {}).get("config_path"))
    except ConfigError as e:
        raise click.ClickException(f"configuration error: {e}") from None
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


@asynccontextmanager
async def pbx_session(settings: Settings) -> AsyncIterator[tuple[asyncpg.Pool, EventStore, AMIClient]]:
    """A database pool, an event store and an AMI connection of this process's own, for a command that
    acts on the PBX beside a running `cti serve`. AMI unreachable: one line, exit status 1."""
    from cti.ami.client import AMIClient, AMIError
    from cti.clock import SystemClock
    from cti.store.events import EventStore

    async with database_url(settings) as url:
        pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
        # its own spool: a running `cti serve` owns the main one
        store = EventStore(url, Path(settings.data_dir) / "spool-cli", clock=SystemClock())
        await store.start()
        client = AMIClient.from_settings(settings.ami)
        try:
            try:
                await client.start()
            except AMIError as e:
                raise click.ClickException(f"AMI: {e}") from None
            yield pool, store, client
        finally:
            await client.close()
            await store.close()
            await pool.close()


def who() -> str:
    """The operator's login name, recorded as who made a change from the command line."""
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (containers): still record that the CLI did it
        return "cli"


class BadInput(click.ClickException):
    """Bad input from the user: one line, exit status 2 (like a usage error), no traceback."""

    exit_code = 2


def parse_when(value: str, settings: Settings) -> datetime:
    """`2026-06-01` or `2026-06-01T09:30` (site time zone unless an offset is given)."""
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise BadInput(f"{value!r} is not a date or time (use 2026-06-01 or 2026-06-01T09:30)") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=settings.tz)


def parse_day(value: str, param_hint: str | None = None) -> date:
    """A `YYYY-MM-DD` argument; anything else is a usage error (exit status 2) naming it."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint=param_hint) from None

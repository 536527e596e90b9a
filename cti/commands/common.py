"""What every subcommand does first: load settings (exit 2 naming the bad key), set up logging."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import click

from cti.config import ConfigError, Settings, load_settings
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
    return asyncio.run(coro)

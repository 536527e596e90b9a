"""`cti recordings purge`: apply the retention period (recording.retention_days) to recordings,
files and rows, with a `recordings_purged` event. `cti serve` runs the same purge hourly under the
leader (decision 0110); this runs it now."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import click

from cti.commands.common import settings_from, with_conn
from cti.recording_files import fixed_dir
from cti.recording_retention import PurgeResult, purge
from cti.store.sink import ConnEvents


@click.group()
def recordings() -> None:
    """Call recordings: retention."""


@recordings.command("purge")
@click.pass_context
def purge_cmd(ctx: click.Context) -> None:
    """Delete recordings older than recording.retention_days (file and row)."""
    settings = settings_from(ctx)
    root = Path(fixed_dir(settings.recording.path_pattern))

    async def go(conn: asyncpg.Connection) -> PurgeResult:
        return await purge(conn, root, datetime.now(UTC), settings.recording.retention_days, ConnEvents(conn))

    r = with_conn(settings, go)
    click.echo(f"purged {r.rows} recordings created before {r.before:%Y-%m-%d} ({r.files} files, "
               f"{r.bytes / 1e6:.1f} MB; {r.outside} paths outside {root} left alone)")  # fmt: skip

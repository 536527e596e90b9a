"""`cti facts rebuild --since …`: derive call and agent facts again from the events log."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import click

from cti.commands.common import run, settings_from
from cti.db.connect import database_url
from cti.facts.repo import rebuild as rebuild_facts
from cti.policy import load_policy_from_db


def _parse_since(value: str) -> datetime:
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO date/time (e.g. 2026-11-23 or 2026-11-23T08:00:00+08:00)"
        ) from None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


@click.group()
def facts() -> None:
    """Call and agent facts (derived from the events log)."""


@facts.command()
@click.option(
    "--since", "since", required=True, help="Rebuild facts from events at/after this time (UTC if naive)."
)
@click.pass_context
def rebuild(ctx: click.Context, since: str) -> None:
    """Delete the facts derived from events since SINCE and derive them again, identically."""
    settings = settings_from(ctx)
    start = _parse_since(since)

    async def go() -> dict[str, int]:
        async with database_url(settings) as url:
            conn = await asyncpg.connect(url)
            try:
                policy = await load_policy_from_db(conn)
                return await rebuild_facts(conn, start, policy.ring)
            finally:
                await conn.close()

    counts = run(go())
    click.echo(
        f"facts rebuilt since {start.isoformat()}: " + ", ".join(f"{k}={v}" for k, v in counts.items())
    )

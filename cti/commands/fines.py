"""`cti fines`: rebuild the fines ledger and rewards from facts, list it, waive a row."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import click

from cti.commands.common import settings_from, with_conn
from cti.fines import repo
from cti.fines.money import yuan
from cti.orders.repo import rebuild_rewards


def parse_time(value: str, what: str = "--since") -> datetime:
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO date/time (e.g. 2026-11-23 or 2026-11-23T08:00:00+08:00)",
            param_hint=what,
        ) from None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


@click.group()
def fines() -> None:
    """Fines ledger (罚款台账) and rewards, derived from facts and events."""


@fines.command()
@click.option("--since", required=True, help="Rebuild violations at/after this time (UTC if naive).")
@click.option("--until", default=None, help="Up to this time (default: now).")
@click.pass_context
def rebuild(ctx: click.Context, since: str, until: str | None) -> None:
    """Derive the ledger and rewards again from SINCE: same facts, same rows; waivers are kept."""
    settings = settings_from(ctx)
    start = parse_time(since)
    end = parse_time(until, "--until") if until else datetime.now(UTC)

    async def go(conn: asyncpg.Connection) -> dict[str, int]:
        counts = await repo.rebuild(conn, start, end, settings.tz, settings.policy_file)
        policy_at = await repo.PolicyTimeline.load(conn, settings.policy_file)
        counts["rewards"] = await rebuild_rewards(conn, start, end, settings.tz, policy_at)
        return counts

    counts = with_conn(settings, go)
    click.echo(
        f"fines rebuilt since {start.isoformat()}: " + ", ".join(f"{k}={v}" for k, v in counts.items())
    )


@fines.command("list")
@click.option("--since", required=True)
@click.option("--until", default=None)
@click.pass_context
def list_(ctx: click.Context, since: str, until: str | None) -> None:
    """Print the ledger rows (元) with their waivers."""
    settings = settings_from(ctx)
    start = parse_time(since)
    end = parse_time(until, "--until") if until else datetime.now(UTC)
    rows = with_conn(settings, lambda c: repo.ledger_with_waivers(c, start, end))
    for r in rows:
        w = f"  waived by {r['waived_by']}: {r['waiver_reason']}" if r["waived_by"] else ""
        click.echo(
            f"{r['occurred_at'].astimezone(settings.tz):%Y-%m-%d %H:%M:%S}  {r['rule']:<20}"
            f" {r['person'] or '-':<12}"
            f" {r['role']:<10} {yuan(r['amount_fen']):>8} 元 {r['points']} pts  {r['id']}{w}"
        )


@fines.command()
@click.argument("ledger_id")
@click.option("--by", "actor", required=True, help="Who waives (a web user name).")
@click.option("--reason", required=True, help="Why (免罚原因).")
@click.option("--undo", is_flag=True, help="Remove the waiver instead.")
@click.pass_context
def waive(ctx: click.Context, ledger_id: str, actor: str, reason: str, undo: bool) -> None:
    """Waive a ledger row (supervisor/manager right; audited)."""
    settings = settings_from(ctx)

    async def go(conn: asyncpg.Connection) -> None:
        role = await conn.fetchval("SELECT role FROM web_users WHERE username = $1 AND active", actor)
        if role is None:
            raise click.BadParameter(f"no active web user {actor!r}", param_hint="--by")
        try:
            await repo.waive(
                conn,
                ledger_id,
                actor,
                role,
                reason,
                datetime.now(UTC),
                settings.tz,
                undo=undo,
                policy_path=settings.policy_file,
            )
        except repo.WaiverError as e:
            raise click.UsageError(str(e)) from None

    with_conn(settings, go)
    click.echo(f"{'unwaived' if undo else 'waived'} {ledger_id}")

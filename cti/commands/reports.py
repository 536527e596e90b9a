"""`cti reports`: run the scheduled reports that are due (once per slot, whichever process claims it),
export the call log as CSV/XLSX."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import click

from cti.commands.common import parse_day, settings_from, with_conn
from cti.fines.repo import day_bounds
from cti.policy import load_policy_from_db
from cti.reports.exports import CALL_LOG_COLUMNS, call_log_rows, csv_chunks, write_xlsx_stream
from cti.reports.schedule import run_due


@click.group()
def reports() -> None:
    """Reports: scheduled runs and exports."""


@reports.command("run-due")
@click.pass_context
def run_due_cmd(ctx: click.Context) -> None:
    """Run every scheduled report that is due and not yet run (catch-up after a restart)."""
    settings = settings_from(ctx)

    async def go(conn: asyncpg.Connection) -> list[str]:
        policy = await load_policy_from_db(conn, settings.policy_file)
        ran = await run_due(conn, datetime.now(UTC), policy, settings.tz)
        return [f"{s.kind} {s.day}" for s in ran]

    for line in with_conn(settings, go):
        click.echo(f"ran {line}")


@reports.command("show")
@click.argument("kind")
@click.argument("day")
@click.pass_context
def show(ctx: click.Context, kind: str, day: str) -> None:
    """Print a scheduled report's stored output (JSON)."""
    settings = settings_from(ctx)
    d = parse_day(day, "DAY")
    out = with_conn(
        settings, lambda c: c.fetchval("SELECT output FROM report_runs WHERE kind = $1 AND day = $2", kind, d)
    )
    if out is None:
        raise click.UsageError(f"no {kind} report for {d}")
    click.echo(json.dumps(json.loads(out), ensure_ascii=False, indent=2))


@reports.command("call-log")
@click.argument("day")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def call_log(ctx: click.Context, day: str, out: Path) -> None:
    """Write DAY's call log (numbers masked) to OUT (.csv with BOM, or .xlsx)."""
    settings = settings_from(ctx)
    d = parse_day(day, "DAY")
    since, until = day_bounds(d, settings.tz)

    async def go(conn: asyncpg.Connection) -> int:
        rows = call_log_rows(conn, since, until, settings.tz, full_numbers=False)
        if out.suffix.lower() == ".xlsx":
            return await write_xlsx_stream(out, CALL_LOG_COLUMNS, rows, title=str(d))
        n = 0
        with out.open("w", encoding="utf-8", newline="") as f:
            f.write("".join(csv_chunks(CALL_LOG_COLUMNS, [])))  # BOM and header
            batch: list[list[object]] = []
            async for r in rows:
                batch.append(r)
                if len(batch) >= 5000:
                    f.write("".join(csv_chunks((), batch, bom=False)))
                    n, batch = n + len(batch), []
            f.write("".join(csv_chunks((), batch, bom=False)))
        return n + len(batch)

    n = with_conn(settings, go)
    click.echo(f"{n} calls written to {out}")

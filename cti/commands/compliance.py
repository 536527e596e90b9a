"""`cti compliance audit --since T`: every dial since T re-checked against the rules of its day,
independently of the dialer's own query (cti.outbound.audit). Exit status 1 when it finds any."""

from __future__ import annotations

import json
import sys

import click

from cti.commands.common import parse_when, settings_from, with_conn
from cti.outbound.audit import audit as run_audit


@click.group()
def compliance() -> None:
    """Compliance checks over what was done (R-DNC, R-CAPS, R-PACE)."""


@compliance.command("audit")
@click.option("--since", required=True, help="Start (site time zone unless an offset is given).")
@click.option("--until", help="End (default: now).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@click.pass_context
def audit(ctx: click.Context, since: str, until: str | None, as_json: bool) -> None:
    settings = settings_from(ctx)
    t0 = parse_when(since, settings)
    t1 = parse_when(until, settings) if until else None
    found = with_conn(settings, lambda c: run_audit(c, t0, t1))
    if as_json:
        click.echo(
            json.dumps(
                {"since": t0.isoformat(), "violations": [v.as_dict() for v in found]}, ensure_ascii=False
            )
        )
    else:
        tz = settings.tz
        for v in found:
            click.echo(
                f"dial {v.dial_id} {v.dialed_at.astimezone(tz):%Y-%m-%d %H:%M:%S} campaign {v.campaign_id} "
                f"{v.number_masked} {v.rule}: {v.reason}"
            )
        click.echo(f"{len(found)} violation(s) since {t0.astimezone(tz):%Y-%m-%d %H:%M}")
    if found:
        sys.exit(1)

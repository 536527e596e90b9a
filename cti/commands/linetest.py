"""`cti linetest`: test-call a DID now through the carrier (R-LINE-TEST), and list results.

`run` originates from this process (its own AMI connection) and waits for the call to come back in
to the route AGI of the running `cti serve`, which records the pass in the database. Exit status:
0 every test passed, 1 a test failed (the reason is printed), 2 bad input or line tests not set up.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import click

from cti.commands.common import pbx_session, run, settings_from, with_conn
from cti.config import Settings

_DID = r"^\+?[0-9]{3,20}$"


@click.group()
def linetest() -> None:
    """Line tests (R-LINE-TEST): every DID called out and back in, morning and middle shift."""


def _run_tests(settings: Settings, did: str | None) -> list[Any]:
    async def go() -> list[Any]:
        from cti.callbacks.ami_adapter import ami_action
        from cti.clock import SystemClock
        from cti.linetest import repo
        from cti.linetest.runner import LineTester

        lt = settings.linetest
        assert lt.caller_id is not None
        async with pbx_session(settings) as (pool, store, client):
            tester = LineTester(pool, action=ami_action(client), clock=SystemClock(), events=store,
                                caller_id=lt.caller_id, trunk=settings.ami.trunk_endpoints[0],
                                timeout_s=lt.timeout_s)  # fmt: skip
            client.subscribe(tester.handle_ami)
            if did is not None:
                dids = [did]
            else:
                async with pool.acquire() as conn:
                    dids = await repo.active_dids(conn, list(lt.dids))
            if not dids:
                raise click.ClickException("no DID to test: set linetest.dids or give agents a DID")
            return [await tester.run(d, via="cli") for d in dids]

    return run(go())


@linetest.command(name="run")
@click.option("--did", default=None, help="Test only this DID (default: every DID).")
@click.pass_context
def run_(ctx: click.Context, did: str | None) -> None:
    """Test-call DIDs now: out through the carrier, back in through from-trunk."""
    import re

    s = settings_from(ctx)
    if did is not None and not re.fullmatch(_DID, did):
        raise click.BadParameter(f"{did!r} is not a phone number", param_hint="--did")
    if s.linetest.caller_id is None:
        raise click.UsageError(
            "line tests are not set up: set linetest.caller_id (CTI_LINETEST__CALLER_ID), the number the "
            "carrier presents for our own calls"
        )
    results = _run_tests(s, did)
    for r in results:
        took = f" in {r.duration_s:.1f} s" if r.duration_s is not None else ""
        click.echo(f"{r.did}: {r.status}{took}" + (f" ({r.reason})" if r.reason else ""))
    if any(r.status != "passed" for r in results):
        raise SystemExit(1)


@linetest.command(name="list")
@click.option("--days", type=click.IntRange(1, 366), default=2, show_default=True)
@click.option("--did", default=None)
@click.pass_context
def list_(ctx: click.Context, days: int, did: str | None) -> None:
    """Line-test results of the last DAYS days, newest first."""
    from cti.clock import SystemClock
    from cti.linetest import repo

    s = settings_from(ctx)
    since = SystemClock().now() - timedelta(days=days)
    rows = with_conn(s, lambda conn: repo.listing(conn, since=since, did=did))
    if not rows:
        click.echo("no line tests")
    for r in rows:
        when = (r["started_at"] or r["scheduled_at"]).astimezone(s.tz).strftime("%m-%d %H:%M")
        took = f"{float(r['duration_s']):.1f}s" if r["duration_s"] is not None else "-"
        click.echo(f"{when} {r['did']:<14} {r['shift'] or r['via']:<8} {r['status']:<8} {took:>7}"
                   + (f"  {r['reason']}" if r["reason"] else ""))  # fmt: skip

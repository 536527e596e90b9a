"""`cti agents`: log agents in and out, pause with a reason, unpause, and show who is logged in.

The same AgentService the phones (*11..*15) and the web panel use decides and records; this command
connects to AMI itself, so it works beside a running `cti serve`. Exit status: 0 done, 1 refused
(the reason is printed) or the PBX could not be reached, 2 bad input.

Provisioning (add, import, list, disable, reset-password) needs only the database: it writes the
`agents` row and the PJSIP realtime rows Asterisk reads (cti/agents/provision.py, decision 0306).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import click

from cti.agents.decide import Decision
from cti.agents.service import AgentService
from cti.callbacks.ami_adapter import ami_action
from cti.clock import SystemClock
from cti.commands.common import pbx_session, run, settings_from
from cti.config import Settings
from cti.db.connect import database_url
from cti.policy import load_policy
from cti.routing.inbound import DEFAULT_QUEUE


async def _in_peak(pool: asyncpg.Pool) -> bool:
    return bool(await pool.fetchval("SELECT in_peak FROM peak_state"))


def _with_service(settings: Settings, fn: Callable[[AgentService], Awaitable[Decision | None]]) -> Any:
    async def go() -> Any:
        policy = load_policy(settings.policy_file)
        async with pbx_session(settings) as (pool, store, client):
            svc = AgentService(pool, policy=policy, clock=SystemClock(), events=store,
                               ami_action=ami_action(client), in_peak=lambda: _in_peak(pool),
                               tz=settings.tz, default_queues=(settings.queue,))  # fmt: skip
            return await fn(svc)

    return run(go())


def _report(d: Decision) -> None:
    if d.allowed:
        click.echo(d.message)
        return
    click.echo(f"refused: {d.message}", err=True)
    raise SystemExit(1)


def _agent_id(value: str) -> str:
    import re

    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", value):
        raise click.BadParameter(f"{value!r} is not an agent id (letters, digits, _ . -; e.g. agent1)")
    return value


@click.group()
def agents() -> None:
    """Agents: provision (add/import/list/disable/reset-password), log in/out, pause/unpause, status."""


@agents.command()
@click.argument("agent_id")
@click.option(
    "--queue", "queues", multiple=True, help=f"Queue to join (repeatable; default {DEFAULT_QUEUE})."
)
@click.option("--penalty", type=click.IntRange(0, 100), default=0, show_default=True)
@click.pass_context
def login(ctx: click.Context, agent_id: str, queues: tuple[str, ...], penalty: int) -> None:
    """Log AGENT_ID into its queue(s): QueueAdd, then qualify the phone so it rings at once."""
    aid = _agent_id(agent_id)
    s = settings_from(ctx)
    _report(_with_service(s, lambda svc: svc.login(aid, via="cli", queues=queues or None, penalty=penalty)))


@agents.command()
@click.argument("agent_id")
@click.pass_context
def logout(ctx: click.Context, agent_id: str) -> None:
    """Log AGENT_ID out of every queue (refused during peak mode)."""
    aid = _agent_id(agent_id)
    _report(_with_service(settings_from(ctx), lambda svc: svc.logout(aid, via="cli")))


@agents.command()
@click.argument("agent_id")
@click.option("--reason", required=True, help="Pause reason from policy breaks.pause_reasons (e.g. break).")
@click.pass_context
def pause(ctx: click.Context, agent_id: str, reason: str) -> None:
    """Pause AGENT_ID with a reason (R-BREAK limits; refused during peak mode)."""
    aid = _agent_id(agent_id)
    s = settings_from(ctx)
    reasons = load_policy(s.policy_file).breaks.pause_reasons
    if reason not in reasons:
        raise click.BadParameter(f"{reason!r} is not a pause reason; one of: {', '.join(reasons)}",
                                 param_hint="--reason")  # fmt: skip
    _report(_with_service(s, lambda svc: svc.pause(aid, reason, via="cli")))


@agents.command()
@click.argument("agent_id")
@click.pass_context
def unpause(ctx: click.Context, agent_id: str) -> None:
    """Take AGENT_ID off pause."""
    aid = _agent_id(agent_id)
    _report(_with_service(settings_from(ctx), lambda svc: svc.unpause(aid, via="cli")))


@agents.command()
@click.pass_context
def status(ctx: click.Context) -> None:
    """Who is logged in, in which queues, and who is paused until when (from the database)."""
    s = settings_from(ctx)

    async def go() -> None:
        from cti.agents import repo

        async with database_url(s) as url:
            conn = await asyncpg.connect(url)
            try:
                sessions = await repo.open_sessions(conn)
            finally:
                await conn.close()
        if not sessions:
            click.echo("no agent logged in")
        for x in sessions:
            since = x.login_at.astimezone(s.tz).strftime("%H:%M")
            line = f"{x.agent:<12} {','.join(x.queues):<16} since {since}"
            if x.paused:
                until = x.pause_until.astimezone(s.tz).strftime("%H:%M") if x.pause_until else "?"
                line += f"  paused ({x.pause_reason}) until {until}"
            click.echo(line)

    run(go())


# ---- provisioning -----------------------------------------------------------------------------


def _provision(ctx: click.Context, fn: Callable[[asyncpg.Connection], Awaitable[Any]]) -> Any:
    from cti.agents.provision import ProvisionError
    from cti.commands.common import with_conn

    try:
        return with_conn(settings_from(ctx), fn)
    except ProvisionError as e:
        click.echo(f"refused: {e}", err=True)
        raise SystemExit(1) from None


def _show_password(agent_id: str, password: str) -> None:
    from cti.agents.provision import SIP_REALM

    click.echo(f"{agent_id}: SIP user {agent_id}, password {password} (realm {SIP_REALM}; shown once)")


@agents.command()
@click.argument("agent_id")
@click.option("--name", required=True, help="Display name (Chinese is fine).")
@click.option("--group", default="default", show_default=True)
@click.option("--supervisor", default=None, help="The supervisor's agent id.")
@click.option("--did", default=None, help="Personal DID: dialing it asks for this agent.")
@click.pass_context
def add(
    ctx: click.Context, agent_id: str, name: str, group: str, supervisor: str | None, did: str | None
) -> None:
    """Provision AGENT_ID: agent record + PJSIP endpoint/auth/AOR rows. Prints the SIP password once."""
    from cti.agents.provision import ProvisionError, add_agent, validate
    from cti.clock import SystemClock

    try:
        rec = validate({"id": agent_id, "name": name, "group": group, "supervisor": supervisor, "did": did})
    except ProvisionError as e:
        raise click.BadParameter(str(e)) from None
    password = _provision(ctx, lambda conn: add_agent(conn, rec, SystemClock().now()))
    _show_password(rec.id, password)


@agents.command(name="import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option(
    "--passwords",
    "passwords_out",
    type=click.Path(dir_okay=False, writable=True),
    help="Write id,password of the added agents to this file (mode 600) instead of stdout.",
)
@click.pass_context
def import_(ctx: click.Context, csv_file: str, passwords_out: str | None) -> None:
    """Add the agents of CSV_FILE (UTF-8; header id,name[,group,supervisor,did]). Bad rows are listed by
    line number and reason and the good ones are added; exit 1 when any row was rejected."""
    import os

    from cti.agents.provision import ProvisionError, import_csv
    from cti.clock import SystemClock
    from cti.commands.common import with_conn

    try:
        with click.open_file(csv_file, encoding="utf-8-sig") as f:
            text = f.read()
    except UnicodeDecodeError:
        raise click.BadParameter("not UTF-8 text (save the CSV as UTF-8)", param_hint="CSV_FILE") from None
    try:
        result = with_conn(settings_from(ctx), lambda conn: import_csv(conn, text, SystemClock().now()))
    except ProvisionError as e:
        raise click.BadParameter(str(e), param_hint="CSV_FILE") from None
    lines = [f"{aid},{pw}" for aid, pw in result.added]
    if passwords_out:
        fd = os.open(passwords_out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write("id,password\n" + "".join(x + "\n" for x in lines))
    elif lines:
        click.echo("id,password")
        for x in lines:
            click.echo(x)
    for line, reason in result.errors:
        click.echo(f"line {line}: {reason}", err=True)
    click.echo(f"added {len(result.added)}, rejected {len(result.errors)}", err=True)
    if result.errors:
        raise SystemExit(1)


@agents.command(name="list")
@click.option("--all", "include_disabled", is_flag=True, help="Include disabled agents.")
@click.pass_context
def list_(ctx: click.Context, include_disabled: bool) -> None:
    """Provisioned agents: id, name, group, supervisor, DID (masked), SIP endpoint, phone on Asterisk."""
    from cti.agents.provision import list_agents
    from cti.masking import mask_number

    rows = _provision(ctx, lambda conn: list_agents(conn, include_disabled=include_disabled))
    if not rows:
        click.echo("no agents provisioned")
    for r in rows:
        state = "active" if r["active"] else "disabled"
        phone = "phone ok" if r["phone"] else "no phone"
        click.echo(
            f"{r['id']:<12} {r['name']:<12} {r['group_name']:<10} sup={r['supervisor'] or '-':<10} "
            f"did={mask_number(r['did']) if r['did'] else '-':<14} {r['interface']:<16} {state}, {phone}"
        )


@agents.command()
@click.argument("agent_id")
@click.pass_context
def disable(ctx: click.Context, agent_id: str) -> None:
    """Disable AGENT_ID: Asterisk stops accepting their phone at once (no reload)."""
    from cti.agents.provision import disable_agent
    from cti.clock import SystemClock

    aid = _agent_id(agent_id)
    _provision(ctx, lambda conn: disable_agent(conn, aid, SystemClock().now()))
    click.echo(f"{aid}: disabled")


@agents.command(name="reset-password")
@click.argument("agent_id")
@click.pass_context
def reset_password_(ctx: click.Context, agent_id: str) -> None:
    """Give AGENT_ID a new SIP password (printed once; the old one stops working).
    Re-enables a disabled agent."""
    from cti.agents.provision import reset_password
    from cti.clock import SystemClock

    aid = _agent_id(agent_id)
    password = _provision(ctx, lambda conn: reset_password(conn, aid, SystemClock().now()))
    _show_password(aid, password)

"""`cti agents`: log agents in and out, pause with a reason, unpause, and show who is logged in.

The same AgentService the phones (*11..*15) and the web panel use decides and records; this command
connects to AMI itself, so it works beside a running `cti serve`. Exit status: 0 done, 1 refused
(the reason is printed) or the PBX could not be reached, 2 bad input. More subcommands (add, import,
list) join this group: register them with `@agents.command()`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import click

from cti.agents.decide import Decision
from cti.agents.service import AgentService
from cti.ami.client import AMIClient, AMIError
from cti.callbacks.ami_adapter import ami_action
from cti.clock import SystemClock
from cti.commands.common import run, settings_from
from cti.config import Settings
from cti.db.connect import database_url
from cti.policy import load_policy
from cti.routing.inbound import DEFAULT_QUEUE


async def _in_peak(pool: asyncpg.Pool) -> bool:
    return bool(await pool.fetchval("SELECT in_peak FROM peak_state"))


def _with_service(settings: Settings, fn: Callable[[AgentService], Awaitable[Decision | None]]) -> Any:
    async def go() -> Any:
        from pathlib import Path

        from cti.store.events import EventStore

        policy = load_policy(settings.policy_file)
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
                svc = AgentService(pool, policy=policy, clock=SystemClock(), events=store,
                                   ami_action=ami_action(client), in_peak=lambda: _in_peak(pool),
                                   tz=settings.tz, default_queues=(settings.queue,))  # fmt: skip
                return await fn(svc)
            finally:
                await client.close()
                await store.close()
                await pool.close()

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
    """Agents: log in/out, pause/unpause, status (R-LOGIN)."""


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

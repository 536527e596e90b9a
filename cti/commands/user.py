"""`cti user`: web users (supervisors, managers, agents) and their roles."""

from __future__ import annotations

import os

import asyncpg
import click

from cti.commands.common import run, settings_from
from cti.db.connect import database_url
from cti.web.auth import ROLES, add_user


@click.group()
def user() -> None:
    """Manage web users: who may log in to the monitor, with which role."""


@user.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What the user may see and do.")
@click.option("--name", "display_name", default="", help="Display name (e.g. 王主管).")
@click.option(
    "--agent",
    "agent_id",
    default=None,
    help="The agents.id this login belongs to: an agent's seat, or the phone a supervisor's "
    "listen/whisper/barge rings.",
)
@click.option("--reveal", is_flag=True, help="May reveal full customer numbers (each reveal is audited).")
@click.option(
    "--password-env",
    default=None,
    help="Read the password from this environment variable instead of prompting.",
)
@click.pass_context
def add(
    ctx: click.Context,
    username: str,
    role: str,
    display_name: str,
    agent_id: str | None,
    reveal: bool,
    password_env: str | None,
) -> None:
    """Add a user, or replace the password and role of an existing one."""
    settings = settings_from(ctx)
    if password_env:
        password = os.environ.get(password_env, "")
        if not password:
            raise click.ClickException(f"environment variable {password_env} is empty or not set")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)

    async def go() -> None:
        async with database_url(settings) as url:
            conn = await asyncpg.connect(url)
            try:
                await add_user(conn, username, password, role, display_name=display_name, agent_id=agent_id,
                               can_reveal_numbers=reveal)  # fmt: skip
            finally:
                await conn.close()

    try:
        run(go())
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"user {username} ({role}) saved")

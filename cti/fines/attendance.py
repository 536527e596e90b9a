"""Who was logged in, and the roster (排班). `logins()` is the one place that reads login facts, so
switching it to the CTI's own agent-sessions table changes nothing else."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import date, datetime

import asyncpg

from cti.fines.rules import Login, RosterEntry


async def logins(conn: asyncpg.Connection, since: datetime, until: datetime) -> list[Login]:
    """Login intervals overlapping [since, until), merged across queues per agent by the caller's
    rules (any interval counts). Today: the facts' agent_sessions (QueueMemberAdded/Removed)."""
    rows = await conn.fetch(
        """SELECT agent, login_at, logout_at FROM agent_sessions
           WHERE login_at < $2 AND (logout_at IS NULL OR logout_at > $1) ORDER BY login_at, agent""",
        since,
        until,
    )
    return [Login(r["agent"], r["login_at"], r["logout_at"]) for r in rows]


async def roster_between(conn: asyncpg.Connection, first: date, last: date) -> list[RosterEntry]:
    rows = await conn.fetch(
        """SELECT day, shift, group_name, supervisor, agents FROM roster
           WHERE day BETWEEN $1 AND $2 ORDER BY day, shift, group_name""",
        first,
        last,
    )
    return [
        RosterEntry(r["day"], r["shift"], r["group_name"], r["supervisor"], tuple(r["agents"])) for r in rows
    ]


class RosterError(ValueError):
    pass


async def set_roster(conn: asyncpg.Connection, entries: Iterable[RosterEntry], by: str) -> int:
    """Insert or replace roster rows; every agent and supervisor must exist (a typo would silently
    fine nobody), and the shift must be one of the policy's."""
    from cti.policy import load_policy_from_db

    entries = list(entries)
    shifts = {s.name for s in (await load_policy_from_db(conn)).shifts}
    known = {r["id"] for r in await conn.fetch("SELECT id FROM agents")}
    for e in entries:
        if e.shift not in shifts:
            raise RosterError(f"{e.day}: shift {e.shift!r} is not one of {sorted(shifts)}")
        unknown = sorted({*e.agents, *([e.supervisor] if e.supervisor else [])} - known)
        if unknown:
            raise RosterError(f"{e.day} {e.shift}: unknown agent(s) {', '.join(unknown)}")
    async with conn.transaction():
        await conn.executemany(
            """INSERT INTO roster (day, shift, group_name, supervisor, agents, updated_by)
               VALUES ($1,$2,$3,$4,$5,$6)
               ON CONFLICT (day, shift, group_name) DO UPDATE SET supervisor = EXCLUDED.supervisor,
                 agents = EXCLUDED.agents, updated_by = EXCLUDED.updated_by, updated_at = now()""",
            [(e.day, e.shift, e.group, e.supervisor, list(e.agents), by) for e in entries],
        )
    return len(entries)


def parse_roster_csv(text: str) -> list[RosterEntry]:
    """CSV with header day,shift,group,supervisor,agents (agents separated by spaces or ;).
    A bad line is named with its number; nothing is imported then."""
    text = text.lstrip("\ufeff")  # Excel's BOM
    reader = csv.DictReader(io.StringIO(text))
    need = {"day", "shift", "agents"}
    if not reader.fieldnames or not need <= set(reader.fieldnames):
        raise RosterError(f"roster CSV needs the columns {sorted(need)} (got {reader.fieldnames})")
    out = []
    for n, row in enumerate(reader, start=2):
        try:
            day = date.fromisoformat((row["day"] or "").strip())
        except ValueError:
            raise RosterError(f"line {n}: day {row['day']!r} is not YYYY-MM-DD") from None
        agents = tuple(a for a in (row["agents"] or "").replace(";", " ").split() if a)
        if not agents:
            raise RosterError(f"line {n}: no agents")
        out.append(
            RosterEntry(
                day,
                (row["shift"] or "").strip(),
                (row.get("group") or "default").strip() or "default",
                (row.get("supervisor") or "").strip() or None,
                agents,
            )
        )
    return out

"""The `agent_logins` table (db/040): open sessions are who the CTI has logged in."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cti.agents.decide import AgentInfo, Session
from cti.db.rows import from_row

_SESSION = """SELECT s.*, a.group_name FROM agent_logins s JOIN agents a ON a.id = s.agent
              WHERE s.logout_at IS NULL"""


def _session(r: Any) -> Session:
    return from_row(Session, r, group=r["group_name"], queues=tuple(r["queues"]))


async def get_agent(conn: Any, agent_id: str) -> AgentInfo | None:
    r = await conn.fetchrow(
        "SELECT id, name, interface, group_name, active FROM agents WHERE id = $1", agent_id
    )
    if r is None:
        return None
    return AgentInfo(r["id"], r["name"], r["interface"], r["group_name"], r["active"])


async def agents_by_id(conn: Any, ids: list[str]) -> dict[str, AgentInfo]:
    rows = await conn.fetch(
        "SELECT id, name, interface, group_name, active FROM agents WHERE id = ANY($1::text[])", ids
    )
    return {
        r["id"]: AgentInfo(r["id"], r["name"], r["interface"], r["group_name"], r["active"]) for r in rows
    }


async def open_session(conn: Any, agent_id: str) -> Session | None:
    r = await conn.fetchrow(_SESSION + " AND s.agent = $1", agent_id)
    return _session(r) if r is not None else None


async def open_sessions(conn: Any, group: str | None = None) -> list[Session]:
    if group is None:
        rows = await conn.fetch(_SESSION + " ORDER BY s.agent")
    else:
        rows = await conn.fetch(_SESSION + " AND a.group_name = $1 ORDER BY s.agent", group)
    return [_session(r) for r in rows]


async def lock_group(conn: Any, group: str) -> None:
    """Serialise decisions within a group (R-BREAK counts the group) until the transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('cti-agent-group:' || $1))", group)


async def insert_session(
    conn: Any, agent_id: str, queues: tuple[str, ...], penalty: int, at: datetime, via: str
) -> int:
    return int(
        await conn.fetchval(
            """INSERT INTO agent_logins (agent, queues, penalty, login_at, login_via)
               VALUES ($1, $2, $3, $4, $5) RETURNING id""",
            agent_id,
            list(queues),
            penalty,
            at,
            via,
        )
    )


async def close_session(conn: Any, session_id: int, at: datetime, via: str) -> None:
    await conn.execute(
        """UPDATE agent_logins SET logout_at = $2, logout_via = $3, paused = false, pause_reason = NULL,
                  paused_at = NULL, pause_until = NULL WHERE id = $1""",
        session_id,
        at,
        via,
    )


async def set_pause(conn: Any, session_id: int, reason: str, at: datetime, until: datetime | None) -> None:
    await conn.execute(
        """UPDATE agent_logins SET paused = true, pause_reason = $2, paused_at = $3, pause_until = $4
           WHERE id = $1""",
        session_id,
        reason,
        at,
        until,
    )


async def clear_pause(conn: Any, session_id: int) -> None:
    await conn.execute(
        """UPDATE agent_logins SET paused = false, pause_reason = NULL, paused_at = NULL, pause_until = NULL
           WHERE id = $1""",
        session_id,
    )


async def mark_restored(conn: Any, session_ids: list[int], at: datetime) -> None:
    await conn.execute(
        "UPDATE agent_logins SET restored_at = $2 WHERE id = ANY($1::bigint[])", session_ids, at
    )

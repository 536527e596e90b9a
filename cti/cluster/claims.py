"""The one agent claim shared by everything that rings an agent from the CTI (callback dispatcher,
outbound dialer, desk click-to-call). Decision 0110.

A claim is a row in `agent_claims` (primary key: the agent), inserted with ON CONFLICT DO NOTHING in
the same transaction as the attempt it is for, so two processes can never both hold one agent: the
loser's INSERT returns nothing and its transaction writes no attempt. It is deleted when the attempt
resolves. A claim belongs to its process's lease (`process_leases`): a process that died stops
renewing it, and after LEASE_TTL_S the next process that wants the agent deletes the dead claim.

Every function takes a connection inside the caller's transaction: the claim commits or rolls back
with the attempt row."""

from __future__ import annotations

from typing import Any, Literal

import asyncpg

ClaimKind = Literal["callback", "outbound", "desk"]

# A lease lives this long after its last renewal (CtiServer renews every LEASE_TTL_S / 3). Longer than
# a pause of the event loop; short enough that a dead process's agents are free again within it.
LEASE_TTL_S = 15.0

RENEW_SQL = """INSERT INTO process_leases (process, expires_at) VALUES ($1, now() + make_interval(secs => $2))
            ON CONFLICT (process) DO UPDATE SET expires_at = EXCLUDED.expires_at"""


def lease_alive(process_column: str) -> str:
    """SQL: the process named in `process_column` holds a lease that has not expired."""
    return (
        f"EXISTS (SELECT 1 FROM process_leases l WHERE l.process = {process_column} AND l.expires_at > now())"
    )


_LIVE = lease_alive("c.process")

DROP_DEAD_SQL = f"DELETE FROM agent_claims c WHERE c.agent = $1 AND NOT {_LIVE}"

_CLAIM = """INSERT INTO agent_claims (agent, kind, ref, process) VALUES ($1, $2, $3, $4)
            ON CONFLICT DO NOTHING RETURNING agent"""


class AgentTaken(Exception):
    """Another live attempt holds the agent (raised inside the caller's transaction: it rolls back)."""


async def renew_lease(conn: Any, process: str, ttl_s: float = LEASE_TTL_S) -> None:
    await conn.execute(RENEW_SQL, process, ttl_s)


async def end_lease(conn: Any, process: str) -> None:
    """A clean stop: the process's leftover claims are dead at once (its attempts are resolved by
    whoever recovers them)."""
    await conn.execute("DELETE FROM process_leases WHERE process = $1", process)


async def claim_agent(conn: Any, agent: str, *, kind: ClaimKind, ref: str, process: str) -> bool:
    """Claim `agent` for the attempt `ref`. Call inside the transaction that writes the attempt.
    False: a live claim of another attempt holds the agent (nothing was written)."""
    await conn.execute(RENEW_SQL, process, LEASE_TTL_S)  # the claim is only as alive as its lease
    await conn.execute(DROP_DEAD_SQL, agent)
    return await conn.fetchval(_CLAIM, agent, kind, ref, process) is not None


async def release(conn: Any, ref: str) -> None:
    """The attempt `ref` resolved: its agent is free for the next one."""
    await conn.execute("DELETE FROM agent_claims WHERE ref = $1", ref)


async def claimed_agents(conn: Any) -> set[str]:
    """Agents held by a live claim (dead processes' claims excluded)."""
    rows = await conn.fetch(f"SELECT agent FROM agent_claims c WHERE {_LIVE}")
    return {r["agent"] for r in rows}


async def release_pool(pool: asyncpg.Pool, ref: str) -> None:
    async with pool.acquire() as conn:
        await release(conn, ref)

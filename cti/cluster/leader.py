"""One leader per site, chosen through PostgreSQL (decision 0110): a session advisory lock held on a
connection of its own, and a fencing token that grows at every election.

Why an advisory lock and not only a lease row: when the leader dies (SIGKILL, a crash), the kernel
closes its socket, PostgreSQL ends the session and the lock is free at once; the next process's poll
(every `poll_s`) takes it, so failover is ~poll_s, not a TTL. A leader cut off from the database
without dying (a network partition) is covered twice: it pings its lock connection every `poll_s`
and steps down when a ping fails or takes longer than `ping_timeout_s`; and the server drops the
session after TCP keepalives fail (`KEEPALIVE`). What a deposed leader still had in flight on its
other connections is stopped by the token: leader-only writes that must not land twice run
`fence(conn, token)` in their own transaction; it takes the term row FOR SHARE, so the next election
(which updates that row) waits for such a write to commit, and a write after it fails.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import structlog

from cti.db.connect import close_bounded

log = structlog.get_logger(__name__)

LEADER_LOCK_KEY = 0x6374692D6C656164  # "cti-lead": fixed forever
TERM = "site"

# The server ends a session whose peer went silent after ~idle + interval * count seconds.
KEEPALIVE = {"tcp_keepalives_idle": "2", "tcp_keepalives_interval": "1", "tcp_keepalives_count": "2"}

_NEW_TERM = """INSERT INTO leader_terms (name, token, holder) VALUES ($1, 1, $2)
               ON CONFLICT (name) DO UPDATE SET token = leader_terms.token + 1, holder = $2, since = now()
               RETURNING token"""


class Deposed(Exception):
    """This process is no longer the leader: its leader-only write must not land."""


async def fence(conn: Any, token: int, name: str = TERM) -> None:
    """Call inside the transaction of a leader-only write: raises Deposed if another process has been
    elected since `token` was issued; holds the term (FOR SHARE) until the write commits."""
    now = await conn.fetchval("SELECT token FROM leader_terms WHERE name = $1 FOR SHARE", name)
    if now != token:
        raise Deposed(f"leader token {token} is stale (now {now})")


OnElected = Callable[[int], Awaitable[None]]
OnLost = Callable[[], Awaitable[None]]


class Leadership:
    """Campaigns for leadership forever (run() as a task). `on_elected(token)` starts the run-once
    parts; `on_lost()` stops them (also when the task is cancelled at shutdown)."""

    def __init__(
        self,
        dsn: str,
        *,
        process: str,
        on_elected: OnElected,
        on_lost: OnLost,
        poll_s: float = 0.5,
        ping_timeout_s: float = 1.5,
        key: int = LEADER_LOCK_KEY,
        name: str = TERM,
    ) -> None:
        self.dsn, self.process, self.key, self.name = dsn, process, key, name
        self._on_elected, self._on_lost = on_elected, on_lost
        self.poll_s, self.ping_timeout_s = poll_s, ping_timeout_s
        self.token: int | None = None
        self.elected = asyncio.Event()

    @property
    def is_leader(self) -> bool:
        return self.token is not None

    async def run(self) -> None:
        while True:
            conn: asyncpg.Connection | None = None
            try:
                # bounded: a server that accepts and never answers (a blackhole) held this forever
                # (issue 16's drill), so no process could become leader again
                conn = await asyncpg.connect(
                    self.dsn, server_settings=KEEPALIVE, timeout=self.ping_timeout_s * 4
                )
                await self._wait_for_lock(conn)
                token = int(await conn.fetchval(_NEW_TERM, self.name, self.process))
                self.token = token
                self.elected.set()
                log.warning("leader_elected", process=self.process, token=token)
                await self._on_elected(token)
                while True:  # hold: a failed or slow ping means the lock may be gone
                    await asyncio.sleep(self.poll_s)
                    async with asyncio.timeout(self.ping_timeout_s):
                        await conn.fetchval("SELECT 1")
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as e:
                log.warning("leader_connection_lost", process=self.process, error=type(e).__name__)
            finally:
                await self._step_down()
                if conn is not None:
                    await close_bounded(conn, 1.0)  # releases the lock if still held
            await asyncio.sleep(self.poll_s)

    async def _wait_for_lock(self, conn: asyncpg.Connection) -> None:
        """Polled, not pg_advisory_lock(): a blocked backend would not notice our cancellation, and
        polling also proves this connection is alive while we wait."""
        for _ in iter(int, 1):
            async with asyncio.timeout(self.ping_timeout_s):
                if await conn.fetchval("SELECT pg_try_advisory_lock($1)", self.key):
                    return
            await asyncio.sleep(self.poll_s)

    async def _step_down(self) -> None:
        if self.token is None:
            return
        log.warning("leader_stepped_down", process=self.process, token=self.token)
        self.token = None
        self.elected.clear()
        await self._on_lost()

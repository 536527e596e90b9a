"""One place that turns Settings into a database URL: DATABASE_URL, or the embedded server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from cti.config import Settings
from cti.db.embedded import EmbeddedPostgres


@asynccontextmanager
async def database_url(settings: Settings) -> AsyncIterator[str]:
    """Yield a URL; start (and afterwards cleanly stop) the embedded server when none is set."""
    if settings.database_url:
        yield settings.database_url
        return
    emb = EmbeddedPostgres(settings.data_dir)
    url = emb.start()
    try:
        yield url
    finally:
        emb.stop()


# A pooled connection whose peer accepts and never answers (a blackholed route, a hung server) held
# every query on it forever, even after the network came back (issue 16's drill: dispatch never
# resumed). With these, such a query fails in seconds and the connection is replaced.
CONNECT_TIMEOUT_S = 5.0
# The process's pool: its queries take milliseconds; a query stuck this long also holds an AMI
# subscriber, whose queue then slows the AMI reader (backpressure), so the bound is short.
COMMAND_TIMEOUT_S = 10.0


# Closing waits for the server's goodbye and for any query cancel in flight (asyncpg sends that over a
# new connection, bounded only by command_timeout, which direct connections leave unset): on a
# blackholed connection, forever. A part stopped on deposition then never stopped.
CLOSE_TIMEOUT_S = 2.0


async def close_bounded(conn: asyncpg.Connection, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
    """Close gracefully if the server answers within `timeout_s`, else drop the socket."""
    try:
        await conn.close(timeout=timeout_s)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        conn.terminate()


def bounded(kw: dict[str, object], command_timeout_s: float = COMMAND_TIMEOUT_S) -> dict[str, object]:
    """Pool arguments with connect and command deadlines (callers may pass their own)."""
    kw.setdefault("timeout", CONNECT_TIMEOUT_S)
    kw.setdefault("command_timeout", command_timeout_s)
    return kw


async def create_pool(url: str, **kw: object) -> asyncpg.Pool:
    bounded(kw)
    kw.setdefault("min_size", 1)
    kw.setdefault("max_size", 10)
    pool = await asyncpg.create_pool(url, **kw)  # type: ignore[arg-type]
    assert pool is not None
    return pool

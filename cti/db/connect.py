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


async def create_pool(url: str, **kw: object) -> asyncpg.Pool:
    kw.setdefault("min_size", 1)
    kw.setdefault("max_size", 10)
    pool = await asyncpg.create_pool(url, **kw)  # type: ignore[arg-type]
    assert pool is not None
    return pool

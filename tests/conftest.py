from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from cti.db.scratch import ScratchServer, with_database


@pytest.fixture(scope="session")
def pg_server() -> Iterator[ScratchServer]:
    """A real PostgreSQL (local, or embedded when none answers) with a migrated template."""
    server = ScratchServer()
    asyncio.run(server.start())
    yield server
    asyncio.run(server.stop())


@pytest.fixture
async def db_url(pg_server: ScratchServer) -> AsyncIterator[str]:
    """URL of a fresh, migrated database for this test only."""
    name = await pg_server.new_database()
    yield with_database(pg_server.url, name)
    await pg_server.drop_database(name)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(db_url)
    yield conn
    await conn.close()


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A small pool on this test's database (the AGI tests seed theirs: tests/agi/conftest.py)."""
    p = await asyncpg.create_pool(db_url, min_size=1, max_size=4)
    yield p
    await p.close()

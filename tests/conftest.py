from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from tests.pg import TestServer, with_database


@pytest.fixture(scope="session")
def pg_server() -> Iterator[TestServer]:
    server = TestServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def db_url(pg_server: TestServer) -> AsyncIterator[str]:
    """URL of a fresh, migrated database for this test only."""
    name = await pg_server.new_database()
    yield with_database(pg_server.url, name)
    await pg_server.drop_database(name)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(db_url)
    yield conn
    await conn.close()

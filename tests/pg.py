"""Test databases: a real PostgreSQL, one fresh database per test.

Server: $CTI_TEST_DATABASE_URL, else $DATABASE_URL, else postgres@127.0.0.1:5432 if it answers, else
an embedded PostgreSQL started in a temporary folder. Each test gets a database cloned from a
template that was migrated once per session.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from cti.db.embedded import EmbeddedPostgres
from cti.db.migrate import migrate

TEMPLATE = f"cti_template_{os.getpid()}"


def with_database(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


async def _answers(url: str) -> bool:
    try:
        conn = await asyncpg.connect(url, timeout=3)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


class TestServer:
    def __init__(self) -> None:
        self.url = ""
        self._embedded: EmbeddedPostgres | None = None

    def start(self) -> None:
        url = os.environ.get("CTI_TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
        if not url:
            local = "postgresql://postgres@127.0.0.1:5432/postgres"
            if asyncio.run(_answers(local)):
                url = local
        if not url:
            self._embedded = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="cti-test-pg-")))
            url = self._embedded.start()
        self.url = url
        asyncio.run(self._make_template())

    async def _make_template(self) -> None:
        admin = await asyncpg.connect(self.url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')
            await admin.execute(f'CREATE DATABASE "{TEMPLATE}"')
        finally:
            await admin.close()
        conn = await asyncpg.connect(with_database(self.url, TEMPLATE))
        try:
            await migrate(conn)
        finally:
            await conn.close()

    async def new_database(self) -> str:
        name = f"cti_t_{uuid.uuid4().hex[:12]}"
        admin = await asyncpg.connect(self.url)
        try:
            await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
        finally:
            await admin.close()
        return name

    async def drop_database(self, name: str) -> None:
        admin = await asyncpg.connect(self.url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    def stop(self) -> None:
        async def drop_template() -> None:
            admin = await asyncpg.connect(self.url)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')
            finally:
                await admin.close()

        asyncio.run(drop_template())
        if self._embedded:
            self._embedded.stop()

"""Scratch databases on a real PostgreSQL, for tests and benchmarks.

Server: $CTI_TEST_DATABASE_URL, else $DATABASE_URL, else postgres@127.0.0.1:5432 if it answers, else
an embedded PostgreSQL started in a temporary folder. Databases are cloned from a template that is
migrated once, so each user gets a fresh, migrated database in milliseconds.
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

LOCAL = "postgresql://postgres@127.0.0.1:5432/postgres"


def with_database(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


async def answers(url: str) -> bool:
    try:
        conn = await asyncpg.connect(url, timeout=3)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


class ScratchServer:
    def __init__(self, prefix: str = "cti_t") -> None:
        self.url = ""
        self.prefix = prefix
        self.template = f"{prefix}_template_{os.getpid()}"
        self._embedded: EmbeddedPostgres | None = None

    async def start(self) -> None:
        url = os.environ.get("CTI_TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
        if not url and await answers(LOCAL):
            url = LOCAL
        if not url:
            self._embedded = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="cti-scratch-pg-")))
            url = await asyncio.to_thread(self._embedded.start)
        self.url = url
        await self._admin(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)')
        await self._admin(f'CREATE DATABASE "{self.template}"')
        conn = await asyncpg.connect(with_database(self.url, self.template))
        try:
            await migrate(conn)
        finally:
            await conn.close()

    async def _admin(self, sql: str) -> None:
        admin = await asyncpg.connect(self.url)
        try:
            await admin.execute(sql)
        finally:
            await admin.close()

    async def new_database(self) -> str:
        """Name of a fresh migrated database."""
        name = f"{self.prefix}_{uuid.uuid4().hex[:12]}"
        await self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return name

    async def new_database_url(self) -> str:
        return with_database(self.url, await self.new_database())

    async def drop_database(self, name: str) -> None:
        await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    async def stop(self) -> None:
        await self._admin(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)')
        if self._embedded:
            await asyncio.to_thread(self._embedded.stop)

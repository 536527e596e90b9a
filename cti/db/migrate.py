"""Numbered SQL migrations from db/: each applied once, in order, in its own transaction, under an
advisory lock so two processes never migrate at once."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import asyncpg

# pg_advisory_lock key: the first 8 bytes of "cti-migrate" as a signed bigint, fixed forever
MIGRATE_LOCK_KEY = 0x6374692D6D696772
_NAME = re.compile(r"^(\d{3,})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations_dir() -> Path:
    """db/ beside the package in a checkout; the packaged copy when installed as a wheel."""
    here = Path(__file__).resolve().parents[2] / "db"
    if here.is_dir():
        return here
    return Path(str(resources.files("cti").joinpath("_db")))


def load_migrations(directory: Path | None = None) -> list[Migration]:
    directory = directory or migrations_dir()
    found: list[Migration] = []
    seen: dict[int, str] = {}
    for path in sorted(directory.glob("*.sql")):
        m = _NAME.match(path.name)
        if not m:
            raise ValueError(f"migration file {path.name} is not named NNN_snake_case.sql")
        version = int(m.group(1))
        if version in seen:
            raise ValueError(f"migrations {seen[version]} and {path.name} share version {version}")
        seen[version] = path.name
        found.append(Migration(version, path.name, path.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""


async def status(conn: asyncpg.Connection, directory: Path | None = None) -> list[tuple[Migration, bool]]:
    await conn.execute(_BOOKKEEPING)
    applied = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
    return [(m, m.version in applied) for m in load_migrations(directory)]


async def migrate(conn: asyncpg.Connection, directory: Path | None = None) -> list[Migration]:
    """Apply pending migrations; return those applied now. Safe to call concurrently."""
    migrations = load_migrations(directory)
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATE_LOCK_KEY)
    try:
        await conn.execute(_BOOKKEEPING)
        applied = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        done: list[Migration] = []
        for m in migrations:
            if m.version in applied:
                continue
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name
                )
            done.append(m)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATE_LOCK_KEY)

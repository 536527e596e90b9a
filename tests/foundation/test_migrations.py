from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from cti.db.migrate import load_migrations, migrate, status


async def schema_fingerprint(conn: asyncpg.Connection) -> list[tuple[str, str]]:
    rows = await conn.fetch(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = 'public' ORDER BY 1, 2"
    )
    return [(r["table_name"], r["column_name"]) for r in rows]


async def test_migrating_twice_changes_nothing(db):
    before = await schema_fingerprint(db)
    applied_before = await db.fetch("SELECT version, applied_at FROM schema_migrations ORDER BY version")
    assert await migrate(db) == []
    assert await schema_fingerprint(db) == before
    assert (
        await db.fetch("SELECT version, applied_at FROM schema_migrations ORDER BY version") == applied_before
    )
    assert [v for v, ok in [(m.version, ok) for m, ok in await status(db)] if not ok] == []


async def test_fresh_database_applies_all_in_order(pg_server, tmp_path):
    name = await pg_server.new_database()
    from tests.pg import with_database

    conn = await asyncpg.connect(with_database(pg_server.url, name))
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        pending = [m.name for m, ok in await status(conn) if not ok]
        assert pending == [m.name for m in load_migrations()]
        done = await migrate(conn)
        assert [m.name for m in done] == pending
        versions = [
            r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY 1")
        ]
        assert versions == sorted(versions) and len(versions) == len(pending)
    finally:
        await conn.close()
        await pg_server.drop_database(name)


async def test_two_processes_migrating_at_once_apply_each_file_once(pg_server, tmp_path):
    from tests.pg import with_database

    name = await pg_server.new_database()
    url = with_database(pg_server.url, name)
    setup = await asyncpg.connect(url)
    await setup.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    await setup.close()
    conns = [await asyncpg.connect(url) for _ in range(3)]
    try:
        results = await asyncio.gather(*(migrate(c) for c in conns))
        assert sum(len(r) for r in results) == len(load_migrations())
        n = await conns[0].fetchval("SELECT count(*) FROM schema_migrations")
        assert n == len(load_migrations())
    finally:
        for c in conns:
            await c.close()
        await pg_server.drop_database(name)


async def test_a_failing_migration_rolls_back_and_is_not_recorded(db, tmp_path: Path):
    (tmp_path / "001_ok.sql").write_text("CREATE TABLE t_ok (x int);")
    (tmp_path / "002_bad.sql").write_text("CREATE TABLE t_bad (x int); SELECT no_such_function();")
    await db.execute("DROP TABLE schema_migrations")
    with pytest.raises(asyncpg.UndefinedFunctionError):
        await migrate(db, tmp_path)
    assert await db.fetchval("SELECT to_regclass('t_ok') IS NOT NULL")
    assert await db.fetchval("SELECT to_regclass('t_bad') IS NULL")
    assert [r["name"] for r in await db.fetch("SELECT name FROM schema_migrations")] == ["001_ok.sql"]


def test_badly_named_or_duplicate_files_are_rejected(tmp_path: Path):
    (tmp_path / "1-x.sql").write_text("")
    with pytest.raises(ValueError, match="NNN_snake_case"):
        load_migrations(tmp_path)
    (tmp_path / "1-x.sql").unlink()
    (tmp_path / "003_a.sql").write_text("")
    (tmp_path / "003_b.sql").write_text("")
    with pytest.raises(ValueError, match="share version 3"):
        load_migrations(tmp_path)

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from cti.db.scratch import ScratchServer, with_database

# Markers, applied by what a test uses (pyproject registers them): `pytest -m pure` is the fast run.
_PG_FIXTURES = frozenset({"pg_server", "db_url", "db", "pool"})
_SIM_MODULES = ("cti.sim", "tests.sim")


def _uses_simulator(module: object) -> bool:
    """The test module imports the simulator (or its test helpers) at top level."""
    for value in vars(module).values():
        name = getattr(value, "__module__", None) or getattr(value, "__name__", "")
        if isinstance(name, str) and name.startswith(_SIM_MODULES):
            return True
    return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    sim_cache: dict[object, bool] = {}
    for item in items:
        path = item.path.as_posix()
        kinds = set()
        if "/tests/e2e/" in path:
            kinds.add("end_to_end")
        module = getattr(item, "module", None)
        if "/tests/sim/" in path or (
            module is not None and sim_cache.setdefault(module, _uses_simulator(module))
        ):
            kinds.add("simulator")
        if _PG_FIXTURES & set(getattr(item, "fixturenames", ())):
            kinds.add("postgres")
        for kind in kinds or {"pure"}:
            item.add_marker(getattr(pytest.mark, kind))


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

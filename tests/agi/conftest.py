from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
import uvloop

from cti.agi.context import AgiContext
from cti.agi.registry import Registry
from cti.agi.server import FastAgiServer
from cti.clock import ManualClock
from cti.config import Settings
from cti.store.sink import MemoryEvents

# 10:00 in Shanghai: inside service hours (06:00-22:00)
DAY = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
# 23:30 in Shanghai
NIGHT = datetime(2026, 11, 23, 15, 30, tzinfo=UTC)


# The server and its connection run on uvloop in production (cti.runloop) and on asyncio's loop
# elsewhere in the suite (the simulator, e2e): their own tests run on both.
_BOTH_LOOPS = ("tests.agi.test_server", "tests.agi.test_connection")


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> Mapping[str, Any]:
    if getattr(item, "module", None) is not None and item.module.__name__ in _BOTH_LOOPS:  # type: ignore[attr-defined]
        return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
    return {"asyncio": asyncio.new_event_loop}


def make_ctx(**kw: object) -> AgiContext:
    settings = kw.pop("settings", None) or Settings(agi={"port": 0, "session_timeout_s": 2.0})
    kw.setdefault("clock", ManualClock(DAY))
    kw.setdefault("events", MemoryEvents())
    return AgiContext(settings=settings, **kw)  # type: ignore[arg-type]


@pytest.fixture
async def start_server() -> AsyncIterator[Callable[..., object]]:
    servers: list[FastAgiServer] = []

    async def start(ctx: AgiContext, registry: Registry | None = None, **kw: object) -> FastAgiServer:
        server = FastAgiServer(ctx, registry, host="127.0.0.1", port=0, **kw)  # type: ignore[arg-type]
        await server.start()
        servers.append(server)
        return server

    yield start
    for s in servers:
        await s.close()
        await s.ctx.aclose()


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(db_url, min_size=1, max_size=2)
    await p.execute(
        """
        INSERT INTO agents (id, name, interface, did) VALUES
          ('agent1', 'Agent One', 'PJSIP/agent1', NULL),
          ('agent2', 'Agent Two', 'PJSIP/agent2', '4008001002'),
          ('agent3', 'Agent Three', 'PJSIP/agent3', NULL);
        INSERT INTO customers (number, name) VALUES ('13812345678', '张三');
        """
    )
    yield p
    await p.close()

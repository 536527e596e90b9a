"""The periodic updater derives the facts of its window from the events log, idempotently."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from cti.ami.codec import Decoder, Message
from cti.ami.events import KeyMaker, event_ts, to_event
from cti.clock import ManualClock
from cti.facts.updater import FactsUpdater
from cti.policy import load_policy
from cti.store.events import EventStore
from tests.ami.wire import CAPTURES


async def test_updater_window_and_idempotence(db_url: str, db: asyncpg.Connection, tmp_path: Path) -> None:
    store = EventStore(db_url, tmp_path / "spool")
    await store.start()
    keys = KeyMaker()
    for name in ("01", "03"):
        raw = next(CAPTURES.glob(f"{name}*/ami.raw")).read_bytes()
        for m in Decoder().feed(raw)[1:]:
            if isinstance(m, Message) and m.is_event and "Timestamp" in m:
                ts = event_ts(m)
                assert ts is not None
                await store.append(to_event(m, ts, keys.key(m.name, m, ts)))
    await store.close()
    # 01 ran at 10:45, 03 at 10:46:36: a 60 s window at 10:47:30 only covers 03's two callers
    clock = ManualClock(datetime(2026, 11, 23, 10, 47, 30, tzinfo=UTC))
    up = FactsUpdater(db_url, load_policy().ring, clock=clock, window_s=60)
    assert (await up.run_once())["calls"] == 2
    assert await db.fetchval("SELECT count(*) FROM call_facts WHERE abandoned") == 2
    before = [tuple(r) for r in await db.fetch("SELECT * FROM call_facts ORDER BY linkedid")]
    up.window_s = 3600  # widen: 01 joins, 03 is re-derived identically
    assert (await up.run_once())["calls"] == 3
    after = [tuple(r) for r in await db.fetch("SELECT * FROM call_facts WHERE abandoned ORDER BY linkedid")]
    assert after == before

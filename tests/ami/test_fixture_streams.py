"""All 51 recorded scenarios served over a local socket in small chunks (frames, lines and UTF-8
characters split): every event arrives intact and in order, is stored once (a replay adds no rows),
and live state ends with no channel, call or bridge left over."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from cti.ami.client import AMIClient
from cti.ami.codec import Message
from cti.ami.listener import AMIListener
from cti.clock import ManualClock
from cti.state.live import LiveState
from cti.store.events import EventStore
from tests.ami.test_codec import _oracle as panoramisk_parse
from tests.ami.test_codec import _without_empty_last_line as without_empty_last_line
from tests.ami.wire import StreamServer, fixture_files, frame_bytes, load_fixture

BASE = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)


async def play(
    payload: bytes, n_events: int, store: EventStore, clock: ManualClock
) -> tuple[list, LiveState]:
    got: list[Message] = []
    live = LiveState()
    async with StreamServer(payload) as srv:
        client = AMIClient("127.0.0.1", srv.port, "cti", "x", ping_interval=0, action_timeout=10)
        client.subscribe(got.append)
        listener = AMIListener(client, live, store, clock=clock)
        await listener.start()
        try:
            await asyncio.wait_for(srv.done.wait(), 20)
            for _ in range(2000):
                if len(got) >= n_events:
                    break
                await asyncio.sleep(0.005)
        finally:
            await listener.close()
    return got, live


async def test_all_fixtures_streamed_stored_once_and_state_clean(db_url: str, tmp_path: Path) -> None:
    store = EventStore(db_url, tmp_path / "spool")
    await store.start()
    conn = await asyncpg.connect(db_url)
    try:
        files = fixture_files()
        assert len(files) == 51
        total = 0
        for i, path in enumerate(files):
            events = load_fixture(path)
            payload = b"".join(frame_bytes(e) for e in events)
            start = BASE + timedelta(minutes=i)
            rows_after: list[int] = []
            for _run in range(2):  # the second run is a replay of the same stream
                got, live = await play(payload, len(events), store, ManualClock(start))
                name = path.relative_to(path.parents[1])
                assert [dict(m) for m in got] == events, name
                for e, m in zip(events, got, strict=True):  # and as panoramisk parses the same frame
                    oracle = panoramisk_parse(frame_bytes(e).decode())
                    assert oracle == dict(m) or oracle == without_empty_last_line(dict(m)), name
                assert live.summary()["channels"] == 0, (name, live.summary())
                assert live.summary()["calls"] == 0 and live.summary()["bridges"] == 0, name
                await store.flush()
                rows_after.append(
                    await conn.fetchval(
                        "SELECT count(*) FROM events WHERE source='ami' AND type<>'resync' AND ts=$1", start
                    )
                )
            assert rows_after[0] == len(events), (name, rows_after)
            assert rows_after[1] == rows_after[0], (name, rows_after)
            stored = await conn.fetch(
                "SELECT type, payload FROM events"
                " WHERE source='ami' AND type<>'resync' AND ts=$1 ORDER BY seq",
                start,
            )
            assert [json.loads(r["payload"]) for r in stored] == events, name  # payload = every header
            assert [r["type"] for r in stored] == [e["Event"] for e in events], name
            total += len(events)
        assert total == 4491
        # payload is every header, and the indexed columns are filled
        row = await conn.fetchrow(
            "SELECT uniqueid, linkedid, payload FROM events WHERE type='Newchannel' ORDER BY seq LIMIT 1"
        )
        assert row["uniqueid"] and row["linkedid"] and '"CallerIDNum"' in row["payload"]
        # one resync per connection; the replay's resync has the same time and number: stored once
        assert await conn.fetchval("SELECT count(*) FROM events WHERE type='resync'") == 51
    finally:
        await conn.close()
        await store.close()

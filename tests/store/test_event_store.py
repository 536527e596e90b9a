"""The event log: batched, idempotent, ordered, bounded, and lossless through database outages."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from cti.store.events import Event, EventStore
from tests.netcut import NetCut

T0 = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


def ami_event(i: int, ts: datetime = T0) -> Event:
    uid = f"1763900000.{i // 4}"
    return Event(
        ts=ts + timedelta(microseconds=i),
        source="ami",
        type=("Newchannel", "Newstate", "DialBegin", "Hangup")[i % 4],
        payload={"Channel": f"PJSIP/trunk-{i // 4:08x}", "Uniqueid": uid, "CallerIDName": "张三", "n": i},
        uniqueid=uid,
        linkedid=uid,
    )


async def count(conn: asyncpg.Connection) -> int:
    return await conn.fetchval("SELECT count(*) FROM events")


async def test_events_arrive_in_order_with_their_columns(db, db_url, tmp_path):
    store = EventStore(db_url, tmp_path / "spool", batch_max=100)
    await store.start()
    for i in range(1000):
        await store.append(ami_event(i))
    await store.close()
    rows = await db.fetch("SELECT type, uniqueid, payload FROM events ORDER BY seq")
    assert [json.loads(r["payload"])["n"] for r in rows] == list(range(1000))
    assert rows[0]["type"] == "Newchannel" and rows[0]["uniqueid"] == "1763900000.0"
    assert json.loads(rows[5]["payload"])["CallerIDName"] == "张三"


async def test_replaying_the_same_input_stores_it_once(db, db_url, tmp_path):
    for _ in range(2):
        store = EventStore(db_url, tmp_path / "spool")
        await store.start()
        for i in range(300):
            await store.append(ami_event(i))
        await store.close()
    assert await count(db) == 300


async def test_explicit_natural_key_wins_over_payload_differences(db, db_url, tmp_path):
    store = EventStore(db_url, tmp_path / "spool")
    await store.start()
    await store.append(Event(T0, "cti", "peak_mode", {"on": True}, key="peak:1"))
    await store.append(Event(T0, "cti", "peak_mode", {"on": True, "again": 1}, key="peak:1"))
    await store.close()
    assert await count(db) == 1


async def test_partitions_are_made_for_any_day_and_ahead(db, db_url, tmp_path):
    store = EventStore(db_url, tmp_path / "spool")
    await store.start()
    await store.append(ami_event(1, datetime(2020, 2, 29, 23, 59, 59, tzinfo=UTC)))
    await store.flush()
    parts = {r["relname"] for r in await db.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'events'::regclass")}  # fmt: skip
    today = datetime.now(UTC).date()
    assert "events_p20200229" in parts
    assert f"events_p{today + timedelta(days=5):%Y%m%d}" in parts
    await store.close()
    assert await count(db) == 1


async def test_bad_events_are_refused_at_append_with_a_clear_error(db_url, tmp_path):
    store = EventStore(db_url, tmp_path / "spool")
    await store.start()
    with pytest.raises(ValueError, match="source"):
        await store.append(Event(T0, "nowhere", "X", {}))
    with pytest.raises(ValueError, match="naive"):
        await store.append(Event(datetime(2026, 1, 1), "ami", "X", {}))
    await store.close()


async def test_text_postgres_refuses_is_cleaned_not_lost(db, db_url, tmp_path):
    """A NUL byte or a lone surrogate in a caller name must not take the batch down with it."""
    store = EventStore(db_url, tmp_path / "spool")
    await store.start()
    await store.append(ami_event(0))
    await store.append(Event(T0, "ami", "NewCallerid", {"CallerIDName": "Bob\x00; DROP TABLE events;--"}))
    await store.append(Event(T0, "ami", "NewCallerid", {"CallerIDName": "bad \udcff surrogate"}))
    await store.append(ami_event(1))
    await store.close()
    q = "SELECT payload->>'CallerIDName' AS n FROM events WHERE type = 'NewCallerid' ORDER BY seq"
    names = [r["n"] for r in await db.fetch(q)]
    assert names == ["Bob\ufffd; DROP TABLE events;--", "bad \ufffd surrogate"]
    assert await count(db) == 4
    assert store.dead == 0


async def test_slow_database_applies_backpressure_not_memory(db, db_url, tmp_path):
    store = EventStore(db_url, tmp_path / "spool", batch_max=5, queue_max=10)
    await store.start()
    await store.append(ami_event(0))
    await store.flush()
    blocker = await asyncpg.connect(db_url)
    tr = blocker.transaction()
    await tr.start()
    await blocker.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")

    async def produce() -> None:
        for i in range(1, 101):
            await store.append(ami_event(i))

    producer = asyncio.create_task(produce())
    await asyncio.sleep(0.5)
    assert not producer.done(), "producer should be held back while the database is blocked"
    assert store.backlog <= 10
    await tr.rollback()
    await blocker.close()
    await asyncio.wait_for(producer, 30)
    await store.close()
    assert await count(db) == 101


async def test_connection_killed_mid_stream_loses_nothing(db, db_url, tmp_path):
    store = EventStore(db_url, tmp_path / "spool", batch_max=50, retry_interval_s=0.05)
    await store.start()
    for i in range(2000):
        await store.append(ami_event(i))
        if i % 400 == 399:
            await db.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
    await store.close()
    rows = await db.fetch("SELECT payload->>'n' AS n FROM events ORDER BY seq")
    assert [int(r["n"]) for r in rows] == list(range(2000))


async def test_outage_spools_to_disk_then_drains_in_order(db, db_url, tmp_path):
    proxy = NetCut(db_url)
    await proxy.start()
    spool = tmp_path / "spool"
    store = EventStore(proxy.url, spool, batch_max=40, retry_interval_s=0.05)
    await store.start()
    for i in range(500):
        await store.append(ami_event(i))
    await store.flush()
    await proxy.cut()
    for i in range(500, 1500):
        await store.append(ami_event(i))
    await store.flush()
    assert store.spooled >= 1000 and list(spool.glob("*.jsonl")), "events must be on disk during the outage"
    await proxy.restore()
    for i in range(1500, 2000):
        await store.append(ami_event(i))
    await store.close()
    await proxy.close()
    rows = await db.fetch("SELECT payload->>'n' AS n FROM events ORDER BY seq")
    assert [int(r["n"]) for r in rows] == list(range(2000))
    assert not list(spool.glob("*.jsonl"))


CHILD = """
import asyncio, sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from cti.store.events import Event, EventStore

async def main(dsn, spool):
    store = EventStore(dsn, Path(spool), retry_interval_s=0.05, connect_timeout_s=0.5)
    await store.start()
    t0 = datetime(2026, 11, 23, 12, tzinfo=UTC)
    for i in range(700):
        await store.append(Event(t0 + timedelta(microseconds=i), "ami", "Hangup", {"n": i}))
    await store.close()
    print(store.spooled)

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def test_spool_survives_a_process_restart(db, db_url, tmp_path):
    """A process that could not reach the database exits; the next one writes what it spooled."""
    spool = tmp_path / "spool"
    dead_dsn = "postgresql://postgres@127.0.0.1:1/nowhere"  # nothing listens on port 1
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, dead_dsn, str(spool), stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(child.communicate(), 120)
    assert child.returncode == 0 and out.decode().strip() == "700"
    assert await count(db) == 0 and list(spool.glob("*.jsonl"))
    store = EventStore(db_url, spool, retry_interval_s=0.05)
    await store.start()
    await store.flush()
    await store.close()
    rows = await db.fetch("SELECT payload->>'n' AS n FROM events ORDER BY seq")
    assert [int(r["n"]) for r in rows] == list(range(700))
    assert not list(spool.glob("*.jsonl"))


async def test_a_tight_producer_loop_leaves_room_for_other_tasks(db, db_url, tmp_path):
    """The AMI listener parses a burst without awaiting I/O; appends must still let the writer's
    socket, AMI pings and the web monitor run in between."""
    store = EventStore(db_url, tmp_path / "spool", yield_every=64)
    await store.start()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    t = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    before = ticks
    for i in range(2000):  # the buffer (50,000) never fills: only the store's own yield lets others in
        await store.append(ami_event(i))
    during = ticks - before
    t.cancel()
    await store.close()
    assert during >= 2000 // 64 - 1
    assert await count(db) == 2000


async def test_blackholed_database_costs_one_connect_timeout_per_interval_not_per_batch(tmp_path):
    """A database host that accepts TCP and never answers: rows go to the spool at once instead of
    every batch waiting a connect timeout, and the flush at close tries once more."""
    attempts = 0

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal attempts
        attempts += 1
        await reader.read()  # never answers; returns when the client gives up

    hole = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = hole.sockets[0].getsockname()[1]
    store = EventStore(
        f"postgresql://postgres@127.0.0.1:{port}/x", tmp_path / "spool",
        batch_max=10, queue_max=50, retry_interval_s=600, connect_timeout_s=0.3,
    )  # fmt: skip
    await store.start()
    for i in range(500):
        await store.append(ami_event(i))
    await store.close()
    hole.close()
    assert store.spooled == 500
    assert attempts <= 3, f"{attempts} connection attempts for 50 batches"


async def test_a_full_spool_disk_while_the_database_is_away_loses_nothing(db, db_url, tmp_path):
    """Database away and the spool's disk full (issue 16's drill): the writer used to die and take
    every producer with it. Now it holds the rows, slows producers once its buffer is full, and when
    the database is back every event is stored, in order."""
    proxy = NetCut(db_url)
    await proxy.start()
    store = EventStore(proxy.url, tmp_path / "spool", batch_max=20, queue_max=100, retry_interval_s=0.05,
                       connect_timeout_s=0.3)  # fmt: skip
    write = store.spool.write
    full = True

    def disk(rows):  # type: ignore[no-untyped-def]
        if full:
            raise OSError(28, "No space left on device")
        return write(rows)

    store.spool.write = disk  # type: ignore[method-assign]
    await store.start()
    await store.flush()
    await proxy.cut()

    async def produce() -> None:
        for i in range(300):
            await store.append(ami_event(i))

    producer = asyncio.create_task(produce())
    await asyncio.sleep(1.0)
    assert not producer.done(), "300 events cannot fit a buffer of 100: the producer must be waiting"
    assert store.spool_refused and store.spooled == 0
    await proxy.restore()
    await asyncio.wait_for(producer, 30)
    await store.close()
    await proxy.close()
    rows = await db.fetch("SELECT payload->>'n' AS n FROM events ORDER BY seq")
    assert [int(r["n"]) for r in rows] == list(range(300))


async def test_a_blackholed_connection_costs_a_write_deadline_not_the_writer(db, db_url, tmp_path):
    """A connection that stops answering mid-COPY (issue 16's drill) held the writer forever, every
    event since in memory; now the batch goes to the spool after write_timeout_s and is drained back
    over a fresh connection."""
    from cti.drill.proxy import TcpProxy

    proxy, url = await TcpProxy.for_postgres(db_url)
    store = EventStore(url, tmp_path / "spool",
                       write_timeout_s=0.5, retry_interval_s=0.05, connect_timeout_s=0.3)  # fmt: skip
    await store.start()
    await store.append(ami_event(0))
    await store.flush()
    proxy.blackhole()
    await store.append(ami_event(1))
    await asyncio.wait_for(store.flush(), 5)  # within the deadline: spooled, not stuck
    assert store.spooled == 1
    await proxy.restore()
    await store.append(ami_event(2))
    await asyncio.wait_for(store.close(), 10)
    await proxy.close()
    rows = await db.fetch("SELECT payload->>'n' AS n FROM events ORDER BY seq")
    assert [int(r["n"]) for r in rows] == [0, 1, 2]


async def test_a_trickle_of_events_shares_commits(db, db_url, tmp_path):
    """One event per AGI call arrives alone; each must not cost its own transaction."""
    store = EventStore(db_url, tmp_path / "spool", linger_s=0.02)
    await store.start()
    await store.flush()
    before = store.batches
    for i in range(40):
        await store.append(ami_event(i))
        await asyncio.sleep(0.001)
    await store.close()
    assert store.batches - before <= 20, store.batches - before
    assert await count(db) == 40

"""Captures 01-04 through the whole pipeline: socket (small chunks) -> listener -> events table ->
`cti facts rebuild` -> facts tables; a second rebuild gives identical rows."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from click.testing import CliRunner

from cti.ami.client import AMIClient
from cti.ami.listener import AMIListener
from cti.cli import main
from cti.clock import ManualClock
from cti.facts.repo import rebuild
from cti.policy import load_policy
from cti.state.live import LiveState
from cti.store.events import EventStore
from tests.ami.wire import CAPTURES, StreamServer

DAY = datetime(2026, 11, 23, tzinfo=UTC)


def capture_events_bytes(name: str) -> tuple[bytes, int]:
    raw = next(CAPTURES.glob(f"{name}*/ami.raw")).read_bytes()
    body = raw.split(b"\r\n", 1)[1]
    frames = [f for f in body.split(b"\r\n\r\n") if f.startswith(b"Event: ") and b"\r\nTimestamp: " in f]
    return b"".join(f + b"\r\n\r\n" for f in frames), len(frames)


async def ingest(name: str, store: EventStore) -> LiveState:
    payload, n = capture_events_bytes(name)
    live = LiveState()
    async with StreamServer(payload) as srv:
        client = AMIClient("127.0.0.1", srv.port, "cti", "x", ping_interval=0)
        listener = AMIListener(client, live, store, clock=ManualClock(DAY))
        await listener.start()
        try:
            await asyncio.wait_for(srv.done.wait(), 20)
            for _ in range(1000):
                if listener.events >= n:
                    break
                await asyncio.sleep(0.005)
        finally:
            await listener.close()
    return live


async def snapshot(conn: asyncpg.Connection) -> dict[str, list]:
    return {
        t: [tuple(r) for r in await conn.fetch(f"SELECT * FROM {t} ORDER BY 1, 2, 3, 4")]
        for t in ("call_facts", "call_rings", "agent_sessions", "agent_pauses", "agent_ring_no_answer")
    }


async def test_captures_to_fact_rows_and_identical_rebuild(
    db_url: str, db: asyncpg.Connection, tmp_path: Path
) -> None:
    store = EventStore(db_url, tmp_path / "spool")
    await store.start()
    try:
        for name in ("01", "02", "03", "04"):
            live = await ingest(name, store)
            assert live.summary()["channels"] == 0
    finally:
        await store.close()
    ring = load_policy().ring
    counts = await rebuild(db, DAY, ring)
    assert counts["calls"] == 5 and counts["ring_no_answer"] == 2
    rows = {r["linkedid"]: r for r in await db.fetch("SELECT * FROM call_facts")}
    c1 = rows["1795430750.0"]
    assert c1["caller_num"] == "13812345678" and c1["caller_masked"] == "138****5678"
    assert c1["answered_by"] == "agent1" and c1["hung_up_first"] == "caller" and c1["rings_to_answer"] == 1
    assert abs(float(c1["talk_s"]) - 8.092) < 0.002 and abs(float(c1["hold_s"]) - 3.009) < 0.002
    assert rows["1795430822.0"]["hung_up_first"] == "agent"
    assert c1["outcome"] == "answered"
    abandoned = [r for r in rows.values() if r["abandoned"]]
    assert {r["outcome"] for r in abandoned} == {"abandoned"}
    assert sorted(round(float(r["abandon_wait_s"])) for r in abandoned) == [15, 18]
    rna = await db.fetch("SELECT agent, ring_ms FROM agent_ring_no_answer")
    assert [tuple(r) for r in rna] == [("agent1", 10000), ("agent1", 10000)]
    pauses = await db.fetch("SELECT agent, reason FROM agent_pauses ORDER BY started_at")
    assert [tuple(r) for r in pauses] == [("agent1", "Auto-Pause"), ("agent1", "Auto-Pause")]

    first = await snapshot(db)
    # the CLI does the same, and a rebuild reproduces the rows exactly
    r = await asyncio.to_thread(
        CliRunner().invoke,
        main,
        ["facts", "rebuild", "--since", "2026-11-23"],
        env={"CTI_DATABASE_URL": db_url},
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    assert "calls=5" in r.output
    assert await snapshot(db) == first


async def test_cli_rejects_a_bad_since(db_url: str) -> None:
    r = await asyncio.to_thread(
        CliRunner().invoke,
        main,
        ["facts", "rebuild", "--since", "yesterday"],
        env={"CTI_DATABASE_URL": db_url},
    )
    assert r.exit_code != 0 and "not an ISO date" in r.output

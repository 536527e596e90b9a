"""The wired service (`cti agi`) and the import of night captures taken in degraded mode."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from cti.agi.app import start_agi
from cti.agi.degraded_import import import_degraded_callbacks
from cti.clock import ManualClock
from cti.config import Settings
from cti.degraded import route_agi
from cti.policy import load_policy
from cti.store.events import EventStore
from cti.store.sink import MemoryEvents
from cti.store.spool import Spool
from tests.agi.fake_asterisk import FakeChannel, env_lines, run_call

NIGHT = datetime(2026, 11, 23, 15, 30, tzinfo=UTC)  # 23:30 in Shanghai


async def test_night_captured_in_degraded_mode_becomes_one_callback(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CTI_SPOOL_DIR", str(tmp_path))
    monkeypatch.delenv("CTI_POLICY_FILE", raising=False)
    replies = (
        ["200 result=6"]  # CHANNEL STATUS: the caller is there
        + ["200 result=1 (4008001234)", "200 result=1 (1795430750.0)"]
        + ["200 result=1"] * 5
        + ["200 result=0"] * 6  # ANSWER, prompts, RECORD FILE, number-is, SAY DIGITS
        + ["200 result=1", "200 result=0", "200 result=1"]  # GET DATA "1", thanks, SET CTI_ROUTE
    )
    stdin = io.StringIO("\n".join(env_lines()) + "\n\n" + "".join(r + "\n" for r in replies))
    out = io.StringIO()
    assert route_agi.run(stdin, out, ["x"], now=NIGHT) == 0
    assert out.getvalue().splitlines()[-1] == 'SET VARIABLE "CTI_ROUTE" "hangup"'
    # the CTI comes back: the store drains the spool, the import makes the callback, once
    store = EventStore(db_url, tmp_path)
    await store.start()
    conn = await asyncpg.connect(db_url)
    try:
        for _ in range(100):
            await store.flush()
            if not Spool(tmp_path).segments():
                break
            await conn.execute("SELECT pg_sleep(0.05)")
        policy = load_policy()
        since = NIGHT - timedelta(days=1)
        assert await import_degraded_callbacks(conn, policy, since) == 1
        assert await import_degraded_callbacks(conn, policy, since) == 0
        rows = await conn.fetch("SELECT number, kind, due_by, call_count, source_linkedid FROM callbacks")
        assert [(r["number"], r["kind"], r["call_count"]) for r in rows] == [("13812345678", "night", 1)]
        assert rows[0]["due_by"] == datetime(2026, 11, 24, 0, 30, tzinfo=UTC)  # 08:30 Shanghai
        ev = await conn.fetchrow("SELECT payload FROM events WHERE type = 'degraded_night_callback'")
        assert json.loads(ev["payload"])["degraded"] is True
    finally:
        await conn.close()
        await store.close()


async def test_start_agi_serves_with_the_directory_loaded(db_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    await conn.execute(
        "INSERT INTO agents (id, name, interface, did) VALUES ('agent2', 'Two', 'PJSIP/agent2', '4008001002')"
    )
    await conn.close()
    events = MemoryEvents()
    day = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
    service = await start_agi(Settings(agi={"port": 0}), events=events, dsn=db_url, clock=ManualClock(day))
    try:
        ch = await run_call(service.server.port, FakeChannel(vars={"CTI_DNIS": "4008001002"}))
    finally:
        await service.close()
    assert (ch.vars["CTI_ROUTE"], ch.vars["CTI_PREFERRED"]) == ("queue", "agent2")
    assert events.of_type("route")

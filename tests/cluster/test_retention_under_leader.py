"""Recording retention runs in the server, under the leader: a recording older than
`recording.retention_days` is gone, file and row, with its event, without anyone running a command."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import asyncpg

from cti.app import CtiServer
from cti.clock import ScaledClock
from cti.config import Settings
from cti.policy import load_policy
from cti.rehearsal import free_port
from cti.sim import Simulator
from cti.sim.scenario import QueueConfig, Scenario


async def test_the_leader_purges_recordings_past_retention(
    db_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    scenario = Scenario(queues=(QueueConfig(),))
    clock = ScaledClock(scenario.start, 1.0)
    ami_port, agi_port = free_port(), free_port()
    rec = tmp_path / "rec"
    rec.mkdir()
    old, new = rec / "old.wav", rec / "new.wav"
    old.write_bytes(b"RIFF")
    new.write_bytes(b"RIFF")
    now = clock.now()
    async with pool.acquire() as conn:
        for linkedid, path, age in (("1.0", old, 31), ("2.0", new, 1)):
            await conn.execute(
                "INSERT INTO recordings (linkedid, path, created_at) VALUES ($1, $2, $3)",
                linkedid, str(path), now - timedelta(days=age),
            )  # fmt: skip
    settings = Settings(
        ami={"host": "127.0.0.1", "port": ami_port, "username": "cti", "secret": "cti"},
        agi={"host": "127.0.0.1", "port": agi_port},
        data_dir=tmp_path,
        recording={"path_pattern": str(rec / "{linkedid}.wav"), "retention_days": 30},
    )
    cti = CtiServer(settings, load_policy(), db_url, clock=clock, web_enabled=False)
    await cti.start(connect=False)
    sim = Simulator(scenario, clock=clock, ami_port=ami_port, agi_url=f"agi://127.0.0.1:{agi_port}",
                    write_audio=False)  # fmt: skip
    await sim.start()
    try:
        await cti.connect()  # the leader is elected once AMI is up
        loop = asyncio.get_running_loop()
        end = loop.time() + 20
        while await pool.fetchval("SELECT count(*) FROM recordings") != 1:
            assert loop.time() < end, "retention never ran"
            await asyncio.sleep(0.1)
        assert not old.exists() and new.exists()
        await cti.store.flush()  # type: ignore[union-attr]
        ev = await pool.fetchval("SELECT payload->>'rows' FROM events WHERE type = 'recordings_purged'")
        assert ev == "1"
    finally:
        await cti.close()
        await sim.close()

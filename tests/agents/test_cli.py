"""`cti agents ...` as an operator runs it (a subprocess), against the simulated PBX and PostgreSQL."""

from __future__ import annotations

import asyncpg

from cti.sim import Simulator
from cti.sim.scenario import QueueConfig, Scenario
from tests.cliproc import run_cti


async def cti(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    return await run_cti(env, "agents", *args)


async def test_login_pause_status_logout_through_the_cli(db_url: str, pool: asyncpg.Pool, tmp_path) -> None:  # type: ignore[no-untyped-def]
    await pool.execute(
        "INSERT INTO agents (id, name, interface) VALUES ('agent1', 'Agent One', 'PJSIP/agent1')"
    )
    sim = Simulator(Scenario(queues=(QueueConfig(),)), speed="max", agi_url="agi://127.0.0.1:1")
    sim.add_agent("agent1", "Agent One", registered=False)
    await sim.start()
    sim.register("agent1", True)  # just registered: Status 5 until qualified
    env = {"DATABASE_URL": db_url, "CTI_AMI__PORT": str(sim.ami_port), "CTI_AMI__SECRET": "cti",
           "CTI_DATA_DIR": str(tmp_path)}  # fmt: skip
    try:
        rc, out, err = await cti(env, "login", "agent1")
        assert rc == 0, err
        assert "agent1: logged in" in out
        assert [(m["name"], m["status"]) for m in sim.queue_members()] == [("agent1", 1)]
        rc, out, err = await cti(env, "pause", "agent1", "--reason", "lunch")
        assert rc == 0 and "paused (lunch) until" in out, err
        rc, out, _ = await cti(env, "status")
        assert rc == 0 and "agent1" in out and "paused (lunch)" in out
        rc, _, err = await cti(env, "pause", "agent1", "--reason", "lunch")
        assert rc == 1 and err.strip().splitlines()[-1] == "refused: agent1: already paused (lunch)"
        rc, _, err = await cti(env, "pause", "agent1", "--reason", "nap")
        assert rc == 2 and "not a pause reason" in err and "Traceback" not in err
        await pool.execute(
            """INSERT INTO peak_state (in_peak, cause, since, updated_at)
               VALUES (true, 'switch', now(), now()) ON CONFLICT (singleton) DO UPDATE SET in_peak = true"""
        )
        rc, _, err = await cti(env, "logout", "agent1")
        assert rc == 1 and "peak mode" in err
        await pool.execute("UPDATE peak_state SET in_peak = false")
        rc, out, err = await cti(env, "logout", "agent1")
        assert rc == 0, err
        assert sim.queue_members() == []
        kinds = await pool.fetch(
            "SELECT type, payload->>'decision' AS d FROM events WHERE type LIKE 'agent_%' ORDER BY ts, type"
        )
        assert [(k["type"], k["d"]) for k in kinds].count(("agent_logout", "refused")) == 1
    finally:
        await sim.close()

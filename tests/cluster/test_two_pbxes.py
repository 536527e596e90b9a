"""Two Asterisk servers served by one CTI process (settings `pbx` + `pbxes`, decision 0110), on the
simulator: each agent is put in the queue of its own PBX (agents.pbx), and each agent's callback
goes out through that PBX's AMI."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import asyncpg
from pydantic import SecretStr

from cti.app import CtiServer
from cti.callbacks.offer import open_callback
from cti.clock import ScaledClock
from cti.config import load_settings
from cti.policy import load_policy
from cti.sim.scenario import Scenario
from cti.sim.simulator import Simulator
from tests.polling import until_awaited

POLICY = load_policy()
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # 20:00 Shanghai: callbacks are dialed
DID = "4008001234"


async def test_each_agent_is_queued_and_called_through_its_own_pbx(
    db_url: str, db: asyncpg.Connection, tmp_path
):
    clock = ScaledClock(T0, 5.0)
    sims = {name: Simulator(Scenario(start=T0, ami_users={"cti": ("cti", "all")}), clock=clock,
                            write_audio=False) for name in ("north", "south")}  # fmt: skip
    sims["north"].add_agent("agent1")
    sims["south"].add_agent("agent2")
    for i, pbx in ((1, "north"), (2, "south")):
        await db.execute("INSERT INTO agents (id, name, interface, pbx) VALUES ($1, $1, $2, $3)",
                         f"agent{i}", f"PJSIP/agent{i}", pbx)  # fmt: skip
    for sim in sims.values():
        await sim.start()
    base = load_settings(env={"CTI_DATA_DIR": str(tmp_path)})

    def ami(name: str) -> Any:
        return base.ami.model_copy(update={"port": sims[name].ami_port, "username": "cti",
                                           "secret": SecretStr("cti")})  # fmt: skip

    settings = base.model_copy(update={"pbx": "north", "ami": ami("north"), "pbxes": {"south": ami("south")},
                                       "agi": base.agi.model_copy(update={"port": 0})})  # fmt: skip
    cti = CtiServer(settings, POLICY, db_url, clock=clock, web_enabled=False, default_did=DID)
    seen: dict[str, list[Mapping[str, Any]]] = {"north": [], "south": []}
    try:
        await cti.start()
        assert cti.ami is not None and cti.agents is not None
        cti.ami.subscribe(
            lambda f: seen["north"].append(f) if f.get("Event") == "OriginateResponse" else None
        )
        south = cti.pbx_listeners["south"]
        south.client.subscribe(
            lambda f: seen["south"].append(f) if f.get("Event") == "OriginateResponse" else None
        )
        for agent in ("agent1", "agent2"):
            assert (await cti.agents.login(agent, queues=("sales",))).allowed

        # QueueAdd went to each agent's own PBX: its live state (from its own AMI) has the member
        def names(live: Any) -> set[str]:
            return {m.name for m in live.members("sales")}

        await until_awaited(lambda: _async(names(south.live) == {"agent2"} and names(cti.live) == {"agent1"}))
        numbers = ("13812345001", "13812345002")
        for n in numbers:
            for sim in sims.values():
                sim.set_customer(n, "answer", delay=2.0)
            await open_callback(db, number=n, did=DID, kind="peak", now=clock.now(), policy=POLICY.callbacks)

        async def both_reached() -> bool:
            return await db.fetchval("SELECT count(*) FROM callback_attempts WHERE outcome = 'reached'") == 2

        await until_awaited(both_reached, 60)
        rows = {
            r["agent"]: r["channel_id"]
            for r in await db.fetch("SELECT agent, channel_id FROM callback_attempts")
        }
        assert set(rows) == {"agent1", "agent2"}
        assert [f["Uniqueid"] for f in seen["north"]] == [rows["agent1"]]  # agent1's call: north only
        assert [f["Uniqueid"] for f in seen["south"]] == [rows["agent2"]]  # agent2's call: south only
    finally:
        await cti.close()
        for sim in sims.values():
            await sim.close()


async def _async(value: bool) -> bool:
    return value

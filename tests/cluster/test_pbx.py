"""Several Asterisk servers (decision 0110): what rings an agent goes out through the agent's PBX
(agents.pbx), the dispatcher sees every served PBX's free agents, one PBX is wired as before."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg
import pytest

from cti.callbacks.originate import OriginateNotSent, OriginateRequest
from cti.cluster.pbx import AgentPbx, PbxFloor, PbxRouter
from cti.config import load_settings
from cti.outbound.dialer import OutboundOriginate


class Pbx:
    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[tuple[str, Mapping[str, Any]]] = []

    async def originate(self, req: Any) -> Mapping[str, Any]:
        self.sent.append(("Originate", req.headers()))
        return {"Response": "Success", "ActionID": f"{self.name}-1"}

    async def action(self, name: str, headers: Mapping[str, str]) -> Mapping[str, Any]:
        self.sent.append((name, dict(headers)))
        return {"Response": "Success"}


async def _agents(db: asyncpg.Connection) -> None:
    for i, pbx in ((1, "north"), (2, "south"), (3, "west")):
        await db.execute(
            "INSERT INTO agents (id, name, interface, pbx) VALUES ($1, $1, $2, $3)",
            f"agent{i}",
            f"PJSIP/agent{i}",
            pbx,
        )


def _cb(agent: str) -> OriginateRequest:
    return OriginateRequest(callback_id=1, attempt=1, channel=f"PJSIP/{agent}", exten="13812345678",
                            did="4008001234", channel_id="cti-cb-1-1", timeout_ms=15000)  # fmt: skip


async def test_a_callback_dial_and_queue_add_go_out_through_the_agents_pbx(pool: asyncpg.Pool, db):
    await _agents(db)
    north, south = Pbx("north"), Pbx("south")
    router = PbxRouter(AgentPbx(pool, "north"), {"north": north.originate, "south": south.originate},
                       {"north": north.action, "south": south.action})  # fmt: skip
    assert (await router.originate(_cb("agent2")))["ActionID"] == "south-1"
    dial = OutboundOriginate("cti-ob-7", 7, "+8613812345678", "4008001234", "sales", "agent1")
    assert (await router.originate(dial))["ActionID"] == "north-1"
    predictive = OutboundOriginate("cti-ob-8", 8, "+8613812345679", "4008001234", "sales", None)
    assert (await router.originate(predictive))["ActionID"] == "north-1"  # the default PBX's queue
    await router.action("QueueAdd", {"Queue": "sales", "Interface": "PJSIP/agent2", "MemberName": "agent2"})
    assert [n for n, _ in south.sent] == ["Originate", "QueueAdd"]
    # customer first (the dialer): agent1's dial and the predictive one, both through north
    assert [h["Channel"] for _, h in north.sent] == ["PJSIP/13812345678@trunk", "PJSIP/13812345679@trunk"]
    # agent3's PBX is not served here: nothing is sent anywhere, and the caller learns it was not sent
    with pytest.raises(OriginateNotSent):
        await router.originate(_cb("agent3"))
    assert len(north.sent) + len(south.sent) == 4
    # an agent added after the first look is found (the map is read again on a miss)
    await db.execute(
        "INSERT INTO agents (id, name, interface, pbx) VALUES ('agent9', 'a9', 'PJSIP/agent9', 'south')"
    )
    await router.originate(_cb("agent9"))
    assert south.sent[-1][1]["Channel"] == "PJSIP/agent9"


class View:
    def __init__(self, free: list[str], waiting: int, answered: int) -> None:
        self.free, self.waiting, self.answered = free, waiting, answered

    def free_agent(self, busy):
        return next((a for a in self.free if a not in busy), None)

    def waiting_inbound(self) -> int:
        return self.waiting

    def inbound_answered(self) -> int:
        return self.answered


def test_the_dispatcher_sees_the_free_agents_and_callers_of_every_served_pbx():
    floor = PbxFloor([View(["agent1"], 2, 10), View(["agent2"], 1, 5)])
    assert floor.free_agent(frozenset()) == "agent1"
    assert floor.free_agent(frozenset({"agent1"})) == "agent2"  # busy north: south's agent
    assert floor.free_agent(frozenset({"agent1", "agent2"})) is None
    assert floor.waiting_inbound() == 3 and floor.inbound_answered() == 15  # inbound first, site-wide


def test_settings_name_the_pbxes_a_process_serves(tmp_path):
    cfg = tmp_path / "cti.toml"
    cfg.write_text('pbx = "north"\n[ami]\nport = 5038\n[pbxes.south]\nhost = "10.1.2.3"\nport = 5039\n')
    s = load_settings(cfg, env={})
    assert s.pbx == "north" and s.pbxes["south"].port == 5039
    one = load_settings(None, env={})
    assert one.pbx == "default" and one.pbxes == {}  # one PBX: as before

"""AgentService against PostgreSQL and the simulated PBX over real AMI: what Asterisk ends up with.

Capture 19: a member added right after REGISTER is Status 5 until qualified -> the login qualifies.
Capture 17: a restart forgets every member and AMI answers QueueStatus `Invalid/unknown command`
for a moment -> the link is kept, the resync retried, and every login is put back with its pause.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import pytest

from cti.agents.service import AgentService
from cti.ami.client import AMIClient
from cti.ami.listener import AMIListener
from cti.callbacks.ami_adapter import ami_action
from cti.clock import ManualClock
from cti.policy import load_policy
from cti.sim import Simulator
from cti.sim.scenario import QueueConfig, Scenario
from cti.state.live import LiveState
from cti.store.sink import MemoryEvents
from tests.polling import until
from tests.sim.helpers import FastAgiServer

NOW = datetime(2026, 11, 29, 2, 30, tzinfo=UTC)


async def _route(env: dict[str, str], cmd) -> None:  # type: ignore[no-untyped-def]
    await cmd('SET VARIABLE CTI_ROUTE "queue"')


@dataclass
class Rig:
    sim: Simulator
    client: AMIClient
    listener: AMIListener
    live: LiveState
    svc: AgentService
    events: MemoryEvents
    pool: asyncpg.Pool
    peak: list[bool]


@pytest.fixture
async def rig(pool: asyncpg.Pool) -> AsyncIterator[Rig]:
    await pool.execute(
        """INSERT INTO agents (id, name, interface, group_name) VALUES
             ('agent1', 'Agent One', 'PJSIP/agent1', 'g1'), ('agent2', 'Agent Two', 'PJSIP/agent2', 'g1'),
             ('agent3', 'Agent Three', 'PJSIP/agent3', 'g1'),
             ('agent4', 'Agent Four', 'PJSIP/agent4', 'g2')"""
    )
    agi = FastAgiServer({"route": _route})
    port = await agi.start()
    sim = Simulator(
        Scenario(queues=(QueueConfig(),), qualify_frequency_s=30), agi_url=f"agi://127.0.0.1:{port}"
    )
    for n in (1, 2, 3, 4):
        sim.add_agent(f"agent{n}", f"Agent {n}", registered=False)
    await sim.start()
    live = LiveState()
    client = AMIClient(
        "127.0.0.1", sim.ami_port, "cti", "cti", ping_interval=0, backoff_initial=0.2, backoff_max=0.2
    )
    listener = AMIListener(client, live, resync_retry_s=0.05, resync_retry_max_s=0.2)
    events = MemoryEvents()
    peak = [False]
    svc = AgentService(
        pool,
        policy=load_policy(),
        clock=ManualClock(NOW),
        events=events,
        ami_action=ami_action(client),
        in_peak=lambda: peak[0],
    )
    listener.after_resync(svc.restore_after_resync)
    await listener.start()
    yield Rig(sim, client, listener, live, svc, events, pool, peak)
    await listener.close()
    await sim.close()
    await agi.close()


def _members(sim: Simulator) -> dict[str, tuple[int, bool, str]]:
    return {m["name"]: (m["status"], m["paused"], m["paused_reason"]) for m in sim.queue_members()}


async def test_login_right_after_register_is_reachable_at_once_and_recorded(rig: Rig) -> None:
    rig.sim.register("agent1", True)  # the phone just registered: Status 5 until the first OPTIONS
    d = await rig.svc.login("agent1", via="phone")
    assert d.allowed and d.code == "logged_in"
    await rig.sim.advance(0.1)
    assert _members(rig.sim) == {"agent1": (1, False, "")}  # PJSIPQualify: reachable now, not in 30 s
    row = await rig.pool.fetchrow(
        "SELECT queues, login_via, logout_at FROM agent_logins WHERE agent = 'agent1'"
    )
    assert (row["queues"], row["login_via"], row["logout_at"]) == (["sales"], "phone", None)
    (ev,) = rig.events.of_type("agent_login")
    assert ev.payload["decision"] == "accepted" and ev.agent == "agent1"
    # a caller now reaches the agent instead of JOINEMPTY -> night (capture 19)
    rig.sim.place_call(caller="13812345678", did="4008001234", name="张三")
    await rig.sim.advance(2)
    assert any(c["channel"].startswith("PJSIP/agent1") for c in rig.sim.channels())
    # a second *11 does not open a second session
    assert (await rig.svc.login("agent1", via="phone")).code == "already_logged_in"
    assert await rig.pool.fetchval("SELECT count(*) FROM agent_logins") == 1
    assert (await rig.svc.login("nobody")).code == "unknown_agent"
    assert rig.events.of_type("agent_login")[-1].payload["decision"] == "refused"


async def test_break_limit_and_peak_refusals_leave_asterisk_untouched_and_are_recorded(rig: Rig) -> None:
    for a in ("agent1", "agent2", "agent3", "agent4"):
        rig.sim.register(a, True)
        assert (await rig.svc.login(a, via="cli")).allowed
    assert (await rig.svc.pause("agent1", "lunch")).allowed
    assert (await rig.svc.pause("agent2", "break")).allowed
    d = await rig.svc.pause("agent3", "toilet")
    assert d.code == "break_limit" and "agent1 (lunch, until 10:40)" in d.message
    assert (await rig.svc.pause("agent4", "break")).allowed  # another group
    await rig.sim.advance(0.1)
    m = _members(rig.sim)
    assert m["agent1"][1:] == (True, "lunch") and m["agent3"][1] is False
    refused = [e for e in rig.events.of_type("agent_pause") if e.payload["decision"] == "refused"]
    assert [e.agent for e in refused] == ["agent3"] and refused[0].payload["out"][0]["agent"] == "agent1"
    rig.peak[0] = True
    assert (await rig.svc.unpause("agent1")).allowed  # coming back is always allowed
    assert (await rig.svc.pause("agent1", "break")).code == "peak_mode"
    assert (await rig.svc.logout("agent2")).code == "peak_mode"
    rig.peak[0] = False
    assert (await rig.svc.logout("agent2")).allowed
    await rig.sim.advance(0.1)
    assert "agent2" not in _members(rig.sim)
    assert [s.agent for s in await rig.svc.logged_in()] == ["agent1", "agent3", "agent4"]


async def test_restart_keeps_the_link_while_app_queue_loads_then_restores_logins_and_pauses(rig: Rig) -> None:
    for a in ("agent1", "agent2"):
        rig.sim.register(a, True)
        assert (await rig.svc.login(a, via="phone")).allowed
    assert (await rig.svc.pause("agent2", "lunch")).allowed
    await rig.sim.advance(0.1)
    assert _members(rig.sim) == {"agent1": (1, False, ""), "agent2": (1, True, "lunch")}

    rig.sim.restart_asterisk()  # capture 17: Shutdown, EOF, then QueueStatus unknown for a while
    assert _members(rig.sim) == {}
    assert await until(lambda: rig.client.connects == 2 and rig.listener.resyncs_deferred == 1)
    await asyncio.sleep(0.3)  # several retries while the PBX is still "loading modules"
    assert rig.client.connected and rig.client.connects == 2  # an answer, not a lost connection
    assert _members(rig.sim) == {}  # nothing sent to a PBX whose queues are not there yet
    await rig.sim.advance(1)  # app_queue loaded
    assert await until(lambda: len(rig.events.of_type("agent_restore")) == 2)
    await rig.sim.advance(0.1)  # the PJSIPQualify round trips
    assert _members(rig.sim) == {"agent1": (1, False, ""), "agent2": (1, True, "lunch")}
    assert rig.client.connects == 2
    ev = rig.events.of_type("agent_restore")[-1]
    assert ev.payload["added"] == 2 and ev.payload["failed"] == 0
    assert await rig.pool.fetchval("SELECT count(*) FROM agent_logins WHERE restored_at IS NOT NULL") == 2


async def test_plain_reconnect_adds_nobody_and_keeps_asterisks_own_pauses(rig: Rig) -> None:
    rig.sim.register("agent1", True)
    assert (await rig.svc.login("agent1")).allowed
    await rig.sim.advance(0.1)
    rig.sim.pause_at_phone("agent1", True, "Auto-Pause")  # Asterisk's own pause (capture 02)
    for s in list(rig.sim.ami.sessions):  # the link drops; Asterisk keeps running
        s.writer.close()
    assert await until(lambda: len(rig.events.of_type("agent_restore")) == 2)
    assert rig.events.of_type("agent_restore")[-1].payload["added"] == 0
    await rig.sim.advance(0.1)
    assert _members(rig.sim) == {"agent1": (1, True, "Auto-Pause")}

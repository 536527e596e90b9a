"""Against the simulator: the AMI connection drops mid-call, calls end / start and an agent pauses while
we are blind, the client reconnects by itself and resyncs; afterwards live state equals the
simulator's truth (channels, bridges, calls, queue members, callers waiting)."""

from __future__ import annotations

import asyncio
import time

from cti.ami.client import AMIClient
from cti.ami.listener import AMIListener
from cti.sim import Simulator
from cti.sim.scenario import QueueConfig, Scenario
from cti.state.live import LiveState
from tests.sim.helpers import FastAgiServer


async def _route(env: dict[str, str], cmd) -> None:  # type: ignore[no-untyped-def]
    await cmd('SET VARIABLE CTI_ROUTE "queue"')


def mismatch(live: LiveState, sim: Simulator) -> list[str]:
    st = live.state
    out = []
    truth_ch = {c["uniqueid"]: c for c in sim.channels()}
    if set(st.channels) != set(truth_ch):
        out.append(f"channels {sorted(st.channels)} != {sorted(truth_ch)}")
    for uid, c in truth_ch.items():
        ch = st.channels.get(uid)
        if ch is not None and (ch.bridge, ch.linkedid, ch.name) != (c["bridge"], c["linkedid"], c["channel"]):
            out.append(f"channel {uid}: {(ch.bridge, ch.linkedid)} != {(c['bridge'], c['linkedid'])}")
    if set(st.calls) != {c["linkedid"] for c in truth_ch.values()}:
        out.append(f"calls {sorted(st.calls)}")
    for m in sim.queue_members("sales"):
        got = st.members.get(("sales", m["interface"]))
        if got is None:
            out.append(f"member {m['name']} missing")
            continue
        want = (m["status"], m["paused"], m["paused_reason"] if m["paused"] else "", bool(m["in_call"]))
        have = (got.status, got.paused, got.paused_reason, got.in_call is not None)
        if want != have:
            out.append(f"member {m['name']}: {have} != {want}")
    if [c.channel for c in live.callers_waiting("sales")] != sim.queue_callers("sales"):
        out.append(
            f"callers {[c.channel for c in live.callers_waiting('sales')]} != {sim.queue_callers('sales')}"
        )
    return out


async def converge(live: LiveState, sim: Simulator, limit: float = 5.0) -> list[str]:
    end = time.monotonic() + limit
    while True:
        diff = mismatch(live, sim)
        if not diff or time.monotonic() > end:
            return diff
        await asyncio.sleep(0.02)


async def test_disconnect_mid_call_reconnect_resync_matches_simulator() -> None:
    agi = FastAgiServer({"route": _route})
    port = await agi.start()
    sim = Simulator(Scenario(queues=(QueueConfig(),)), agi_url=f"agi://127.0.0.1:{port}")
    for n in (1, 2, 3):
        sim.add_agent(f"agent{n}", f"Agent {n}")
    await sim.start()
    live = LiveState()
    client = AMIClient(
        "127.0.0.1", sim.ami_port, "cti", "cti", ping_interval=0, backoff_initial=0.4, backoff_max=0.4
    )
    listener = AMIListener(client, live)
    try:
        await listener.start()
        for n in (1, 2, 3):
            sim.login(f"agent{n}")
        sim.set_answer("agent1", "auto", delay=2.0)
        sim.set_answer("agent2", "auto", delay=3.0)
        sim.set_answer("agent3", "never")
        sim.place_call(caller="13812345678", did="4008001234", name="张三", behaviour={"talk_time": 30})
        sim.place_call(caller="13987654321", did="4008001234", name="李四", behaviour={"talk_time": 300})
        await sim.advance(8)
        assert await converge(live, sim) == []
        assert sum(1 for m in live.members("sales") if m.in_call) == 2  # both calls are up

        # the connection drops mid-call; we are blind while things change
        for s in list(sim.ami.sessions):
            s.writer.close()
        for _ in range(100):
            if not client.connected:
                break
            await asyncio.sleep(0.01)
        assert not client.connected
        sim.pause_at_phone("agent3", True, "lunch")
        sim.set_answer("agent1", "never")
        await sim.advance(40)  # call 1 ends (30 s talk), call 2 still talking
        sim.place_call(caller="13700000001", did="4008001234", behaviour={"talk_time": 300, "patience": 600})
        await sim.advance(3)  # the new caller waits: agent1 never answers, agent2 busy, agent3 paused
        assert sim.queue_callers("sales")  # the truth has someone waiting

        # reconnect by itself, resync, then events flow on top of the snapshot
        for _ in range(300):
            if client.connects == 2 and live.resyncs == 2:
                break
            await asyncio.sleep(0.01)
        assert client.connects == 2 and live.resyncs == 2
        assert await converge(live, sim) == []
        (a3,) = live.agent_status("agent3")
        assert a3.paused and a3.paused_reason == "lunch"
        await sim.advance(5)
        assert await converge(live, sim) == []
    finally:
        await listener.close()
        await sim.close()
        await agi.close()

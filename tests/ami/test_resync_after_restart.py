"""Capture 17: after `core restart now` AMI takes a login before app_queue is loaded, and QueueStatus
answers `Invalid/unknown command`. The listener keeps that connection and retries the resync on it;
the live state then shows the restarted PBX (no members, no channels)."""

from __future__ import annotations

import asyncio

from cti.ami.client import AMIClient
from cti.ami.listener import AMIListener
from cti.sim import Simulator
from cti.sim.scenario import QueueConfig, Scenario
from cti.state.live import LiveState
from tests.polling import until


async def test_unknown_queuestatus_after_restart_is_an_answer_not_a_lost_link() -> None:
    sim = Simulator(Scenario(queues=(QueueConfig(),)), agi_url="agi://127.0.0.1:1")
    sim.add_agent("agent1", "Agent One")
    await sim.start()
    live = LiveState()
    client = AMIClient(
        "127.0.0.1", sim.ami_port, "cti", "cti", ping_interval=0, backoff_initial=0.1, backoff_max=0.1
    )
    listener = AMIListener(client, live, resync_retry_s=0.05, resync_retry_max_s=0.1)
    resynced: list[int] = []

    async def after(c: AMIClient, _live: LiveState) -> None:
        resynced.append(c.connects)

    listener.after_resync(after)
    try:
        await listener.start()
        sim.login("agent1")
        await sim.advance(0.1)
        assert len(live.members("sales")) == 1 and resynced == [1]

        sim.restart_asterisk()
        assert await until(lambda: listener.resyncs_deferred == 1)
        await asyncio.sleep(0.4)  # retries keep getting "Invalid/unknown command"
        assert client.connected and client.connects == 2 and resynced == [1]
        await sim.advance(1)  # modules loaded
        assert await until(lambda: resynced != [1])
        assert resynced == [1, 2] and client.connects == 2
        assert live.members("sales") == [] and live.resyncs == 2  # nobody re-added them
    finally:
        await listener.close()
        await sim.close()

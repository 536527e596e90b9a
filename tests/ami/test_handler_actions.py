"""An event handler may answer an event with an action of the same client (the peak guard undoes a
pause with QueuePause as soon as it sees QueueMemberPause). The reply must arrive: the reader must
not be stuck inside the handler that waits for it."""

from __future__ import annotations

import asyncio

from cti.ami.client import AMIClient
from cti.sim import Simulator
from cti.sim.scenario import Scenario


async def test_a_handler_that_sends_an_action_gets_its_reply():
    async with Simulator(Scenario(), ami_port=0) as sim:
        sim.add_agent("agent1", "Agent One")
        client = AMIClient("127.0.0.1", sim.ami_port, "cti", "cti", action_timeout=3.0, ping_interval=0)
        answers: list[str] = []
        seen: list[str] = []

        async def undo_pause(msg) -> None:  # type: ignore[no-untyped-def]
            seen.append(msg.name)
            if msg.name == "QueueMemberPause" and msg.get("Paused") == "1":
                reply = await client.action(
                    "QueuePause",
                    {"Queue": "sales", "Interface": "PJSIP/agent1", "Paused": "false"},
                    check=False,
                )
                answers.append(reply.response.first("Response") or "")

        client.subscribe(undo_pause)
        await client.start()
        try:
            await client.action(
                "QueueAdd", {"Queue": "sales", "Interface": "PJSIP/agent1", "MemberName": "agent1"}
            )
            await client.action(
                "QueuePause",
                {"Queue": "sales", "Interface": "PJSIP/agent1", "Paused": "true", "Reason": "lunch"},
            )
            for _ in range(100):
                if answers:
                    break
                await asyncio.sleep(0.02)
            assert answers == ["Success"], "the handler's own action must be answered, not time out"
            assert not any(m["paused"] for m in sim.queue_members("sales")), "the pause was undone"
            # events keep flowing, in order, after the handler's action
            assert seen.index("QueueMemberAdded") < seen.index("QueueMemberPause")
        finally:
            await client.close()

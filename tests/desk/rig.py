"""A floor for desk tests: PostgreSQL, the simulated PBX over real AMI and FastAGI, the CTI's live
state, AgentService, DeskService and the web app on a real port. Drives the simulator through its
public API only."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from aiohttp import web

from cti.agents.service import AgentService
from cti.ami.client import AMIClient
from cti.ami.listener import AMIListener
from cti.callbacks import queries as callback_queries
from cti.callbacks.ami_adapter import ami_action
from cti.clock import ManualClock
from cti.desk.service import DeskService
from cti.policy import load_policy
from cti.sim import Simulator
from cti.sim.scenario import QueueConfig, Scenario
from cti.state.live import LiveState
from cti.store.sink import MemoryEvents
from cti.web.app import Services, make_app
from cti.web.auth import add_user
from cti.web.quality import RECORDINGS_DIR
from tests.sim.helpers import FastAgiServer

# 10:30 in Asia/Shanghai: inside both default shifts
NOW = datetime(2026, 11, 29, 2, 30, tzinfo=UTC)
CUSTOMER = "13812345678"
PASSWORDS = {"agent1": "agent1-pw-x", "agent2": "agent2-pw-x", "agent3": "agent3-pw-x",
             "wang": "supervisor-pw"}  # fmt: skip


ROUTE_VARS: dict[str, str] = {}  # extra variables the route script sets (a test sets CTI_PREFERRED)


async def _route(env: dict[str, str], cmd) -> None:  # type: ignore[no-untyped-def]
    await cmd('SET VARIABLE CTI_QUEUE "sales"')
    for k, v in ROUTE_VARS.items():
        await cmd(f'SET VARIABLE {k} "{v}"')
    await cmd('SET VARIABLE CTI_ROUTE "queue"')


@dataclass
class Floor:
    sim: Simulator
    live: LiveState
    agents: AgentService
    desk: DeskService
    events: MemoryEvents
    pool: asyncpg.Pool
    peak: list[bool]
    url: str
    clock: ManualClock
    app: web.Application


@asynccontextmanager
async def floor(db_url: str) -> AsyncIterator[Floor]:
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=6)
    await pool.execute(
        """INSERT INTO agents (id, name, interface, group_name) VALUES
             ('agent1', '张伟', 'PJSIP/agent1', 'g1'), ('agent2', '李娜', 'PJSIP/agent2', 'g1'),
             ('agent3', '王芳', 'PJSIP/agent3', 'g1'), ('agent10', '刘洋', 'PJSIP/agent10', 'g1'),
             ('sup1', '王主管', 'PJSIP/sup1', 'g1')"""
    )
    async with pool.acquire() as conn:
        for n in (1, 2, 3):
            await add_user(conn, f"agent{n}", PASSWORDS[f"agent{n}"], "agent", agent_id=f"agent{n}")
        await add_user(conn, "wang", PASSWORDS["wang"], "supervisor", display_name="王主管", agent_id="sup1")
        cust = await conn.fetchval(
            "INSERT INTO customers (number, name) VALUES ($1, '赵女士') RETURNING id", CUSTOMER
        )
        await conn.execute(
            """INSERT INTO orders (customer_id, owner_agent, status, product)
               VALUES ($1, 'agent2', 'shipped', '蜂胶')""",
            cust,
        )
    agi = FastAgiServer({"route": _route})
    port = await agi.start()
    sim = Simulator(Scenario(queues=(QueueConfig(),)), agi_url=f"agi://127.0.0.1:{port}")
    for n in (1, 2, 3, 10):
        sim.add_agent(f"agent{n}", f"Agent {n}")
    sim.add_agent("sup1", "Supervisor")
    await sim.start()
    live = LiveState()
    client = AMIClient(
        "127.0.0.1", sim.ami_port, "cti", "cti", ping_interval=0, backoff_initial=0.2, backoff_max=0.2
    )
    listener = AMIListener(client, live, resync_retry_s=0.05, resync_retry_max_s=0.2)
    events = MemoryEvents()
    peak = [False]
    clock = ManualClock(NOW)
    policy = load_policy()
    agents = AgentService(pool, policy=policy, clock=clock, events=events, ami_action=ami_action(client),
                          in_peak=lambda: peak[0])  # fmt: skip
    listener.after_resync(agents.restore_after_resync)
    desk = DeskService(pool, live=live, agents=agents, policy=policy, clock=clock, tz=policy_tz(),
                       events=events, ami_action=ami_action(client), ami_connected=lambda: client.connected,
                       in_peak=lambda: peak[0], did_labels={"4008001234": "CCTV-1 晚间广告"},
                       callback_stats=lambda: callback_queries.callback_stats(pool, now=clock.now()),
                       )  # fmt: skip
    await desk.start(watch=False)
    await listener.start()
    app = make_app(Services(pool=pool, live=live, clock=clock, push_interval_s=0.05, desk=desk))
    app[RECORDINGS_DIR] = Path(tempfile.mkdtemp(prefix="cti-recordings-"))  # players serve only from here
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    ROUTE_VARS.clear()
    try:
        yield Floor(sim, live, agents, desk, events, pool, peak, url, clock, app)
    finally:
        await runner.cleanup()
        await desk.close()
        await listener.close()
        await sim.close()
        await agi.close()
        await pool.close()


def policy_tz():  # type: ignore[no-untyped-def]
    from cti.config import Settings

    return Settings().tz

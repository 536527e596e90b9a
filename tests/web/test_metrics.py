"""`/metrics` of a running CTI (AMI, FastAGI, event store, web) after a real call through the simulated
PBX, read with prometheus_client's own parser."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import aiohttp
import asyncpg
from prometheus_client.parser import text_string_to_metric_families

from cti.agents.provision import AgentRecord, add_agent
from cti.app import CtiServer
from cti.clock import ScaledClock
from cti.config import Settings
from cti.policy import load_policy
from cti.rehearsal import free_port
from cti.sim import Simulator
from cti.sim.scenario import QueueConfig, Scenario
from cti.web import auth
from tests.polling import until_awaited


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def scrape(port: int, headers: dict[str, str] | None = None) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/metrics", headers=headers) as r,
    ):
        return r.status, await r.text()


async def test_metrics_reflect_a_real_call(db_url: str, pool: asyncpg.Pool, tmp_path: Path) -> None:
    scenario = Scenario(queues=(QueueConfig(),))
    clock = ScaledClock(scenario.start, 5.0)
    ami_port, agi_port = free_port(), free_port()
    settings = Settings(
        ami={"host": "127.0.0.1", "port": ami_port, "username": "cti", "secret": "cti"},
        agi={"host": "127.0.0.1", "port": agi_port},
        web={"host": "127.0.0.1", "port": 0, "metrics_token": "scrape-me"},
        data_dir=tmp_path,
        recording={"path_pattern": str(tmp_path / "rec" / "{linkedid}.wav")},
    )
    async with pool.acquire() as conn:
        await add_agent(conn, AgentRecord("agent1", "Agent One", "sales"), clock.now())
        # one open callback whose caller first called 10 minutes (virtual) ago
        await conn.execute(
            """INSERT INTO callbacks (number, kind, first_call_at, last_call_at, next_attempt_at)
               VALUES ('13900000000', 'abandon', $1, $1, $2)""",
            clock.now() - timedelta(minutes=10), clock.now() + timedelta(hours=1),
        )  # fmt: skip
        await auth.add_user(conn, "boss", "pw-123456", role="supervisor")
        await auth.login(conn, "boss", "pw-123456", clock.now())
    cti = CtiServer(settings, load_policy(), db_url, clock=clock, web_enabled=True)
    await cti.start(connect=False)
    sim = Simulator(scenario, clock=clock, ami_port=ami_port, agi_url=f"agi://127.0.0.1:{agi_port}",
                    write_audio=False)  # fmt: skip
    sim.add_agent("agent1", "Agent One")
    await sim.start()
    try:
        await cti.connect()
        assert cti.web_port is not None and cti.agents is not None
        status, before_text = await scrape(cti.web_port)
        assert status == 200
        before = samples(before_text)
        d = await cti.agents.login("agent1", via="cli")
        assert d.allowed, d.message
        sim.place_call("13812345678", "4008001234", behaviour={"talk_time": 20.0})

        async def routed_and_stored() -> bool:
            return bool(await pool.fetchval("SELECT count(*) FROM events WHERE type = 'route'"))

        await until_awaited(routed_and_stored)
        await cti.store.flush()  # type: ignore[union-attr]
        status, text = await scrape(cti.web_port)
        after = samples(text)
        route = (("script", "route"),)
        assert (
            after[("cti_agi_decision_seconds_count", route)]
            - before.get(("cti_agi_decision_seconds_count", route), 0)
            == 1
        )
        assert after[("cti_agi_sessions_total", (("outcome", "completed"), ("script", "route")))] >= 1
        assert after[("cti_ami_connected", ())] == 1
        assert after[("cti_ami_reconnects_total", ())] == 0
        stored = await pool.fetchval("SELECT count(*) FROM events")
        assert after[("cti_events_stored_total", ())] >= stored > before[("cti_events_stored_total", ())]
        assert after[("cti_events_spooled_total", ())] == 0 and after[("cti_spool_segments", ())] == 0
        assert after[("cti_event_lag_seconds_count", ())] > before.get(("cti_event_lag_seconds_count", ()), 0)
        assert after[("cti_agents", (("state", "logged_in"),))] == 1
        assert after[("cti_peak_mode", ())] == 0
        assert after[("cti_callback_backlog", ())] == 1
        assert 600 <= after[("cti_callback_oldest_age_seconds", ())] < 900
        assert after[("cti_web_sessions", ())] == 1
        assert after[("cti_dialer_state", (("state", "off"),))] == 1  # no campaign running
        assert after[("cti_dialer_campaigns", ())] == 0
        # the caller's number is in no metric
        assert "13812345678" not in text and "5678" not in text

        # AMI drops: the gauge says so, and a reconnect is counted
        sim.restart_asterisk(modules_s=0.2)

        async def reconnected() -> bool:
            s = samples((await scrape(cti.web_port))[1])  # type: ignore[arg-type]
            return s[("cti_ami_reconnects_total", ())] == 1 and s[("cti_ami_connected", ())] == 1

        await until_awaited(reconnected)
    finally:
        await sim.close()
        await cti.close()


async def test_metrics_from_another_host_need_the_token() -> None:
    """The handler's access rule: not loopback and no token is refused (a scraper has no cookie)."""
    from aiohttp.test_utils import make_mocked_request

    from cti.web import metrics as web_metrics

    app = aiohttp.web.Application()
    web_metrics.setup(app)
    web_metrics.attach(app, None, "t0ken")  # type: ignore[arg-type]

    def req(remote: str, header: str | None = None):  # type: ignore[no-untyped-def]
        r = make_mocked_request(
            "GET", "/metrics", headers={"Authorization": header} if header else {}, app=app
        )
        return r.clone(remote=remote)

    assert web_metrics._allowed(req("127.0.0.1"))
    assert not web_metrics._allowed(req("203.0.113.9"))
    assert not web_metrics._allowed(req("203.0.113.9", "Bearer wrong"))
    assert web_metrics._allowed(req("203.0.113.9", "Bearer t0ken"))


def test_dialer_state_follows_running_campaigns() -> None:
    from types import SimpleNamespace

    from prometheus_client import generate_latest

    from cti.metrics import CtiCollector

    runner = SimpleNamespace(dialers={})
    c = CtiCollector(dialer=runner)
    assert samples(generate_latest(c).decode())[("cti_dialer_state", (("state", "off"),))] == 1  # type: ignore[arg-type]
    runner.dialers[7] = object()  # campaign 7 started (cti.outbound.runner.OutboundRunner.refresh)
    got = samples(generate_latest(c).decode())  # type: ignore[arg-type]
    assert got[("cti_dialer_state", (("state", "running"),))] == 1 and got[("cti_dialer_campaigns", ())] == 1

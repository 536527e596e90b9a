"""The report pages as a manager and an agent meet them: roles, charts without any external script,
masked downloads unless granted, every download logged, the order feed, a waiver."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from cti.clock import ManualClock
from cti.facts.repo import refresh_hourly
from cti.policy import load_policy
from cti.state.live import LiveState
from cti.web.app import Services, make_app
from cti.web.auth import add_user
from tests.weblogin import login


@pytest.fixture
async def client(db_url: str) -> AsyncIterator[tuple[TestClient, asyncpg.Pool]]:
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=4)
    async with pool.acquire() as conn:
        await conn.execute(
            """INSERT INTO agents (id, name, interface) VALUES ('agent1', '坐席一', 'PJSIP/agent1'),
               ('agent2', '坐席二', 'PJSIP/agent2')"""
        )
        await add_user(conn, "wang", "supervisor-pw", "supervisor")
        await add_user(conn, "li", "manager-pw-1", "manager", can_reveal_numbers=True)
        await add_user(conn, "agent1", "agent1-pw-x", "agent", agent_id="agent1")
        await conn.execute(
            """INSERT INTO call_facts (linkedid, started_at, did, caller_num, caller_masked, queue, outcome,
                                       answered_by, answered_at, hold_s, time_to_answer_s, talk_s)
               VALUES ('1.1', '2026-11-16T01:00:00Z', '4008001234', '13812345678', '138****5678', 'sales',
                       'answered', 'agent1', '2026-11-16T01:00:03Z', 3, 3.5, 60),
                      ('1.2', '2026-11-16T01:10:00Z', '4008009999', '13987654321', '139****4321', 'sales',
                       'abandoned', NULL, NULL, 20, NULL, NULL)"""
        )
        async with conn.transaction():  # the hourly rollups the pages read, as the facts writer keeps them
            await refresh_hourly(conn, load_policy().ring, datetime(2026, 11, 1, tzinfo=UTC), None)
        await conn.execute(
            """INSERT INTO fine_ledger (id, violation_id, rule, person, role, amount_fen, points, occurred_at,
                                        source_kind, source_id, derived_at)
               VALUES ('missed_call:1.2:agent1', 'missed_call:1.2', 'missed_call', 'agent1', 'agent', 1000, 0,
                       '2026-11-16T01:10:20Z', 'call', '1.2', now())"""
        )
    app = make_app(
        Services(pool=pool, live=LiveState(), clock=ManualClock(datetime(2026, 11, 16, 8, tzinfo=UTC)))
    )
    c = TestClient(TestServer(app))
    await c.start_server()
    yield c, pool
    await c.close()
    await pool.close()


async def test_supervisor_reads_the_day_page_with_inline_charts(client) -> None:  # type: ignore[no-untyped-def]
    c, _ = client
    assert (await c.get("/reports", allow_redirects=False)).status == 302  # login first
    await login(c, "wang", "supervisor-pw")
    page = await (await c.get("/reports?day=2026-11-16")).text()
    assert "日报" in page and "来电与服务水平" in page and page.count("<svg") == 5
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    data = await (await c.get("/api/reports/day?day=2026-11-16")).json()
    assert (
        data["total"]["offered"] == 2 and data["total"]["answered"] == 1 and data["total"]["abandoned"] == 1
    )
    assert [r["key"] for r in data["by_hour"]] == ["2026-11-16 09:00"]  # 01:00 UTC is 09:00 in Shanghai
    assert {r["key"]: r["calls"] for r in data["by_did"]} == {"4008001234": 1, "4008009999": 1}
    assert data["fines"]["fen_by_person"] == {"agent1": 1000}
    # agent1's one call: 60 s, no order, no follow-up: an inquiry, within its 3 minutes
    assert data["handling"] == {"agent1": {"inquiry": {"calls": 1, "within_target": 1.0}}}
    assert (await c.get("/api/reports/day?day=16.11.2026")).status == 400


async def test_agents_may_not_read_reports(client) -> None:  # type: ignore[no-untyped-def]
    c, _ = client
    await login(c, "agent1", "agent1-pw-x")
    assert (await c.get("/reports")).status == 403
    assert (await c.get("/reports/call-log.csv?day=2026-11-16")).status == 403


async def test_downloads_masked_unless_granted_and_every_one_logged(client) -> None:  # type: ignore[no-untyped-def]
    c, pool = client
    await login(c, "wang", "supervisor-pw")
    r = await c.get("/reports/call-log.csv?day=2026-11-16")
    body = await r.read()
    assert body.startswith(b"\xef\xbb\xbf") and b"138****5678" in body and b"13812345678" not in body
    assert (await c.get("/reports/call-log.csv?day=2026-11-16&full=1")).status == 403
    c.session.cookie_jar.clear()
    await login(c, "li", "manager-pw-1")
    full = await (await c.get("/reports/call-log.xlsx?day=2026-11-16&full=1")).read()
    assert full[:2] == b"PK"  # a zip: the XLSX
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT username, report, full_numbers, rows FROM report_downloads ORDER BY id"
        )
    assert [tuple(r) for r in rows] == [
        ("wang", "call-log-2026-11-16.csv", False, 2),
        ("li", "call-log-2026-11-16-full.xlsx", True, 2),
    ]


async def test_order_feed_and_waiver_need_their_roles(client) -> None:  # type: ignore[no-untyped-def]
    c, pool = client
    await login(c, "wang", "supervisor-pw")
    order = {
        "external_id": "w1",
        "number": "13900000001",
        "agent": "agent2",
        "created_at": "2026-11-16T10:00",
    }
    assert (await c.post("/api/orders", json=[order])).status == 403  # a supervisor is not the order system
    r = await c.post("/api/fines/waive", json={"ledger_id": "missed_call:1.2:agent1", "reason": ""})
    assert r.status == 400 and "reason" in (await r.json())["error"]
    r = await c.post("/api/fines/waive", json={"ledger_id": "missed_call:1.2:agent1", "reason": "线路故障"})
    assert r.status == 200
    c.session.cookie_jar.clear()
    await login(c, "li", "manager-pw-1")
    r = await c.post("/api/orders", json=[order, {**order, "external_id": "w2", "number": "abc"}])
    assert r.status == 400 and "order 2: number is not a phone number" in (await r.json())["error"]
    assert (await c.post("/api/orders", json=[order])).status == 200
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT owner_agent FROM orders WHERE external_id = 'w1'") == "agent2"
        assert await conn.fetchval("SELECT waived_by FROM fine_waivers") == "wang"
    data = await (await c.get("/api/reports/day?day=2026-11-16")).json()
    assert data["fines"]["fen_by_person"] == {}  # waived
    entry = {"day": "2026-11-17", "shift": "morning", "supervisor": "agent2", "agents": ["agent1", "agent2"]}
    r = await c.post("/api/roster", json=[entry, {**entry, "agents": ["agent7"]}])
    assert r.status == 400 and "unknown agent(s) agent7" in (await r.json())["error"]
    assert (await c.post("/api/roster", json=[{"day": "17/11"}])).status == 400
    assert (await (await c.post("/api/roster", json=[entry])).json()) == {"saved": 1}
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT supervisor, agents, updated_by FROM roster")
    assert tuple(row) == ("agent2", ["agent1", "agent2"], "li")
    assert data["race"]["day"] == {"agent2": 1}

"""The monitor as a supervisor meets it: login, roles, masked numbers, live push, audited reveal."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from cti.clock import ManualClock
from cti.state.live import LiveState
from cti.web.app import Services, make_app
from cti.web.auth import add_user

T0 = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)
TS = T0.timestamp()


def ev(name: str, **h: str) -> dict[str, str]:
    return {"Event": name, **h}


def queue_with_caller(live: LiveState) -> None:
    live.apply(ev("QueueMemberAdded", Queue="sales", MemberName="agent1", Interface="PJSIP/agent1",
                  StateInterface="PJSIP/agent1", Membership="dynamic", Penalty="0", CallsTaken="0",
                  LastCall="0", LastPause="0", LoginTime=str(int(TS)), InCall="0", Status="1", Paused="0",
                  PausedReason="", Ringinuse="0", Wrapuptime="0"), TS)  # fmt: skip
    live.apply(ev("Newchannel", Channel="PJSIP/trunk-00000001", ChannelState="4", ChannelStateDesc="Ring",
                  CallerIDNum="13812345678", CallerIDName="张三", Uniqueid="1763928000.1",
                  Linkedid="1763928000.1", Exten="4008001234", Context="from-trunk"), TS)  # fmt: skip
    live.apply(ev("QueueCallerJoin", Channel="PJSIP/trunk-00000001", CallerIDNum="13812345678",
                  CallerIDName="张三", Uniqueid="1763928000.1", Linkedid="1763928000.1", Queue="sales",
                  Position="1", Count="1"), TS)  # fmt: skip


@pytest.fixture
async def web(db_url: str) -> AsyncIterator[tuple[TestClient, LiveState, ManualClock, asyncpg.Pool]]:
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=4)
    async with pool.acquire() as conn:
        await add_user(conn, "wang", "supervisor-pw", "supervisor", display_name="王主管")
        await add_user(conn, "li", "manager-pw-1", "manager", can_reveal_numbers=True)
        await conn.execute(
            "INSERT INTO agents (id, name, interface) VALUES ('agent1', '坐席一', 'PJSIP/agent1')"
        )
        await add_user(conn, "agent1", "agent1-pw-x", "agent", agent_id="agent1")
    live = LiveState()
    clock = ManualClock(T0)
    peak = {"mode": "auto", "active": False}

    async def set_peak(mode: str, by: str) -> dict[str, object]:
        peak.update(mode=mode, active=mode == "on", by=by)
        return peak

    async def peak_status() -> dict[str, object]:
        return dict(peak)

    app = make_app(Services(pool=pool, live=live, clock=clock, peak_status=peak_status, set_peak=set_peak,
                            push_interval_s=0.01))  # fmt: skip
    client = TestClient(TestServer(app))
    await client.start_server()
    yield client, live, clock, pool
    await client.close()
    await pool.close()


async def login(client: TestClient, user: str, pw: str) -> aiohttp.ClientResponse:
    return await client.post("/login", data={"username": user, "password": pw}, allow_redirects=False)


async def test_pages_require_login(web):
    client, *_ = web
    r = await client.get("/", allow_redirects=False)
    assert r.status == 302 and r.headers["Location"] == "/login"
    assert (await client.get("/api/snapshot")).status == 401
    assert (await client.get("/healthz")).status == 200


async def test_wrong_password_is_refused_in_both_languages(web):
    client, *_ = web
    r = await login(client, "wang", "nope-nope")
    assert r.status == 401
    assert "用户名或密码错误" in await r.text()
    assert (await client.get("/api/snapshot")).status == 401


async def test_supervisor_sees_the_queue_with_masked_numbers(web):
    client, live, clock, _ = web
    queue_with_caller(live)
    clock.advance(12)
    assert (await login(client, "wang", "supervisor-pw")).status == 302
    page = await client.get("/")
    assert "队列监控" in await page.text()
    snap = await (await client.get("/api/snapshot")).json()
    q = snap["queues"][0]
    assert q["name"] == "sales" and q["counts"]["waiting"] == 1 and q["counts"]["free"] == 1
    assert q["callers"][0]["number"] == "138****5678" and q["callers"][0]["wait_s"] == 12
    assert "13812345678" not in json.dumps(snap)


async def test_agents_may_not_open_the_monitor(web):
    client, *_ = web
    await login(client, "agent1", "agent1-pw-x")
    r = await client.get("/", allow_redirects=False)  # an agent lands on their own panel instead
    assert r.status == 302 and r.headers["Location"] == "/desk"
    assert (await client.get("/api/snapshot")).status == 403


async def test_only_supervisors_switch_peak_mode(web):
    client, *_ = web
    await login(client, "li", "manager-pw-1")
    assert (await client.post("/api/peak", json={"mode": "on"})).status == 403
    await client.post("/logout", allow_redirects=False)
    await login(client, "wang", "supervisor-pw")
    assert (await client.post("/api/peak", json={"mode": "sideways"})).status == 400
    r = await client.post("/api/peak", json={"mode": "on"})
    assert r.status == 200 and (await r.json())["by"] == "wang"
    snap = await (await client.get("/api/snapshot")).json()
    assert snap["peak"]["active"] is True


async def test_reveal_needs_the_grant_a_reason_and_leaves_an_audit_row(web):
    client, live, _, pool = web
    queue_with_caller(live)
    await login(client, "wang", "supervisor-pw")
    assert (await client.post("/api/reveal", json={"uniqueid": "1763928000.1", "reason": "x"})).status == 403
    await client.post("/logout", allow_redirects=False)
    await login(client, "li", "manager-pw-1")
    assert (await client.post("/api/reveal", json={"uniqueid": "1763928000.1", "reason": ""})).status == 400
    r = await client.post("/api/reveal", json={"uniqueid": "1763928000.1", "reason": "客户投诉 complaint"})
    assert (await r.json())["number"] == "13812345678"
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT username, subject, reason FROM number_reveals")
    assert [tuple(r) for r in rows] == [("li", "1763928000.1", "客户投诉 complaint")]


async def test_logout_ends_the_session(web):
    client, *_ = web
    await login(client, "wang", "supervisor-pw")
    assert (await client.get("/api/snapshot")).status == 200
    await client.post("/logout", allow_redirects=False)
    assert (await client.get("/api/snapshot")).status == 401


async def test_changes_are_pushed_to_the_browser(web):
    client, live, *_ = web
    await login(client, "wang", "supervisor-pw")
    ws = await client.ws_connect("/ws")
    first = json.loads((await ws.receive(timeout=5)).data)
    assert first["queues"] == []
    queue_with_caller(live)
    pushed = json.loads((await ws.receive(timeout=5)).data)
    assert pushed["queues"][0]["callers"][0]["number"] == "138****5678"
    await ws.close()
    await asyncio.sleep(0)

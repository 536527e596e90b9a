"""The admin's agents page and API (same provisioning as the CLI), and line-test results by API."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from cti.clock import ManualClock
from cti.state.live import LiveState
from cti.web.app import Services, make_app
from cti.web.auth import add_user
from tests.weblogin import login

T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


@pytest.fixture
async def web(db_url: str) -> AsyncIterator[tuple[TestClient, asyncpg.Pool]]:
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=4)
    async with pool.acquire() as conn:
        await add_user(conn, "root", "admin-pw-123", "admin")
        await add_user(conn, "wang", "supervisor-pw", "supervisor")
    client = TestClient(TestServer(make_app(Services(pool=pool, live=LiveState(), clock=ManualClock(T0)))))
    await client.start_server()
    yield client, pool
    await client.close()
    await pool.close()


async def test_admin_provisions_agents_in_the_browser(web) -> None:  # type: ignore[no-untyped-def]
    client, pool = web
    assert (await client.get("/api/admin/agents")).status == 401
    await login(client, "wang", "supervisor-pw")
    assert (await client.get("/admin/agents")).status == 403  # supervisors do not provision
    assert (await client.post("/api/admin/agents", json={"id": "a1", "name": "x"})).status == 403
    await login(client, "root", "admin-pw-123")
    assert "坐席与话机" in await (await client.get("/admin/agents")).text()

    r = await client.post("/api/admin/agents", json={"id": "agent7", "name": "李四", "did": "4008007777"})
    body = await r.json()
    assert r.status == 200 and body["id"] == "agent7"
    cred = await pool.fetchval("SELECT md5_cred FROM ps_auths WHERE id = 'agent7'")
    assert cred == hashlib.md5(f"agent7:cti:{body['password']}".encode()).hexdigest()
    r = await client.post("/api/admin/agents", json={"id": "agent7", "name": "again"})
    assert r.status == 409 and "already exists" in (await r.json())["error"]
    r = await client.post("/api/admin/agents", json={"id": "bad id", "name": "x"})
    assert r.status == 400 and "is not valid" in (await r.json())["error"]

    csv = "id,name,group,supervisor,did\nb1,甲,sales,agent7,\nb2,,sales,,\nb3,丙,sales,ghost,\n"
    r = await client.post("/api/admin/agents/import", data=csv.encode(), headers={"Content-Type": "text/csv"})
    body = await r.json()
    assert [a["id"] for a in body["added"]] == ["b1"]
    assert body["errors"] == [
        {"line": 3, "reason": "name is missing"},
        {"line": 4, "reason": "supervisor ghost is not a provisioned agent"},
    ]
    listed = {a["id"]: a for a in (await (await client.get("/api/admin/agents")).json())["agents"]}
    assert listed["b1"]["supervisor"] == "agent7" and listed["b1"]["phone"] is True
    assert all(
        set(a)
        == {
            "id",
            "name",
            "group_name",
            "supervisor",
            "did",
            "interface",
            "active",
            "sip_password_set_at",
            "phone",
        }
        for a in listed.values()
    )  # no secret, no hash

    assert (await client.post("/api/admin/agents/b1/disable")).status == 200
    assert await pool.fetchval("SELECT count(*) FROM ps_endpoints WHERE id = 'b1'") == 0
    assert (await client.post("/api/admin/agents/b1/disable")).status == 409
    r = await client.post("/api/admin/agents/b1/reset-password")
    assert r.status == 200 and len((await r.json())["password"]) == 16
    assert await pool.fetchval("SELECT count(*) FROM ps_endpoints WHERE id = 'b1'") == 1
    assert (await client.post("/api/admin/agents/nobody/reset-password")).status == 404


async def test_line_test_results_by_api(web) -> None:  # type: ignore[no-untyped-def]
    client, pool = web
    await pool.execute(
        """INSERT INTO line_test_runs (did, shift, slot_date, scheduled_at, status, reason, started_at,
                                  finished_at, duration_s, via)
           VALUES ('4008001234', 'morning', '2026-11-23', $1, 'passed', NULL, $1, $1, 3.2, 'schedule'),
                  ('4008001235', 'morning', '2026-11-23', $1, 'failed', 'busy', $1, $1, 1.0, 'schedule')""",
        T0 - timedelta(hours=1),
    )  # fmt: skip
    assert (await client.get("/api/linetests")).status == 401
    await login(client, "wang", "supervisor-pw")
    rows = (await (await client.get("/api/linetests")).json())["line_tests"]
    assert {(r["did"], r["status"], r["reason"]) for r in rows} == {
        ("4008001234", "passed", None), ("4008001235", "failed", "busy")}  # fmt: skip
    rows = (await (await client.get("/api/linetests?did=4008001235")).json())["line_tests"]
    assert [r["status"] for r in rows] == ["failed"]
    assert (await client.get("/api/linetests?days=0")).status == 400

"""Every route of the app, for every role and for nobody logged in, against a declared table of who
may use it. Routes are read from the router after every setup() ran, so a route added later fails
here until its author declares who may use it in ALLOWED."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from cti.clock import ManualClock
from cti.state.live import LiveState
from cti.web.app import Services, make_app
from cti.web.auth import add_user

T0 = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)
ROLES = ("agent", "supervisor", "manager", "admin")
EVERYONE = frozenset(ROLES)
MON = frozenset({"supervisor", "manager", "admin"})
STEER = frozenset({"supervisor", "admin"})
MGR = frozenset({"manager", "admin"})
AGENT = frozenset({"agent"})
PUBLIC_ROUTE = None  # no login needed

# (method, path as registered) -> roles that may use it. A new route must be added here.
ALLOWED: dict[tuple[str, str], frozenset[str] | None] = {
    ("GET", "/login"): PUBLIC_ROUTE,
    ("POST", "/login"): PUBLIC_ROUTE,
    ("GET", "/healthz"): PUBLIC_ROUTE,
    ("POST", "/logout"): EVERYONE,
    ("GET", "/"): MON,  # agents are sent on to /desk
    ("GET", "/api/snapshot"): MON,
    ("POST", "/api/peak"): STEER,
    ("POST", "/api/reveal"): frozenset(),  # no role as such: a user granted can_reveal_numbers (below)
    ("GET", "/ws"): MON,
    ("GET", "/reports"): MON,
    ("GET", "/api/reports/{period}"): MON,
    ("GET", "/reports/call-log.{fmt}"): MON,
    ("POST", "/api/orders"): MGR,
    ("POST", "/api/fines/waive"): MON,
    ("POST", "/api/roster"): frozenset({"supervisor", "manager", "admin"}),
    ("GET", "/desk"): AGENT,
    ("GET", "/api/desk/state"): AGENT,
    ("POST", "/api/desk/request"): AGENT,
    ("POST", "/api/desk/disposition"): AGENT,
    ("GET", "/api/desk/records"): AGENT,
    ("POST", "/api/desk/call"): AGENT,
    ("GET", "/api/desk/day"): AGENT,
    ("GET", "/api/desk/ws"): AGENT,
    ("GET", "/wallboard"): MON,
    ("GET", "/api/wallboard"): MON,
    ("GET", "/api/wallboard/ws"): MON,
    ("POST", "/api/wallboard/agent"): STEER,
    ("POST", "/api/wallboard/spy"): STEER,
    ("GET", "/api/recordings/{id}"): MON,
    ("GET", "/api/wallboard/recordings"): MON,
    ("GET", "/api/audit"): MGR,
    # routes of admin / quality / outbound / metrics (merged while this table was written): what
    # they enforce today, for their owners to confirm
    ("GET", "/admin/agents"): frozenset({"admin"}),
    ("GET", "/admin/policy"): frozenset({"manager", "admin"}),
    ("GET", "/api/admin/policy"): frozenset({"manager", "admin"}),
    ("POST", "/api/admin/policy"): frozenset({"manager", "admin"}),
    ("POST", "/api/admin/policy/unset"): frozenset({"manager", "admin"}),
    ("GET", "/api/admin/agents"): frozenset({"admin"}),
    ("GET", "/api/linetests"): frozenset({"admin", "manager", "supervisor"}),
    ("GET", "/api/outbound/campaigns"): frozenset({"admin", "manager", "supervisor"}),
    ("GET", "/api/outbound/campaigns/{id}/preview"): frozenset({"admin", "agent", "manager", "supervisor"}),
    ("GET", "/api/outbound/export"): frozenset({"admin", "manager", "supervisor"}),
    ("GET", "/api/outbound/funnel"): frozenset({"admin", "manager", "supervisor"}),
    ("GET", "/api/outbound/pacing"): frozenset({"admin", "manager", "supervisor"}),
    ("GET", "/api/quality/alarms"): frozenset({"admin", "manager", "supervisor"}),
    ("GET", "/api/quality/forms"): frozenset({"admin", "manager", "supervisor"}),
    ("GET", "/api/quality/samples"): frozenset({"admin", "agent", "manager", "supervisor"}),
    ("GET", "/api/quality/scores"): frozenset({"admin", "agent", "manager", "supervisor"}),
    ("GET", "/api/reports/quality"): frozenset({"admin", "manager", "supervisor"}),
    ("GET", "/metrics"): PUBLIC_ROUTE,  # loopback without login, a bearer token from elsewhere
    ("GET", "/quality"): frozenset({"admin", "agent", "manager", "supervisor"}),
    ("GET", "/recordings/{id}/audio"): frozenset({"admin", "manager", "supervisor"}),
    ("GET", "/reports/quality"): frozenset({"admin", "manager", "supervisor"}),
    ("GET", "/reports/quality.{fmt}"): frozenset({"admin", "manager", "supervisor"}),
    ("POST", "/api/admin/agents"): frozenset({"admin"}),
    ("POST", "/api/admin/agents/import"): frozenset({"admin"}),
    ("POST", "/api/admin/agents/{agent_id}/disable"): frozenset({"admin"}),
    ("POST", "/api/admin/agents/{agent_id}/reset-password"): frozenset({"admin"}),
    ("POST", "/api/outbound/assignments"): frozenset({"admin", "manager", "supervisor"}),
    ("POST", "/api/outbound/campaigns"): frozenset({"admin", "manager", "supervisor"}),
    ("POST", "/api/outbound/campaigns/{id}/preview/{cid}/dial"): frozenset({"agent"}),
    ("POST", "/api/outbound/campaigns/{id}/status"): frozenset({"admin", "manager", "supervisor"}),
    ("POST", "/api/outbound/dials/{id}/disposition"): frozenset({"admin", "agent", "manager", "supervisor"}),
    ("POST", "/api/outbound/dnc"): frozenset({"admin", "manager", "supervisor"}),
    ("POST", "/api/quality/draw"): frozenset({"admin", "manager", "supervisor"}),
    ("POST", "/api/quality/forms"): frozenset({"admin", "manager"}),
    ("POST", "/api/quality/samples"): frozenset({"admin", "manager", "supervisor"}),
    ("POST", "/api/quality/samples/{id}/score"): frozenset({"admin", "manager", "supervisor"}),
}


def routes(app: web.Application) -> list[tuple[str, str]]:
    out = set()
    for r in app.router.routes():
        if r.method == "HEAD":  # aiohttp adds one beside every GET: same handler
            continue
        info = r.resource.get_info() if r.resource else {}
        path = info.get("path") or re.sub(r"\{(\w+):[^}]*\}", r"{\1}", info.get("formatter", ""))
        out.add((r.method, path))
    return sorted(out)


def concrete(path: str) -> str:
    return (
        path.replace("{period}", "day")
        .replace("{fmt}", "csv")
        .replace("{id}", "1")
        .replace("{cid}", "1")
        .replace("{agent_id}", "agent2")
    )


@pytest.fixture
async def app_client(db_url: str) -> AsyncIterator[tuple[TestClient, asyncpg.Pool]]:
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=4)
    async with pool.acquire() as conn:
        await conn.execute("INSERT INTO agents (id, name, interface) VALUES ('agent1', 'a1', 'PJSIP/agent1'),"
                           " ('agent2', 'a2', 'PJSIP/agent2')")  # fmt: skip
        for role in ROLES:
            await add_user(
                conn, role, f"{role}-password", role, agent_id="agent1" if role == "agent" else None
            )
        await add_user(conn, "agent2", "agent2-password", "agent", agent_id="agent2")
        await add_user(conn, "revealer", "revealer-password", "manager", can_reveal_numbers=True)
    app = make_app(Services(pool=pool, live=LiveState(), clock=ManualClock(T0)))
    client = TestClient(TestServer(app))
    await client.start_server()
    yield client, pool
    await client.close()
    await pool.close()


async def _as(client: TestClient, user: str | None) -> None:
    client.session.cookie_jar.clear()
    if user:
        r = await client.post("/login", data={"username": user, "password": f"{user}-password"},
                              allow_redirects=False)  # fmt: skip
        assert r.status == 302, user


def test_every_route_declares_who_may_use_it():
    app = make_app(Services(pool=None, live=LiveState()))  # type: ignore[arg-type]
    found = routes(app)
    undeclared = [r for r in found if r not in ALLOWED]
    assert not undeclared, f"declare these routes in ALLOWED (who may use them): {undeclared}"
    gone = [r for r in ALLOWED if r not in found]
    assert not gone, f"routes in ALLOWED that no longer exist: {gone}"


async def test_every_route_for_every_role_and_for_nobody(app_client):
    client, _pool = app_client
    failures = []
    for who in (None, *ROLES):
        await _as(client, who)
        for method, path in routes(client.server.app):
            allowed = ALLOWED.get((method, path), frozenset())
            r = await client.request(method, concrete(path), json={}, allow_redirects=False)
            status = r.status
            login_wall = "login required" in await r.text() or r.headers.get("Location") == "/login"
            if allowed is PUBLIC_ROUTE:
                ok = status != 403 and not login_wall  # (401 on POST /login is a wrong password)
            elif who is None:  # never logged in: the login page, or 401 for an API
                ok = status == 401 or (status == 302 and r.headers["Location"] == "/login")
            elif who in allowed:
                ok = status not in (401, 403)
            else:
                ok = status == 403 or (
                    who == "agent" and path == "/" and r.headers.get("Location") == "/desk"
                )
            if not ok:
                failures.append((who, method, path, status))
            if path == "/logout" and who is not None and status == 302:
                await _as(client, who)  # logging out worked: log in again for the next routes
    assert not failures, failures


async def test_an_agent_gets_no_other_agents_data_nor_a_full_number(app_client):
    client, _pool = app_client
    await _as(client, "agent")
    # the desk serves the session's own agent: a parameter naming another is not a way in
    for path in (
        "/api/desk/state?agent=agent2",
        "/api/desk/records?agent_id=agent2",
        "/api/desk/day?agent=agent2",
    ):
        r = await client.get(path)
        assert r.status in (200, 503) and "agent2" not in await r.text(), path
    # routes that take an agent: another agent's is refused outright, not answered empty
    for path in ("/api/quality/scores?agent=agent2", "/api/quality/samples?agent=agent2"):
        assert (await client.get(path)).status == 403, path
    assert (await client.get("/api/quality/scores?agent=agent1")).status == 200
    assert (await client.post("/api/wallboard/agent", json={"agent": "agent2", "op": "logout"})).status == 403
    assert (await client.post("/api/reveal", json={"uniqueid": "1", "reason": "curious"})).status == 403
    assert (await client.get("/reports/call-log.csv?full=1")).status == 403
    assert (await client.get("/api/recordings/1")).status == 403
    assert (await client.get("/api/audit")).status == 403
    await _as(client, "supervisor")  # a monitor role without the grant
    r = await client.post("/api/reveal", json={"uniqueid": "1", "reason": "need it"})
    assert r.status == 403 and "无查看完整号码权限" in await r.text()
    await _as(client, "revealer")  # granted: past the role check, to the (empty) queue
    assert (await client.post("/api/reveal", json={"uniqueid": "1", "reason": "need it"})).status == 404


async def test_a_manager_reads_reveals_recording_plays_and_exports_in_one_log(app_client):
    client, pool = app_client
    await pool.execute(
        """INSERT INTO number_reveals (at, username, subject, reason) VALUES
             ($1, 'revealer', '1764380000.1', 'customer asked'),
             ($1, 'supervisor', 'recording:7', 'play recording')""",
        T0,
    )
    await pool.execute(
        """INSERT INTO recording_playbacks (at, username, role, recording_id, linkedid, byte_range)
           VALUES ($1, 'admin', 'admin', 9, '1764380000.9', 'bytes=0-');
           INSERT INTO data_exports (at, username, role, what, rows, allowed)
           VALUES ($1, 'agent', 'agent', 'list 春季回访', 0, false)""".replace("$1", "'2026-11-29T02:00Z'")
    )
    await _as(client, "manager")
    r = await client.get("/reports/call-log.csv?day=2026-11-29")
    assert r.status == 200
    await r.read()  # the download is logged before the body ends, not before the headers
    r = await client.get("/api/audit")
    entries = (await r.json())["entries"]
    got = {(e["username"], e["action"]) for e in entries}
    assert {
        ("revealer", "number_reveal"),
        ("supervisor", "recording_play"),
        ("manager", "export"),
        ("admin", "recording_play"),
        ("agent", "export"),
    } <= got
    refused = next(e for e in entries if e["username"] == "agent")
    assert refused["detail"].startswith("REFUSED")
    only = (await (await client.get("/api/audit?action=export")).json())["entries"]
    assert only and all(e["action"] == "export" for e in only)
    assert (await client.get("/api/audit?action=drop-table")).status == 400
    assert (await client.get("/api/audit?since=yesterday")).status == 400

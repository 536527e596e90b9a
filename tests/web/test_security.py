"""Web security as a browser meets it: cross-site requests refused on every state-changing route
(read from the router, so later routes are covered), form tokens, headers and CSP nonces on every
page, cookie flags, session expiry and logout, login lockout shared through the database."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from cti.clock import ManualClock
from cti.state.live import LiveState
from cti.web.app import Services, make_app
from cti.web.auth import add_user
from cti.web.security import UNSAFE, WebSecurity, cross_site

T0 = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)
EVIL = "https://evil.example"


async def _client(pool: asyncpg.Pool, clock: ManualClock, sec: WebSecurity) -> TestClient:
    client = TestClient(
        TestServer(make_app(Services(pool=pool, live=LiveState(), clock=clock, security=sec)))
    )
    await client.start_server()
    return client


@pytest.fixture
async def rig(db_url: str) -> AsyncIterator[tuple[TestClient, ManualClock, asyncpg.Pool]]:
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=4)
    async with pool.acquire() as conn:
        await add_user(conn, "wang", "supervisor-pw", "supervisor")
    clock = ManualClock(T0)
    client = await _client(pool, clock, WebSecurity(trusted_proxies=frozenset({"127.0.0.1"})))
    yield client, clock, pool
    await client.close()
    await pool.close()


async def login(client: TestClient, user: str = "wang", pw: str = "supervisor-pw", **kw):  # type: ignore[no-untyped-def]
    return await client.post("/login", data={"username": user, "password": pw}, allow_redirects=False, **kw)


def _unsafe_routes(app: web.Application) -> list[tuple[str, str]]:
    out = []
    for r in app.router.routes():
        info = r.resource.get_info() if r.resource else {}
        path = info.get("path") or info.get("formatter", "")
        if r.method in UNSAFE:
            out.append((r.method, re.sub(r"\{[^}]+\}", "1", path)))
    return out


async def test_every_state_changing_route_refuses_a_cross_site_request(rig):
    client, _clock, _pool = rig
    assert (await login(client)).status == 302
    routes = _unsafe_routes(client.server.app)
    assert ("POST", "/api/peak") in routes and ("POST", "/logout") in routes
    for method, path in routes:
        for headers in ({"Origin": EVIL}, {"Sec-Fetch-Site": "cross-site"}, {"Referer": EVIL + "/x"},
                        {"Origin": "null"}):  # fmt: skip
            r = await client.request(method, path, json={"mode": "on"}, headers=headers)
            assert r.status == 403, (method, path, headers, r.status)
            assert "跨站" in await r.text()
    # the session survived all that: a refused logout did not log anyone out
    assert (await client.get("/api/snapshot")).status == 200


async def test_a_same_origin_request_passes(rig):
    client, _clock, _pool = rig
    await login(client)
    own = f"http://{client.host}:{client.port}"
    r = await client.post(
        "/api/peak", json={"mode": "bogus"}, headers={"Origin": own, "Sec-Fetch-Site": "same-origin"}
    )
    assert r.status == 503  # reached the handler (no peak control in this rig), not refused


async def test_a_websocket_from_another_site_is_refused(rig):
    client, _clock, _pool = rig
    await login(client)
    with pytest.raises(Exception):  # noqa: B017 - aiohttp's handshake error
        await client.ws_connect("/ws", headers={"Origin": EVIL})
    ws = await client.ws_connect("/ws", headers={"Origin": f"http://{client.host}:{client.port}"})
    assert "queues" in (await ws.receive_str())
    await ws.close()


def test_origin_judgement_behind_a_tls_proxy_compares_hosts():
    assert cross_site("POST", {"Origin": "https://cti.example.cn"}, "cti.example.cn") is None
    assert cross_site("POST", {"Origin": "https://cti.example.cn:443"}, "cti.example.cn") is None
    assert cross_site("POST", {"Origin": "https://cti.example.cn.evil.io"}, "cti.example.cn") is not None
    assert cross_site("POST", {"Sec-Fetch-Site": "same-site"}, "cti.example.cn") is not None
    assert cross_site("POST", {}, "cti.example.cn") is None  # not a browser page


async def test_pages_carry_the_csp_nonce_on_every_inline_script_and_the_form_token(rig):
    client, _clock, _pool = rig
    await login(client)
    for path in ("/", "/reports", "/login"):
        r = await client.get(path)
        html = await r.text()
        csp = r.headers["Content-Security-Policy"]
        nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
        assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        tags = re.findall(r"<(?:script|style)\b[^>]*>", html)
        assert tags and all(f'nonce="{nonce}"' in t for t in tags), (path, tags)
        assert r.headers["X-Content-Type-Options"] == "nosniff" and r.headers["X-Frame-Options"] == "DENY"
        assert r.headers["Referrer-Policy"] == "same-origin"
    again = (await client.get("/")).headers["Content-Security-Policy"]
    assert again != csp  # a fresh nonce per response


async def test_a_form_post_needs_the_sessions_token(rig):
    client, _clock, _pool = rig
    await login(client)
    html = await (await client.get("/")).text()
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html).group(1)
    assert (await client.post("/logout", data={}, allow_redirects=False)).status == 403
    assert (await client.post("/logout", data={"csrf_token": "0" * 32}, allow_redirects=False)).status == 403
    assert (await client.get("/api/snapshot")).status == 200
    r = await client.post("/logout", data={"csrf_token": token}, allow_redirects=False)
    assert r.status == 302


async def test_logout_kills_the_session_on_the_server(rig):
    client, _clock, pool = rig
    r = await login(client)
    cookie = r.cookies["cti_session"].value
    html = await (await client.get("/")).text()
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html).group(1)
    await client.post("/logout", data={"csrf_token": token}, allow_redirects=False)
    assert await pool.fetchval("SELECT count(*) FROM web_sessions") == 0
    # the old cookie replayed by hand is worthless
    client.session.cookie_jar.clear()
    r = await client.get("/api/snapshot", cookies={"cti_session": cookie})
    assert r.status == 401


async def test_the_session_cookie_is_httponly_strict_and_secure_only_over_tls(rig):
    client, _clock, _pool = rig
    plain = (await login(client)).headers["Set-Cookie"]
    assert "HttpOnly" in plain and "SameSite=Strict" in plain and "Secure" not in plain
    # 127.0.0.1 is a trusted proxy in this rig: its X-Forwarded-Proto is believed
    tls = (await login(client, headers={"X-Forwarded-Proto": "https"})).headers
    assert "Secure" in tls["Set-Cookie"] and "max-age" in tls["Strict-Transport-Security"]


async def test_an_untrusted_peer_cannot_claim_tls(db_url):
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=2)
    async with pool.acquire() as conn:
        await add_user(conn, "wang", "supervisor-pw", "supervisor")
    client = await _client(pool, ManualClock(T0), WebSecurity())
    try:
        r = await login(client, headers={"X-Forwarded-Proto": "https"})
        assert r.status == 302 and "Secure" not in r.headers["Set-Cookie"]
    finally:
        await client.close()
        await pool.close()


async def test_sessions_expire_when_idle_and_after_their_lifetime(rig):
    client, clock, pool = rig
    await login(client)
    clock.advance(29 * 60)
    assert (await client.get("/api/snapshot")).status == 200
    clock.advance(31 * 60)  # 31 min idle since the last request
    assert (await client.get("/api/snapshot")).status == 401
    assert await pool.fetchval("SELECT count(*) FROM web_sessions") == 0
    await login(client)
    for _ in range(12 * 3 - 1):  # busy all day, one request every 20 minutes
        assert (await client.get("/api/snapshot")).status == 200
        clock.advance(20 * 60)
    clock.advance(20 * 60)
    assert (await client.get("/api/snapshot")).status == 401  # 12 h after login, however busy


async def test_login_locks_a_user_after_five_failures_even_with_the_right_password(rig):
    client, clock, _pool = rig
    for _ in range(5):
        assert (await login(client, pw="wrong-password")).status == 401
    r = await login(client)
    assert r.status == 429 and int(r.headers["Retry-After"]) > 0
    assert "尝试次数过多" in await r.text()
    clock.advance(16 * 60)
    assert (await login(client)).status == 302


async def test_the_lockout_is_shared_by_two_processes_and_counts_per_address(db_url):
    pool_a = await asyncpg.create_pool(db_url, min_size=1, max_size=2)
    pool_b = await asyncpg.create_pool(db_url, min_size=1, max_size=2)
    async with pool_a.acquire() as conn:
        await add_user(conn, "wang", "supervisor-pw", "supervisor")
        await add_user(conn, "li", "manager-pw-1", "manager")
    clock = ManualClock(T0)
    sec = WebSecurity(login_max_failures=3, login_max_failures_per_address=6)
    a, b = await _client(pool_a, clock, sec), await _client(pool_b, clock, sec)
    try:
        for _ in range(3):
            await login(a, pw="nope-nope")
        assert (await login(b)).status == 429  # the other process knows
        for n in range(3):
            await login(b, user=f"ghost{n}", pw="nope-nope")
        # six failures from this address: li, who never failed, is refused from here too
        assert (await login(a, user="li", pw="manager-pw-1")).status == 429
        clock.advance(timedelta(minutes=16).total_seconds())
        assert (await login(a, user="li", pw="manager-pw-1")).status == 302
    finally:
        await a.close(), await b.close()
        await pool_a.close(), await pool_b.close()


async def test_a_body_that_is_not_json_or_carries_nul_is_a_400_for_every_handler(rig):
    client, _clock, pool = rig
    async with pool.acquire() as conn:
        await add_user(conn, "li", "manager-pw-1", "manager", can_reveal_numbers=True)
    await login(client, "li", "manager-pw-1")
    r = await client.post("/api/reveal", data=b"\xff{not json", headers={"Content-Type": "application/json"})
    assert r.status == 400 and "JSON" in await r.text()
    r = await client.post("/api/reveal", json={"uniqueid": "1\u0000", "reason": "x"})
    assert r.status == 400 and "NUL" in await r.text()
    assert (await client.get("/api/reports/day?day=%00")).status == 400

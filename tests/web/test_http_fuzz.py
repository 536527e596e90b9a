"""Property-based HTTP fuzzing: every route of the app (read from the router, so a route added later is
fuzzed too), as a role allowed to use it, with generated path parameters, query strings and bodies
(JSON of any shape, or not JSON at all). A 5xx is a failure, except 503 from an optional part this
floor does not run (peak control) — its body says "not running".

The app runs on the desk floor (a simulated PBX, AMI, AgentService, DeskService: tests/desk/rig.py)
in a thread of its own, so hypothesis drives it from a plain synchronous test."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cti.web.auth import add_user
from tests.desk.rig import PASSWORDS, floor
from tests.web.test_role_matrix import ALLOWED, PUBLIC_ROUTE, ROLES, routes

USERS = {"agent": "agent1", "supervisor": "wang", "manager": "mgr", "admin": "adm"}
PW = {**PASSWORDS, "mgr": "manager-pw-1", "adm": "admin-pw-12"}
# not fuzzed: logging out ends the very session the fuzzing uses (it has no inputs anyway)
SKIP = {("POST", "/logout")}

FIELDS = """mode uniqueid reason op agent id kind ledger_id undo day shift agents group name items status
number did username password role display_name queue period by limit since action user full score answers
form version comment contacts contact_ids campaign list cid disposition outcome note product order
customer rows file csv month from to""".split()
TRICKY = ["", "0", "-1", "2026-02-30", "13812345678", "../../etc/passwd", "agent2", "on", "{}"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True),
                    st.text(max_size=40), st.sampled_from(TRICKY))  # fmt: skip
keys = st.one_of(st.sampled_from(FIELDS), st.text(max_size=12))
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)
bodies = st.one_of(
    st.dictionaries(keys, json_values, max_size=6).map(lambda d: ("json", json.dumps(d).encode())),
    json_values.map(lambda v: ("json", json.dumps(v).encode())),
    st.binary(max_size=200).map(lambda b: ("raw", b)),
    st.dictionaries(keys, st.text(max_size=30), max_size=5).map(
        lambda d: ("form", "&".join(f"{quote(k)}={quote(v)}" for k, v in d.items()).encode())
    ),
)
queries = st.dictionaries(keys, st.text(max_size=30), max_size=5)
path_params = st.one_of(st.integers(-5, 10**12).map(str), st.text(min_size=1, max_size=20))


class Floor:
    """The desk floor on its own event loop in a thread, with a session per role."""

    def __init__(self, url_factory: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._url_factory = url_factory
        self.cookies: dict[str, str] = {}

    def call(self, coro: Any, timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def start(self) -> None:
        self._db = await self._url_factory()
        self._cm = floor(self._db)
        self.fl = await self._cm.__aenter__()
        async with self.fl.pool.acquire() as conn:
            await add_user(conn, "mgr", PW["mgr"], "manager", can_reveal_numbers=True)
            await add_user(conn, "adm", PW["adm"], "admin")
        self.http = aiohttp.ClientSession(self.fl.url, cookie_jar=aiohttp.DummyCookieJar())
        for role, user in USERS.items():
            r = await self.http.post(
                "/login", data={"username": user, "password": PW[user]}, allow_redirects=False
            )
            assert r.status == 302, (role, r.status)
            self.cookies[role] = r.cookies["cti_session"].value

    async def stop(self) -> None:
        await self.http.close()
        await self._cm.__aexit__(None, None, None)

    async def request(self, method: str, path: str, role: str | None, query: dict[str, str],
                      body: tuple[str, bytes]) -> tuple[int, str]:  # fmt: skip
        kind, data = body
        ctype = {"json": "application/json", "form": "application/x-www-form-urlencoded"}.get(
            kind, "application/octet-stream"
        )
        cookies = {"cti_session": self.cookies[role]} if role else {}
        send = {"data": data, "headers": {"Content-Type": ctype}} if method != "GET" else {}
        async with self.http.request(method, path, params=query, cookies=cookies, allow_redirects=False,
                                     **send) as r:  # fmt: skip
            text = await r.text(errors="replace")
            return r.status, text[:300]


@pytest.fixture(scope="module")
def live(pg_server) -> Iterator[Floor]:  # type: ignore[no-untyped-def]
    f = Floor(pg_server.new_database_url)
    f.call(f.start())
    yield f
    f.call(f.stop())
    f.loop.call_soon_threadsafe(f.loop.stop)
    f.thread.join(5)


def _route_table() -> list[tuple[str, str]]:
    from cti.state.live import LiveState
    from cti.web.app import Services, make_app

    app = make_app(Services(pool=None, live=LiveState()))  # type: ignore[arg-type]
    return [r for r in routes(app) if r not in SKIP]


ROUTES = _route_table()


def _fill(path: str, value: str) -> str:
    import re

    return re.sub(r"\{[^}]+\}", lambda _m: quote(value, safe=""), path)


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_no_input_makes_an_endpoint_fail_with_a_server_error(live, method, path):
    allowed = ALLOWED.get((method, path))
    roles = [None] if allowed is PUBLIC_ROUTE else sorted(allowed or ROLES)

    @settings(max_examples=40, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])  # fmt: skip
    @given(role=st.sampled_from(roles), param=path_params, query=queries, body=bodies)
    def check(role: str | None, param: str, query: dict[str, str], body: tuple[str, bytes]) -> None:
        status, text = live.call(live.request(method, _fill(path, param), role, query, body))
        if status == 503 and "not running" in text:
            return  # an optional part this floor does not run
        assert status < 500, (method, path, role, param, query, body, status, text)

    check()

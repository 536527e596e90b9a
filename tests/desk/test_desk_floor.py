"""The desk and the wallboard against PostgreSQL and the simulated PBX, through HTTP and websockets
as a browser uses them: login, R-BREAK and peak refusals, a call popping the agent's screen (masked),
a disposition with its callback and DNC rows, the wallboard's alarm, and no full number anywhere an
agent can reach."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from tests.desk.rig import CUSTOMER, PASSWORDS, floor, until


async def session_for(url: str, user: str) -> aiohttp.ClientSession:
    s = aiohttp.ClientSession(base_url=url, cookie_jar=aiohttp.CookieJar(unsafe=True))
    r = await s.post("/login", data={"username": user, "password": PASSWORDS[user]}, allow_redirects=False)
    assert r.status == 302
    return s


async def act(s: aiohttp.ClientSession, op: str, reason: str | None = None) -> tuple[int, dict]:
    r = await s.post("/api/desk/request", json={"op": op, "reason": reason})
    return r.status, await r.json()


@pytest.fixture
async def fl(db_url: str):
    async with floor(db_url) as f:
        yield f


async def test_third_break_is_refused_naming_who_is_out_and_until_when(fl) -> None:
    ss = {n: await session_for(fl.url, f"agent{n}") for n in (1, 2, 3)}
    try:
        for s in ss.values():
            assert (await act(s, "login"))[0] == 200
        assert (await act(ss[1], "pause", "break"))[0] == 200
        assert (await act(ss[2], "pause", "lunch"))[0] == 200
        status, d = await act(ss[3], "pause", "toilet")
        assert status == 409 and d["code"] == "break_limit"
        assert [(o["agent"], o["until"]) for o in d["out"]] == [("agent1", "10:40"), ("agent2", "10:40")]
        view = await (await ss[1].get("/api/desk/state")).json()
        assert (view["state"], view["pause_reason"], view["pause_until"]) == ("paused", "break", "10:40")
        # the refusal is on the wallboard, and an overrun after 10 minutes too
        sup = await session_for(fl.url, "wang")
        fl.clock.advance(11 * 60)
        await fl.desk.check_alarms()
        board = await (await sup.get("/api/wallboard")).json()
        kinds = {(a["kind"], a["agent"]) for a in board["alarms"]}
        assert {
            ("break_refused", "agent3"),
            ("break_overrun", "agent1"),
            ("break_overrun", "agent2"),
        } <= kinds
        assert {e.payload["kind"] for e in fl.events.of_type("desk_alarm")} >= {
            "break_refused",
            "break_overrun",
        }
        await sup.close()
        # peak mode refuses a pause with the reason
        assert (await act(ss[3], "unpause"))[1]["code"] == "not_paused"
        fl.peak[0] = True
        status, d = await act(ss[3], "pause", "break")
        assert status == 409 and d["code"] == "peak_mode" and "peak" in d["message"].lower()
    finally:
        for s in ss.values():
            await s.close()


async def test_a_call_pops_the_screen_masked_and_the_disposition_files_callback_and_dnc(fl) -> None:
    agent = await session_for(fl.url, "agent1")
    frames: list[str] = []
    try:
        assert (await act(agent, "login"))[0] == 200
        fl.sim.set_answer("agent1", "manual")
        ws = await agent.ws_connect("/api/desk/ws")

        async def read() -> None:
            async for msg in ws:
                frames.append(msg.data)

        reader = asyncio.create_task(read())
        fl.sim.place_call(caller=CUSTOMER, did="4008001234", name="赵女士", behaviour={"talk_time": 60})
        await fl.sim.advance(1)
        assert await until(lambda: any('"ringing"' in f and "138****5678" in f for f in frames))
        pop = json.loads(frames[-1])["view"]["pop"]
        assert pop["number"] == "138****5678" and pop["did_label"] == "CCTV-1 晚间广告"
        assert pop["why"].startswith("队列 queue sales")
        assert [(o["owner"], o["status"], o["product"]) for o in pop["orders"]] == [
            ("agent2", "shipped", "蜂胶")
        ]
        assert fl.sim.answer("agent1")
        await fl.sim.advance(1)
        assert await until(lambda: '"in_call"' in frames[-1])
        # the caller hangs up after a minute: the call waits in wrap-up for its disposition
        await fl.sim.advance(61)
        assert await until(lambda: '"wrapup"' in frames[-1], 10)
        call = pop["call"]
        body = {"call": call, "outcome": "call_back", "category": "inquiry", "callback_at": "yesterday"}
        bad = await agent.post("/api/desk/disposition", json=body)
        assert bad.status == 400 and "callback_at" in (await bad.json())["error"]
        body = {"call": call, "outcome": "call_back", "category": "booking",
                "note": "晚上再打 call 13812345678", "callback_at": "2026-11-29T19:30"}  # fmt: skip
        ok = await agent.post("/api/desk/disposition", json=body)
        assert ok.status == 200, await ok.text()
        cb = await fl.pool.fetchrow("SELECT number, kind, next_attempt_at, preferred_agent FROM callbacks")
        assert (cb["number"], cb["kind"], cb["preferred_agent"]) == (CUSTOMER, "manual", "agent1")
        assert cb["next_attempt_at"].isoformat() == "2026-11-29T11:30:00+00:00"  # 19:30 Asia/Shanghai
        (ev,) = fl.events.of_type("disposition")
        assert ev.payload["outcome"] == "call_back" and CUSTOMER not in json.dumps(ev.payload)
        again = await agent.post(
            "/api/desk/disposition", json={"call": call, "outcome": "never_call", "category": "inquiry"}
        )
        assert again.status == 400
        assert await until(lambda: '"ready"' in frames[-1])
        await ws.close()
        reader.cancel()
        # the crawl: every page, JSON and websocket frame the agent reached carries no full number
        paths = ("/", "/desk", "/api/desk/state", "/api/desk/records", "/api/desk/day")
        pages = [await (await agent.get(p)).text() for p in paths]
        assert all(CUSTOMER not in t for t in pages + frames)
        assert all(
            r.status in (401, 403)
            for r in [await agent.get("/api/wallboard"), await agent.get("/api/snapshot")]
        )
    finally:
        await agent.close()

"""The desk and the wallboard against PostgreSQL and the simulated PBX, through HTTP and websockets
as a browser uses them: login, R-BREAK and peak refusals, a call popping the agent's screen (masked),
a disposition with its callback and DNC rows, the wallboard's alarm, and no full number anywhere an
agent can reach."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from cti.web.quality import RECORDINGS_DIR
from tests.desk.rig import CUSTOMER, NOW, PASSWORDS, floor
from tests.polling import until


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
        # the wallboard's figures moved with the call: offered, answered within two rings, talk time
        board = await fl.desk.wallboard()
        assert board["figures"] == {"offered": 1, "answered": 1, "abandoned": 0, "service_level": 1.0,
                                    "abandon_rate": 0.0, "asa_s": 0.0, "aht_s": 60.0}  # fmt: skip
        (row,) = [a for a in board["agents"] if a["agent"] == "agent1"]
        assert (row["name"], row["calls"], row["state"]) == ("张伟", 1, "ready")
        day = await (await agent.get("/api/desk/day")).json()
        assert (day["calls"], day["service_level"], day["aht_s"], day["dispositions"]) == (1, 1.0, 60.0, 1)
        assert day["fines"] == {"fines_yuan": "0.00", "points": 0}
        await ws.close()
        reader.cancel()
        # the crawl: every GET route of the app, as the agent, and every websocket frame they got
        paths = sorted({r.resource.canonical for r in fl.app.router.routes() if r.method == "GET"})
        assert {"/desk", "/api/desk/state", "/api/wallboard", "/api/snapshot", "/api/recordings/{id}"} <= set(
            paths
        )
        got = {}
        for path in paths:
            if path.endswith("/ws"):
                continue  # the desk's socket is read above; the others refuse an agent below
            r = await agent.get(path.replace("{id}", "1"), allow_redirects=False)
            got[path] = (r.status, await r.text())
        assert not [p for p, (_s, text) in got.items() if CUSTOMER in text]
        assert not [f for f in frames if CUSTOMER in f]
        assert got["/desk"][0] == got["/api/desk/state"][0] == 200
        assert all(got[p][0] == 403 for p in ("/api/wallboard", "/api/snapshot", "/api/recordings/{id}"))
        for ws_path in ("/ws", "/api/wallboard/ws"):
            r = await agent.get(ws_path)
            assert r.status == 403, ws_path
    finally:
        await agent.close()


async def test_supervisor_levers_spy_click_to_call_and_a_seekable_recording(fl, tmp_path) -> None:
    from cti.callbacks import repo as callbacks_repo

    seen: list[str] = []
    fl.sim.subscribe(lambda ev: seen.append(f"{ev.name} {dict(ev.pairs)}"))
    agent, sup = await session_for(fl.url, "agent1"), await session_for(fl.url, "wang")
    try:
        assert (await act(agent, "login"))[0] == 200
        # pause and unpause the agent from the wallboard: AgentService decides and records it
        r = await sup.post(
            "/api/wallboard/agent", json={"agent": "agent1", "op": "pause", "reason": "meeting"}
        )
        assert r.status == 200
        assert (
            await fl.pool.fetchval("SELECT pause_reason FROM agent_logins WHERE agent = 'agent1'")
        ) == "meeting"
        assert (
            await agent.post("/api/wallboard/agent", json={"agent": "agent1", "op": "unpause"})
        ).status == 403
        assert (
            await sup.post("/api/wallboard/agent", json={"agent": "agent1", "op": "unpause"})
        ).status == 200
        assert any(e.type == "agent_pause" and e.payload["via"] == "api" for e in fl.events.events)

        # click to call the agent's callback: agent first, the number masked on the agent's side
        async with fl.pool.acquire() as conn:
            ref = await callbacks_repo.create_or_join(
                conn,
                number=CUSTOMER,
                did="4008001234",
                kind="night",
                now=fl.clock.now(),
                preferred_agent="agent1",
            )
        # the wallboard: the open callback and its age, the evening's ad on the timeline in local time
        await fl.pool.execute(
            """INSERT INTO media_airings (channel, program, starts_at, duration_s, created_by)
               VALUES ('CCTV-1', '蜂胶广告', '2026-11-29 12:00+00', 60, 'test')"""
        )
        fl.clock.advance(90)
        board = await (await sup.get("/api/wallboard")).json()
        assert board["callbacks"] == {"open": 1, "oldest_wait_s": 90}
        air = {"channel": "CCTV-1", "program": "蜂胶广告", "start": "20:00", "end": "20:01",
               "start_min": 1200, "minutes": 31}  # fmt: skip
        assert board["schedule"] == [air]
        recs = await (await agent.get("/api/desk/records")).json()
        assert [(c["id"], c["number"], c["kind"]) for c in recs["callbacks"]] == [
            (ref.id, "138****5678", "night")
        ]
        fl.sim.set_answer("agent1", "manual")
        fl.sim.set_customer(CUSTOMER, "answer", 1.0, talk_time=20)
        r = await agent.post("/api/desk/call", json={"kind": "callback", "id": ref.id})
        assert r.status == 200, await r.text()
        await fl.sim.advance(0.5)
        assert await until(lambda: fl.desk.tracker.agents["agent1"].call is not None)
        view = await (await agent.get("/api/desk/state")).json()
        assert view["state"] == "ringing" and view["pop"]["number"] == "138****5678"
        assert view["pop"]["why"] == "回拨 callback · 夜间留言 night"
        assert fl.sim.answer("agent1")
        await fl.sim.advance(2)
        assert any("Dial" in s and f"PJSIP/{CUSTOMER}@pstn" in s for s in seen)
        assert (await (await agent.get("/api/desk/state")).json())["state"] == "in_call"
        # barge in from the supervisor's own phone: Originate → ChanSpy on the agent's channel
        r = await sup.post("/api/wallboard/spy", json={"agent": "agent1", "mode": "barge"})
        assert r.status == 200, await r.text()
        await fl.sim.advance(8)
        assert any("ChanSpy" in s and "PJSIP/agent1-,bqESB" in s for s in seen)
        assert (await sup.post("/api/wallboard/spy", json={"agent": "agent1", "mode": "shout"})).status == 400

        # a recording: role-gated, audited once per playback, seekable (206 for a range)
        wav = fl.app[RECORDINGS_DIR] / "call.wav"  # under the recordings directory, as Asterisk writes
        wav.write_bytes(bytes(range(256)) * 4)
        outside = tmp_path / "call.wav"  # a row naming a file elsewhere is never served
        outside.write_bytes(b"secret")
        bad = await fl.pool.fetchval(
            "INSERT INTO recordings (linkedid, path, created_at) VALUES ('x0', $1, now()) RETURNING id",
            str(outside),
        )
        rec = await fl.pool.fetchval(
            """INSERT INTO recordings (linkedid, path, number, created_at, started_at, ended_at, duration_s)
               VALUES ('x1', $1, '13812345678', now(), now(), now(), 42.5) RETURNING id""",
            str(wav),
        )
        # the wallboard's player lists it, masked; agents get nothing
        listed = await (await sup.get("/api/wallboard/recordings")).json()
        assert [(r["id"], r["number"], r["duration_s"]) for r in listed["recordings"]] == [
            (rec, "138****5678", 42.5)
        ]
        assert (await agent.get("/api/wallboard/recordings")).status == 403
        assert (await agent.get(f"/api/recordings/{rec}")).status == 403
        assert (await sup.get(f"/api/recordings/{bad}")).status == 404
        full = await sup.get(f"/api/recordings/{rec}")
        assert full.status == 200 and len(await full.read()) == 1024
        part = await sup.get(f"/api/recordings/{rec}", headers={"Range": "bytes=256-511"})
        assert part.status == 206 and await part.read() == bytes(range(256))
        audits = await fl.pool.fetch("SELECT username, subject FROM number_reveals")
        assert [(a["username"], a["subject"]) for a in audits] == [("wang", f"recording:{rec}")]
    finally:
        await agent.close()
        await sup.close()


async def test_late_login_and_leaving_the_seat_are_events_and_alarms(fl) -> None:
    from datetime import date

    await fl.pool.execute(
        """INSERT INTO roster (day, shift, group_name, agents, updated_by)
           VALUES ($1, 'morning', 'g1', $2, 'test')""",
        date(2026, 11, 29), ["agent1"],
    )  # fmt: skip
    assert (await fl.desk.request("agent1", "login")).allowed  # 10:30, the morning shift began at 08:00
    await fl.desk.check_alarms()
    (late,) = [e for e in fl.events.of_type("attendance_violation") if e.payload["rule"] == "late_login"]
    assert late.agent == "agent1" and "150 min late" in late.payload["detail"]
    # rung while ready and not answering: the queue auto-pauses the phone (capture 02) -> left the seat
    fl.sim.set_answer("agent1", "never")
    fl.sim.place_call(caller=CUSTOMER, did="4008001234", behaviour={"patience": 40})
    await fl.sim.advance(12)
    assert await until(lambda: fl.desk.tracker.agents["agent1"].rna_today >= 1)
    await fl.desk.check_alarms()
    assert [e.payload["rule"] for e in fl.events.of_type("attendance_violation")] == [
        "late_login",
        "left_seat",
    ]
    board = await fl.desk.wallboard()
    (row,) = [a for a in board["agents"] if a["agent"] == "agent1"]
    assert row["ring_no_answers"] == 1 and row["state"] == "paused" and row["reason"] == "Auto-Pause"
    # the same facts do not raise the same event twice
    await fl.desk.check_alarms()
    assert len(fl.events.of_type("attendance_violation")) == 2


async def test_the_order_owner_rings_first_and_the_pop_says_why(fl) -> None:
    from tests.desk.rig import ROUTE_VARS

    ROUTE_VARS.update(CTI_PREFERRED="agent2", CTI_PREFERRED_TIMEOUT="10")  # what route decides (capture 12)
    assert (await fl.desk.request("agent2", "login")).allowed
    fl.sim.set_answer("agent2", "manual")
    fl.sim.place_call(caller=CUSTOMER, did="4008001234", behaviour={"talk_time": 20})
    await fl.sim.advance(1)
    assert await until(lambda: "agent2" in fl.desk.tracker.agents and fl.desk.tracker.agents["agent2"].call)
    view = await fl.desk.agent_view("agent2")
    assert view["state"] == "ringing" and view["pop"]["via"] == "preferred"
    assert view["pop"]["why"] == "订单归属坐席 order owner"  # inferred: agent2 owns the customer's order
    # the route decision's own reason, once stored, wins (here the caller asked for agent2 by name)
    await fl.pool.execute("SELECT cti_ensure_event_partitions($1::date, 1)", NOW.date())
    await fl.pool.execute(
        """INSERT INTO events (ts, key, source, type, linkedid, agent, payload)
           VALUES ($1, 'agi:route:x', 'agi', 'route', $2, 'agent2', '{"preferred_reason": "requested"}')""",
        NOW, view["pop"]["call"],
    )  # fmt: skip
    assert fl.sim.answer("agent2")
    await fl.sim.advance(1)
    view = await fl.desk.agent_view("agent2")
    assert view["state"] == "in_call" and view["pop"]["why"] == "客户指定坐席 named request"
    # a call answered outside the queue counts among the agent's calls on the wallboard
    (row,) = [r for r in (await fl.desk.wallboard())["agents"] if r["agent"] == "agent2"]
    assert (row["state"], row["calls"], row["number"]) == ("in_call", 1, "138****5678")


async def test_a_break_refused_at_the_phone_is_on_the_wallboard_too(fl) -> None:
    for n in (1, 2, 3):
        assert (await fl.agents.login(f"agent{n}", via="phone")).allowed
    for n in (1, 2):
        assert (await fl.agents.pause(f"agent{n}", "break", via="phone")).allowed
    d = await fl.agents.pause("agent3", "break", via="phone")  # *13 on agent3's phone
    assert d.code == "break_limit"
    await fl.desk.check_alarms()
    assert ("break_refused", "agent3") in {
        (a["kind"], a["agent"]) for a in (await fl.desk.wallboard())["alarms"]
    }
    assert (await fl.desk.agent_view("agent1"))["state"] == "paused"

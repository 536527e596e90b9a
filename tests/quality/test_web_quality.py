"""Recording QA as reviewers, managers and agents meet it in the browser: the period's draw (twice the
same), a call added by hand, playback (role-gated, seekable, audited, never outside the recordings
directory), scoring with a versioned form, agents seeing only their own scores, the report."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from openpyxl import load_workbook

from cti.clock import ManualClock
from cti.quality.forms import DEFAULT_FORM
from cti.state.live import LiveState
from cti.web import quality
from cti.web.app import Services, make_app
from cti.web.auth import add_user
from tests.weblogin import login

NOW = datetime(2026, 11, 27, 8, tzinfo=UTC)  # Friday; the week began Monday 2026-11-23 (Shanghai)
T0 = datetime(2026, 11, 23, 2, tzinfo=UTC)
AUDIO = bytes(range(256)) * 40  # 10240 bytes standing for a wav
FULL_MARKS = {"greeting": 10, "confirm_need": 15, "accuracy": 30, "resolution": 25, "courtesy": 20}


@pytest.fixture
async def client(db_url: str, tmp_path: Path) -> AsyncIterator[tuple[TestClient, asyncpg.Pool]]:
    rec_dir = tmp_path / "monitor"
    (rec_dir / "2026" / "11" / "23").mkdir(parents=True)
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=4)
    async with pool.acquire() as conn:
        await conn.execute(
            """INSERT INTO agents (id, name, interface, group_name) VALUES
               ('agent1', '坐席一', 'PJSIP/agent1', 'A组'), ('agent2', '坐席二', 'PJSIP/agent2', 'A组'),
               ('agent3', '坐席三', 'PJSIP/agent3', 'B组')"""
        )
        await add_user(conn, "wang", "supervisor-pw", "supervisor")
        await add_user(conn, "li", "manager-pw-1", "manager")
        await add_user(conn, "agent1", "agent1-pw-x", "agent", agent_id="agent1")
        await add_user(conn, "agent2", "agent2-pw-x", "agent", agent_id="agent2")
        for agent, n in (("agent1", 8), ("agent2", 7), ("agent3", 2)):
            for i in range(n):
                linkedid = f"17953{agent[-1]}{i:02d}.0"
                path = rec_dir / "2026" / "11" / "23" / f"{linkedid}.wav"
                path.write_bytes(AUDIO)
                await conn.execute(
                    """INSERT INTO call_facts (linkedid, started_at, outcome, answered_by, queue)
                       VALUES ($1, $2, 'answered', $3, 'sales')""",
                    linkedid, T0 + timedelta(minutes=10 * i), agent,
                )  # fmt: skip
                await conn.execute(
                    "INSERT INTO recordings (linkedid, path, created_at) VALUES ($1, $2, $3)",
                    linkedid, str(path), T0,
                )  # fmt: skip
        # rows whose path leads out of the recordings directory
        (tmp_path / "secret.wav").write_bytes(b"not a call")
        for linkedid, path in (("evil.1", str(tmp_path / "secret.wav")),
                               ("evil.2", str(rec_dir / ".." / "secret.wav"))):  # fmt: skip
            await conn.execute(
                "INSERT INTO recordings (linkedid, path, created_at) VALUES ($1, $2, $3)", linkedid, path, T0
            )
    app = make_app(Services(pool=pool, live=LiveState(), clock=ManualClock(NOW)))
    app[quality.RECORDINGS_DIR] = rec_dir
    c = TestClient(TestServer(app))
    await c.start_server()
    yield c, pool
    await c.close()
    await pool.close()


async def test_the_plan_drawn_twice_keeps_the_same_calls(client) -> None:  # type: ignore[no-untyped-def]
    c, pool = client
    await login(c, "wang", "supervisor-pw")
    first = await (await c.post("/api/quality/draw", json={})).json()
    again = await (await c.post("/api/quality/draw", json={})).json()
    assert first["period_start"] == "2026-11-23"
    assert [s["linkedid"] for s in first["samples"]] == [s["linkedid"] for s in again["samples"]]
    per_agent = {a: sum(s["agent"] == a for s in first["samples"]) for a in ("agent1", "agent2", "agent3")}
    assert per_agent == {"agent1": 5, "agent2": 5, "agent3": 2}
    assert await pool.fetchval("SELECT count(*) FROM qa_samples") == 12
    # the same plan from an empty table draws the same calls again
    await pool.execute("DELETE FROM qa_samples")
    third = await (await c.post("/api/quality/draw", json={})).json()
    assert [s["linkedid"] for s in third["samples"]] == [s["linkedid"] for s in first["samples"]]


async def test_a_supervisor_adds_a_call_by_hand(client) -> None:  # type: ignore[no-untyped-def]
    c, _ = client
    await login(c, "wang", "supervisor-pw")
    r = await c.post("/api/quality/samples", json={"linkedid": "17953100.0"})
    assert r.status == 200 and (await r.json())["reason"] == "manual"
    r = await c.post("/api/quality/samples", json={"linkedid": "no-such-call"})
    assert r.status == 404 and "无此录音通话" in (await r.json())["error"]
    await login(c, "agent1", "agent1-pw-x")
    assert (await c.post("/api/quality/samples", json={"linkedid": "17953101.0"})).status == 403


async def test_every_playback_is_audited_seekable_and_only_for_reviewers(client) -> None:  # type: ignore[no-untyped-def]
    c, pool = client
    rec_id = await pool.fetchval("SELECT id FROM recordings WHERE linkedid = '17953100.0'")
    await login(c, "agent1", "agent1-pw-x")  # even the agent's own call: agents read scores, not audio
    assert (await c.get(f"/recordings/{rec_id}/audio")).status == 403
    await login(c, "wang", "supervisor-pw")
    whole = await c.get(f"/recordings/{rec_id}/audio")
    assert whole.status == 200 and await whole.read() == AUDIO
    seek = await c.get(f"/recordings/{rec_id}/audio", headers={"Range": "bytes=5000-5099"})
    assert seek.status == 206 and await seek.read() == AUDIO[5000:5100]
    assert seek.headers["Content-Range"] == f"bytes 5000-5099/{len(AUDIO)}"
    rows = await pool.fetch(
        "SELECT username, role, recording_id, linkedid, byte_range FROM recording_playbacks ORDER BY id"
    )
    assert [tuple(r) for r in rows] == [
        ("wang", "supervisor", rec_id, "17953100.0", ""),
        ("wang", "supervisor", rec_id, "17953100.0", "bytes=5000-5099"),
    ]


async def test_a_recording_path_outside_the_recordings_directory_is_refused(client) -> None:  # type: ignore[no-untyped-def]
    c, pool = client
    await login(c, "li", "manager-pw-1")
    for linkedid in ("evil.1", "evil.2"):
        rec_id = await pool.fetchval("SELECT id FROM recordings WHERE linkedid = $1", linkedid)
        r = await c.get(f"/recordings/{rec_id}/audio")
        assert r.status == 404 and b"not a call" not in await r.read()
    assert await pool.fetchval("SELECT count(*) FROM recording_playbacks") == 0


async def _sample_of(c: TestClient, agent: str) -> int:
    data = await (await c.get(f"/api/quality/samples?agent={agent}")).json()
    return data["samples"][0]["id"]


async def test_agent_sees_own_scores_and_comments_not_another_agents(client) -> None:  # type: ignore[no-untyped-def]
    c, _ = client
    await login(c, "wang", "supervisor-pw")
    await c.post("/api/quality/draw", json={})
    s1, s2 = await _sample_of(c, "agent1"), await _sample_of(c, "agent2")
    r = await c.post(f"/api/quality/samples/{s1}/score", json={"answers": FULL_MARKS, "comment": "开场很好"})
    assert r.status == 200 and (await r.json())["score"] == 100.0
    r = await c.post(f"/api/quality/samples/{s2}/score",
                     json={"answers": FULL_MARKS | {"rude": True}, "comment": "讽刺客户"})  # fmt: skip
    assert (await r.json())["score"] == 0.0 and (await r.json())["fatal"] == "rude"

    await login(c, "agent1", "agent1-pw-x")
    mine = await (await c.get("/api/quality/scores")).json()
    assert [(s["agent"], s["score"], s["comment"]) for s in mine["scores"]] == [("agent1", 100.0, "开场很好")]
    week = await (await c.get("/api/quality/samples")).json()
    assert {s["agent"] for s in week["samples"]} == {"agent1"}
    assert "讽刺客户" not in await (await c.get("/api/quality/samples")).text()
    for url in ("/api/quality/scores?agent=agent2", "/api/quality/samples?agent=agent2",
                "/api/reports/quality", "/reports/quality.csv"):  # fmt: skip
        r = await c.get(url)
        assert r.status == 403, url
        assert "讽刺客户" not in await r.text()
    assert (await c.post(f"/api/quality/samples/{s1}/score", json={"answers": FULL_MARKS})).status == 403


async def test_a_manager_edits_the_form_and_a_scored_call_keeps_its_version(client) -> None:  # type: ignore[no-untyped-def]
    c, pool = client
    await login(c, "wang", "supervisor-pw")
    await c.post("/api/quality/draw", json={})
    s1 = await _sample_of(c, "agent1")
    await c.post(f"/api/quality/samples/{s1}/score", json={"answers": FULL_MARKS})
    assert (await c.post("/api/quality/forms", json={"definition": DEFAULT_FORM})).status == 403

    await login(c, "li", "manager-pw-1")
    items = [
        {"id": "polite", "text": "礼貌", "weight": 50},
        {"id": "full_number", "text": "泄露号码", "fatal": True},
    ]
    v2 = {"title": "新表", "sections": [{"title": "全部", "items": items}]}
    r = await c.post("/api/quality/forms", json={"definition": v2})
    assert (await r.json())["version"] == 2
    bad = await c.post("/api/quality/forms", json={"definition": {"title": "x", "sections": []}})
    assert bad.status == 400 and "sections" in (await bad.json())["error"]
    # the call scored with version 1 is re-scored with version 1; a new one gets version 2
    r = await c.post(f"/api/quality/samples/{s1}/score", json={"answers": FULL_MARKS | {"accuracy": 15}})
    assert ((await r.json())["form_version"], (await r.json())["score"]) == (1, 85.0)
    s2 = await _sample_of(c, "agent2")
    r = await c.post(f"/api/quality/samples/{s2}/score", json={"answers": {"polite": 25}})
    assert ((await r.json())["form_version"], (await r.json())["score"]) == (2, 50.0)
    r = await c.post(f"/api/quality/samples/{s2}/score", json={"answers": {"polite": 99}})
    assert r.status == 400 and "polite must be 0-50" in (await r.json())["error"]
    assert await pool.fetchval("SELECT count(*) FROM qa_forms") == 2


async def test_quality_report_beside_fines_and_rewards_csv_and_xlsx(client) -> None:  # type: ignore[no-untyped-def]
    c, pool = client
    await pool.execute(
        """INSERT INTO survey_results (linkedid, agent, queue, call_kind, scale, keyed, score, outcome, at)
           VALUES ('17953100.0', 'agent1', 'sales', 'inbound', 'five', '5', 5, 'rated', $1),
                  ('17953101.0', 'agent1', 'sales', 'inbound', 'five', '2', 2, 'rated', $1),
                  ('17953200.0', 'agent2', 'sales', 'inbound', 'five', '', NULL, 'no_key', $1)""",
        T0,
    )
    await pool.execute(
        """INSERT INTO fine_ledger (id, violation_id, rule, person, role, amount_fen, points, occurred_at,
                                    source_kind, source_id, derived_at)
           VALUES ('agent_hung_up_first:x:agent1', 'agent_hung_up_first:x', 'agent_hung_up_first', 'agent1',
                   'agent', 2000, 0, $1, 'call', 'x', now())""",
        T0,
    )
    await pool.execute(
        """INSERT INTO rewards (id, kind, period, period_start, agent, orders, amount_fen, derived_at)
           VALUES ('champion:day:2026-11-24', 'champion', 'day', '2026-11-24', 'agent2', 9, 1000, now())"""
    )
    await login(c, "wang", "supervisor-pw")
    await c.post("/api/quality/draw", json={})
    await c.post(f"/api/quality/samples/{await _sample_of(c, 'agent1')}/score", json={"answers": FULL_MARKS})
    data = await (await c.get("/api/reports/quality?period=week&by=agent")).json()
    rows = {r["key"]: r for r in data["rows"]}
    assert (rows["agent1"]["surveys"], rows["agent1"]["survey_avg"], rows["agent1"]["dissatisfied"]) == (
        2,
        3.5,
        1,
    )
    assert (rows["agent1"]["reviewed"], rows["agent1"]["qa_avg"], rows["agent1"]["fines_fen"]) == (
        1,
        100.0,
        2000,
    )
    assert (rows["agent2"]["surveys"], rows["agent2"]["rewards_fen"]) == (0, 1000)
    page = await (await c.get("/reports/quality?period=week&by=agent")).text()
    assert "<td>agent1</td><td>2</td><td>3.5</td>" in page and "20.00" in page
    team = {r["key"]: r for r in (await (await c.get("/api/reports/quality?by=team")).json())["rows"]}
    assert team["A组"]["fines_fen"] == 2000 and team["A组"]["rewards_fen"] == 1000

    csv = await c.get("/reports/quality.csv?period=month&by=agent")
    text = (await csv.read()).decode("utf-8")
    assert text.startswith("\ufeff周期 period,")
    assert "2026-11-01,agent1,2,3.5,1,1,100.0,0,20.00,0.00" in text
    xlsx = await c.get("/reports/quality.xlsx?period=week&by=team")
    ws = load_workbook(io.BytesIO(await xlsx.read())).active
    cells = [[v for v in row] for row in ws.iter_rows(values_only=True)]
    assert cells[0][1] == "坐席/组 agent/team" and ["2026-11-23", "A组"] == cells[1][:2]
    logged = await pool.fetch("SELECT report, rows FROM report_downloads ORDER BY id")
    assert [r["report"] for r in logged] == [
        "quality-month-agent-2026-11-27.csv",
        "quality-week-team-2026-11-27.xlsx",
    ]


async def test_very_dissatisfied_customers_reach_the_supervisor_with_the_recording(client) -> None:  # type: ignore[no-untyped-def]
    c, pool = client
    rec_id = await pool.fetchval("SELECT id FROM recordings WHERE linkedid = '17953100.0'")
    await pool.execute(
        """INSERT INTO survey_results (linkedid, agent, queue, call_kind, scale, keyed, score, outcome, alarm,
                                       recording_id, at)
           VALUES ('17953100.0', 'agent1', 'sales', 'inbound', 'five', '1', 1, 'rated', true, $1, $2),
                  ('17953101.0', 'agent1', 'sales', 'inbound', 'five', '4', 4, 'rated', false, NULL, $2)""",
        rec_id, T0,
    )  # fmt: skip
    await login(c, "agent1", "agent1-pw-x")
    assert (await c.get("/quality")).status == 200  # the page: an agent's own scores
    assert (await c.get("/api/quality/alarms")).status == 403
    await login(c, "wang", "supervisor-pw")
    alarms = (await (await c.get("/api/quality/alarms")).json())["alarms"]
    assert [(a["agent"], a["score"], a["recording_id"]) for a in alarms] == [("agent1", 1, rec_id)]
    assert (await c.get(f"/recordings/{alarms[0]['recording_id']}/audio")).status == 200

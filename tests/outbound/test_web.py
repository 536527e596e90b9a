"""The outbound HTTP API as the panel and a supervisor use it: roles, events, dispositions by the
agent who took the call, DNC at once on "never call", assignments recalled, exports logged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from cti.clock import ManualClock
from cti.outbound import assignments, campaigns
from cti.outbound.eligibility import rule_set_id, try_claim
from cti.state.live import LiveState
from cti.web.app import Services, make_app
from cti.web.auth import add_user
from tests.outbound.conftest import add_contact, rules_for

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


@pytest.fixture
async def api(db_url: str) -> AsyncIterator[tuple[TestClient, asyncpg.Pool, ManualClock]]:
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=4)
    async with pool.acquire() as conn:
        await add_user(conn, "wang", "supervisor-pw", "supervisor")
        await conn.execute(
            "INSERT INTO agents (id, name, interface) VALUES ('agent1', '坐席一', 'PJSIP/agent1')"
        )
        await add_user(conn, "agent1", "agent1-pw-x", "agent", agent_id="agent1")
    clock = ManualClock(T0)
    client = TestClient(TestServer(make_app(Services(pool=pool, live=LiveState(), clock=clock))))
    await client.start_server()
    yield client, pool, clock
    await client.close()
    await pool.close()


async def _login(client: TestClient, user: str, pw: str) -> None:
    r = await client.post("/login", data={"username": user, "password": pw}, allow_redirects=False)
    assert r.status in (302, 303)


async def test_supervisor_manages_campaigns_agent_may_not(api):
    client, pool, _ = api
    r = await client.get("/api/outbound/campaigns")
    assert r.status == 401
    await _login(client, "agent1", "agent1-pw-x")
    r = await client.post("/api/outbound/campaigns", json={"name": "x"})
    assert r.status == 403
    client.session.cookie_jar.clear()
    await _login(client, "wang", "supervisor-pw")
    body = {
        "name": "宽带",
        "product": "broadband",
        "queue": "sales",
        "did": "4008001234",
        "mode": "predictive",
        "windows": [{"segment": "boss", "start": "10:00", "end": "11:30"}],
    }
    r = await client.post("/api/outbound/campaigns", json=body)
    assert r.status == 201
    cid = (await r.json())["id"]
    r = await client.post("/api/outbound/campaigns", json={**body, "mode": "shotgun", "name": "y"})
    assert r.status == 400 and "unknown mode" in (await r.json())["error"]
    r = await client.post(f"/api/outbound/campaigns/{cid}/status", json={"status": "running"})
    assert r.status == 200
    r = await client.post("/api/outbound/campaigns/999/status", json={"status": "running"})
    assert r.status == 404
    async with pool.acquire() as conn:
        types = [r["type"] for r in await conn.fetch("SELECT type FROM events ORDER BY seq")]
    assert types == ["CampaignCreated", "CampaignChanged"]
    r = await client.post("/api/outbound/dnc", json={"number": "13812345678", "category": "complaint"})
    assert (await r.json()) == {"number": "+86138****5678", "added": True}
    r = await client.post("/api/outbound/dnc", json={"number": "13812345678", "category": "angry"})
    assert r.status == 400


async def test_agent_disposes_own_call_and_never_call_lands_on_dnc_at_once(api):
    client, pool, _ = api
    async with pool.acquire() as db:
        k = await campaigns.create(
            db, name="c", product="broadband", queue="sales", did="4008001234", mode="progressive", by="t"
        )
        await campaigns.set_status(db, k, "running", by="t")
        contact = await add_contact(db, "+8613812345678", [k])
        other = await add_contact(db, "+8613899998888", [k])
        rules = rules_for()
        rs = await rule_set_id(db, rules)
        at = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)  # noon local, inside the default window
        mine = await try_claim(
            db,
            campaign_id=k,
            contact_id=contact,
            now=at,
            rules=rules,
            rule_set=rs,
            process="t",
            agent="agent1",
        )
        theirs = await try_claim(
            db, campaign_id=k, contact_id=other, now=at, rules=rules, rule_set=rs, process="t", agent="agent2"
        )
    await _login(client, "agent1", "agent1-pw-x")
    r = await client.post(f"/api/outbound/dials/{theirs.dial_id}/disposition", json={"disposition": "sale"})
    assert r.status == 403
    r = await client.post(
        f"/api/outbound/dials/{mine.dial_id}/disposition", json={"disposition": "never_call"}
    )
    assert r.status == 200
    async with pool.acquire() as db:
        assert await db.fetchval("SELECT category FROM dnc WHERE number = '+8613812345678'") == "refused_all"
        assert await db.fetchval("SELECT disposition_by FROM dials WHERE id = $1", mine.dial_id) == "agent1"


async def test_exports_are_a_supervisor_right_and_every_attempt_is_logged(api):
    client, pool, clock = api
    async with pool.acquire() as db:
        lid = await db.fetchval(
            "INSERT INTO contact_lists (name, created_by) VALUES ('spring', 't') RETURNING id"
        )
        cid = await add_contact(db, "+8613812345678", [])
        await db.execute("INSERT INTO list_members VALUES ($1, $2)", lid, cid)
    await _login(client, "agent1", "agent1-pw-x")
    r = await client.get("/api/outbound/export?list=spring")
    assert r.status == 403
    client.session.cookie_jar.clear()
    await _login(client, "wang", "supervisor-pw")
    r = await client.get("/api/outbound/export?list=spring")
    text = await r.text()
    assert r.status == 200 and "+86138****5678" in text and "13812345678" not in text
    async with pool.acquire() as db:
        log = [
            tuple(r) for r in await db.fetch("SELECT username, allowed, rows FROM data_exports ORDER BY id")
        ]
    assert log == [("agent1", False, 0), ("wang", True, 1)]
    # R-DATA: an assignment is recalled after 10 months (300 days) at the latest
    r = await client.post("/api/outbound/assignments", json={"contact_ids": [cid], "agent": "agent1"})
    assert (await r.json()) == {"assigned": 1}
    async with pool.acquire() as db:
        assert await assignments.recall_due(db, clock.now() + timedelta(days=299)) == 0
        assert await assignments.recall_due(db, clock.now() + timedelta(days=300)) == 1


async def test_funnel_requires_a_valid_grouping(api):
    client, _, _ = api
    await _login(client, "wang", "supervisor-pw")
    r = await client.get("/api/outbound/funnel?by=week&since=2026-03-01")
    assert r.status == 400
    r = await client.get("/api/outbound/funnel?by=day&since=2026-03-01&format=csv")
    assert r.status == 200 and (await r.text()).startswith("分组,座席数")


async def test_preview_agent_sees_the_masked_record_then_dials_once(db_url: str):
    from cti.outbound.runner import OutboundRunner
    from cti.policy import load_policy

    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=4)
    sent = []

    async def originate(req):
        sent.append(req)
        return {"Response": "Success", "ActionID": "ami-1"}

    clock = ManualClock(datetime(2026, 3, 2, 4, 0, tzinfo=UTC))  # noon in Asia/Shanghai
    live = LiveState()
    runner = OutboundRunner(
        pool, db_url, live, load_policy(), "Asia/Shanghai", clock, originate, in_peak=lambda: False
    )
    async with pool.acquire() as db:
        await add_user(db, "wang", "supervisor-pw", "supervisor")
        await db.execute(
            "INSERT INTO agents (id, name, interface) VALUES ('agent1', '坐席一', 'PJSIP/agent1')"
        )
        await add_user(db, "agent1", "agent1-pw-x", "agent", agent_id="agent1")
        k = await campaigns.create(
            db, name="回访", product="followup", queue="sales", did="4008001234", mode="preview", by="t"
        )
        await campaigns.set_status(db, k, "running", by="t")
        await db.execute("INSERT INTO contacts (number, name) VALUES ('+8613812345678', '张三')")
        await db.execute("INSERT INTO campaign_contacts (campaign_id, contact_id) VALUES ($1, 1)", k)
    svc = Services(pool=pool, live=live, clock=clock, outbound_preview_dial=runner.preview_dial)
    client = TestClient(TestServer(make_app(svc)))
    await client.start_server()
    try:
        await _login(client, "agent1", "agent1-pw-x")
        r = await client.get(f"/api/outbound/campaigns/{k}/preview")
        assert (await r.json()) == {
            "contact": {"id": 1, "number": "138****5678", "name": "张三", "segment": "default"}
        }
        r = await client.post(f"/api/outbound/campaigns/{k}/preview/1/dial")
        assert r.status == 200 and (await r.json())["number"] == "138****5678"
        assert [s.agent for s in sent] == ["agent1"]
        r = await client.post(f"/api/outbound/campaigns/{k}/preview/1/dial")
        assert r.status == 409  # the number is held by the first dial
        client.session.cookie_jar.clear()
        await _login(client, "wang", "supervisor-pw")
        r = await client.post(f"/api/outbound/campaigns/{k}/preview/1/dial")
        assert r.status == 403
    finally:
        await client.close()
        await pool.close()


async def test_a_hesitant_customer_is_followed_up_in_the_policy_days_with_an_attempt_kept(api):
    """R-FOLLOWUP (seed 001 §34): 考虑/迟疑 — the agent posts no_decision and the contact comes due
    again after `outbound.hesitant_followup_days` (a manager's figure, here 45), even if that dial
    used the campaign's last attempt; the dialer still applies every cap at that time."""
    client, pool, _ = api
    async with pool.acquire() as db:
        k = await campaigns.create(
            db, name="c", product="broadband", queue="sales", did="4008001234", mode="progressive", by="t",
            max_attempts=1,
        )  # fmt: skip
        await campaigns.set_status(db, k, "running", by="t")
        contact = await add_contact(db, "+8613812345678", [k])
        rules = rules_for()
        at = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)
        dial = await try_claim(
            db, campaign_id=k, contact_id=contact, now=at, rules=rules, rule_set=await rule_set_id(db, rules),
            process="t", agent="agent1",
        )  # fmt: skip
        await db.execute(
            "INSERT INTO policy_values (key, value, updated_by)"
            " VALUES ('outbound.hesitant_followup_days', '45', 'zhao')"
        )
        assert await db.fetchval("SELECT attempts FROM campaign_contacts WHERE contact_id = $1", contact) == 1
    await _login(client, "agent1", "agent1-pw-x")
    url = f"/api/outbound/dials/{dial.dial_id}/disposition"
    r = await client.post(url, json={"disposition": "no_decision"})
    assert r.status == 200, await r.text()
    async with pool.acquire() as db:
        row = await db.fetchrow(
            "SELECT attempts, next_attempt_at, status FROM campaign_contacts WHERE contact_id = $1", contact
        )
    assert row["next_attempt_at"] == T0 + timedelta(days=45)  # from the disposition's time (the clock)
    assert row["attempts"] == 0 and row["status"] == "open"  # one attempt kept for the follow-up


async def test_the_pacing_view_is_for_supervisors(api):
    client, _pool, _ = api
    await _login(client, "agent1", "agent1-pw-x")
    assert (await client.get("/api/outbound/pacing")).status == 403
    client.session.cookie_jar.clear()
    await _login(client, "wang", "supervisor-pw")
    body = await (await client.get("/api/outbound/pacing")).json()
    assert body["pacing"] is False and body["campaigns"] == []  # no dialer in this process

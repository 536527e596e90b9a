"""R-FOLLOWUP on the desk: the agent's follow-up list (the orders they own, never-followed-up first),
a click-to-call from it on the simulated PBX, and the result the agent records counting toward the
week's quota — the count the R-FOLLOWUP fine reads. Before, nothing wrote it: every agent was fined
the whole quota every week."""

from __future__ import annotations

from datetime import timedelta

from tests.desk.rig import CUSTOMER, NOW
from tests.desk.test_desk_floor import act, fl, session_for  # noqa: F401  (fl: the floor fixture)
from tests.polling import until


async def test_a_followup_call_with_its_result_counts_toward_the_weeks_quota(fl) -> None:  # noqa: F811
    agent = await session_for(fl.url, "agent2")  # agent2 owns the customer's shipped order (rig)
    try:
        assert (await act(agent, "login"))[0] == 200
        recs = await (await agent.get("/api/desk/records")).json()
        (fu,) = recs["followups"]
        assert (fu["number"], fu["product"], fu["last"]) == ("138****5678", "蜂胶", None)
        day = await (await agent.get("/api/desk/day")).json()
        assert day["followups_week"] == {"made": 0, "quota": 20}

        fl.sim.set_answer("agent2", "manual")
        fl.sim.set_customer(CUSTOMER, "answer", 1.0, talk_time=30)
        r = await agent.post("/api/desk/call", json={"kind": "followup", "id": fu["id"]})
        assert r.status == 200, await r.text()
        call = (await r.json())["call"]
        await fl.sim.advance(0.5)
        assert await until(lambda: fl.desk.tracker.agents["agent2"].call is not None)
        assert fl.sim.answer("agent2")
        await fl.sim.advance(2)
        assert (await (await agent.get("/api/desk/state")).json())["state"] == "in_call"
        await fl.sim.advance(35)  # the customer hangs up after their 30 s
        assert await until(lambda: fl.desk.tracker.agents["agent2"].last_call is not None, 10)
        body = {"call": call, "outcome": "inquiry", "category": "followup", "note": "满意 satisfied"}
        ok = await agent.post("/api/desk/disposition", json=body)
        assert ok.status == 200, await ok.text()

        row = await fl.pool.fetchrow("SELECT agent, linkedid, outcome, order_id FROM followup_calls")
        assert (row["agent"], row["linkedid"], row["outcome"], row["order_id"]) == (
            "agent2",
            call,
            "inquiry",
            fu["id"],
        )
        day = await (await agent.get("/api/desk/day")).json()
        assert day["followups_week"] == {"made": 1, "quota": 20}
        (fu2,) = (await (await agent.get("/api/desk/records")).json())["followups"]
        assert fu2["id"] == fu["id"] and fu2["last"] is not None  # the list says when
    finally:
        await agent.close()


async def test_the_fine_counts_the_recorded_followups(fl) -> None:  # noqa: F811
    """The ledger's R-FOLLOWUP row for a rostered agent prices only the calls still missing."""
    from zoneinfo import ZoneInfo

    from cti.desk import repo
    from cti.fines import repo as fines_repo

    tz = ZoneInfo("Asia/Shanghai")
    local = NOW.astimezone(tz)
    monday = (local - timedelta(days=local.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    async with fl.pool.acquire() as conn:
        for i in range(3):
            await repo.record_followup(
                conn, agent="agent2", linkedid=f"fu-{i}", called_at=monday + timedelta(hours=10 + i),
                outcome="inquiry", order_id=None,
            )  # fmt: skip
        await repo.record_followup(  # the same call recorded twice counts once
            conn, agent="agent2", linkedid="fu-0", called_at=monday, outcome="inquiry", order_id=None
        )
        await conn.execute(
            "INSERT INTO roster (day, shift, agents, updated_by) VALUES ($1, 'morning', '{agent2}', 'test')",
            monday.date(),
        )
        await fines_repo.rebuild(conn, monday, monday + timedelta(days=8), tz)
        fine = await conn.fetchrow(
            "SELECT amount_fen FROM fine_ledger WHERE rule = 'followup_shortfall' AND person = 'agent2'"
        )
    assert fine["amount_fen"] == 17 * 20  # 20 owed, 3 made: 17 × 0.20 元


def test_the_order_is_known_from_the_panel_or_from_the_channel_id_alone() -> None:
    from cti.desk.service import _followup_order
    from cti.desk.tracker import CallInfo

    assert _followup_order(CallInfo("x", 0.0, desk_ref="followup:42")) == 42
    assert _followup_order(CallInfo("x", 0.0, desk_ref="cti-desk-followup-42-17329")) == 42
    assert _followup_order(CallInfo("x", 0.0, desk_ref="callback:42")) is None
    assert _followup_order(CallInfo("x", 0.0, desk_ref="followup:x; DROP")) is None
    assert _followup_order(None) is None

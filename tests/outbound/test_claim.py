"""The pre-dial claim: DNC made between query and dial, two campaigns / processes racing, one agent
claimed once, call windows per segment at the Asia/Shanghai boundary."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta

import asyncpg

from cti.outbound import dnc, outcomes
from cti.outbound.eligibility import next_eligible, rule_set_id, try_claim
from cti.outbound.rules import Window
from tests.outbound.conftest import add_contact, rules_for

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 Asia/Shanghai


async def test_number_turning_dnc_between_query_and_dial_is_not_dialed(db, make_campaign):
    rules = rules_for()
    k = await make_campaign()
    contact = await add_contact(db, "+8613812345678", [k])
    [cand] = await next_eligible(db, k, T0, rules)
    assert await dnc.add(db, cand.number, "complaint", at=T0, by="sup1")
    rs = await rule_set_id(db, rules)
    assert (
        await try_claim(db, campaign_id=k, contact_id=contact, now=T0, rules=rules, rule_set=rs, process="p")
        is None
    )
    assert await db.fetchval("SELECT count(*) FROM dials") == 0
    # removed from the list later: callable again
    assert await dnc.remove(db, cand.number, "complaint", at=T0, by="sup1")
    assert await try_claim(
        db, campaign_id=k, contact_id=contact, now=T0, rules=rules, rule_set=rs, process="p"
    )


async def test_every_dnc_category_blocks(db, make_campaign):
    rules = rules_for()
    k = await make_campaign()
    for i, cat in enumerate(dnc.CATEGORIES):
        number = f"+86138000000{i:02d}"
        await add_contact(db, number, [k])
        await dnc.add(db, number, cat, at=T0, by="sup1")
    await add_contact(db, "+8613899999999", [k])
    assert [c.number for c in await next_eligible(db, k, T0, rules)] == ["+8613899999999"]


async def test_two_campaigns_in_two_processes_racing_for_one_contact_dial_it_once(db_url, make_campaign, db):
    rules = rules_for()
    a = await make_campaign("a", "broadband")
    b = await make_campaign("b", "iptv")
    contact = await add_contact(db, "+8613812345678", [a, b])
    rs = await rule_set_id(db, rules)
    conns = [await asyncpg.connect(db_url) for _ in range(6)]
    try:
        got = await asyncio.gather(
            *(
                try_claim(
                    c,
                    campaign_id=(a, b)[i % 2],
                    contact_id=contact,
                    now=T0,
                    rules=rules,
                    rule_set=rs,
                    process=f"p{i}",
                )
                for i, c in enumerate(conns)
            )
        )
    finally:
        for c in conns:
            await c.close()
    assert sum(g is not None for g in got) == 1
    assert await db.fetchval("SELECT count(*) FROM dials") == 1
    # while that dial is live neither campaign lists the number
    assert await next_eligible(db, a, T0, rules) == [] and await next_eligible(db, b, T0, rules) == []


async def test_one_agent_is_claimed_by_one_dial_only(db_url, make_campaign, db):
    rules = rules_for()
    k = await make_campaign()
    c1 = await add_contact(db, "+8613811111111", [k])
    c2 = await add_contact(db, "+8613822222222", [k])
    rs = await rule_set_id(db, rules)
    conns = [await asyncpg.connect(db_url) for _ in range(2)]
    try:
        got = await asyncio.gather(
            *(
                try_claim(
                    c,
                    campaign_id=k,
                    contact_id=cid,
                    now=T0,
                    rules=rules,
                    rule_set=rs,
                    process="p",
                    agent="agent1",
                )
                for c, cid in zip(conns, (c1, c2), strict=True)
            )
        )
    finally:
        for c in conns:
            await c.close()
    won = [g for g in got if g is not None]
    assert len(won) == 1
    # the agent is free again once the call ends
    await outcomes.record_end(db, won[0].dial_id, "answered", T0 + timedelta(minutes=3))
    loser = c2 if won[0].number == "+8613811111111" else c1
    later = T0 + timedelta(minutes=4)
    assert await try_claim(
        db, campaign_id=k, contact_id=loser, now=later, rules=rules, rule_set=rs, process="p", agent="agent1"
    )


async def test_call_window_boundary_for_a_segment_in_asia_shanghai(db, make_campaign):
    windows = (Window("default", time(9), time(21)), Window("boss", time(10), time(11, 30)))
    rules = rules_for(windows)
    k = await make_campaign(windows=windows)
    await add_contact(db, "+8613811111111", [k], segment="boss")
    await add_contact(db, "+8613822222222", [k], segment="worker")  # no own window: default

    def at(h: int, m: int, s: int = 0) -> datetime:  # local Asia/Shanghai (UTC+8) -> UTC
        return datetime(2026, 3, 2, h - 8, m, s, tzinfo=UTC)

    async def segs(t: datetime) -> list[str]:
        return sorted(c.segment for c in await next_eligible(db, k, t, rules))

    assert await segs(at(9, 59, 59)) == ["worker"]
    assert await segs(at(10, 0)) == ["boss", "worker"]
    assert await segs(at(11, 29, 59)) == ["boss", "worker"]
    assert await segs(at(11, 30)) == ["worker"]
    assert await segs(at(20, 59, 59)) == ["worker"]
    assert await segs(at(21, 0)) == []


async def test_paused_campaign_lists_nothing_and_attempt_limit_holds(db, make_campaign):
    from cti.outbound import campaigns

    rules = rules_for(**{"caps.same_product_gap_days": 0, "caps.per_month": 40})
    k = await make_campaign(max_attempts=2)
    contact = await add_contact(db, "+8613812345678", [k])
    rs = await rule_set_id(db, rules)
    for d in (0, 1):
        c = await try_claim(
            db,
            campaign_id=k,
            contact_id=contact,
            now=T0 + timedelta(days=d),
            rules=rules,
            rule_set=rs,
            process="p",
        )
        assert c is not None
        await outcomes.record_end(db, c.dial_id, "no_answer", T0 + timedelta(days=d, seconds=30))
    assert await next_eligible(db, k, T0 + timedelta(days=2), rules) == []
    await db.execute("UPDATE campaign_contacts SET attempts = 0")
    await campaigns.set_status(db, k, "paused", by="sup1")
    assert await next_eligible(db, k, T0 + timedelta(days=2), rules) == []
    events = await db.fetch("SELECT type, payload->'campaign'->>'status' AS s FROM events ORDER BY seq")
    assert [(e["type"], e["s"]) for e in events] == [
        ("CampaignCreated", "draft"),
        ("CampaignChanged", "running"),
        ("CampaignChanged", "paused"),
    ]


async def test_follow_up_presents_the_did_the_customer_called_else_the_campaigns(db, make_campaign):
    rules = rules_for()
    k = await make_campaign()
    caller = await add_contact(db, "+8613811111111", [k])
    stranger = await add_contact(db, "+8613822222222", [k])
    await db.execute(
        """INSERT INTO callbacks (number, did, kind, first_call_at, last_call_at, next_attempt_at, status)
           VALUES ('13811111111', '4008009999', 'peak', $1, $1, $1, 'done')""",  # as CALLERID(num) had it
        T0 - timedelta(days=3),
    )
    rs = await rule_set_id(db, rules)
    a = await try_claim(db, campaign_id=k, contact_id=caller, now=T0, rules=rules, rule_set=rs, process="p")
    b = await try_claim(db, campaign_id=k, contact_id=stranger, now=T0, rules=rules, rule_set=rs, process="p")
    assert (a.did, b.did) == ("4008009999", "4008001234")
    assert await db.fetchval("SELECT did FROM dials WHERE id = $1", a.dial_id) == "4008009999"

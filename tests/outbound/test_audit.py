"""The compliance audit finds dials that broke a rule (here written straight into the log, as a
buggy dialer would) and judges each dial by the rules and DNC list as they stood when it was made."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from itertools import count

import asyncpg

from cti.outbound import dnc, outcomes
from cti.outbound.audit import audit
from cti.outbound.eligibility import rule_set_id, try_claim
from cti.outbound.rules import RuleSet, Window
from tests.outbound.conftest import add_contact, rules_for

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 Asia/Shanghai
_ids = count(1)


async def _raw_dial(
    db: asyncpg.Connection,
    campaign: int,
    contact: int,
    at: datetime,
    rules: RuleSet,
    *,
    product: str = "broadband",
    agent: str | None = None,
    minutes: float = 1,
    disposition: str | None = None,
) -> int:
    rs = await rule_set_id(db, rules)
    number = await db.fetchval("SELECT number FROM contacts WHERE id = $1", contact)
    return await db.fetchval(
        """INSERT INTO dials (campaign_id, contact_id, number, product, segment, agent, did, rule_set_id,
                              claimed_by, channel_id, dialed_at, ended_at, disposition)
           VALUES ($1, $2, $3, $4, 'default', $5, '4008001234', $6, 'buggy', $7, $8, $9, $10) RETURNING id""",
        campaign,
        contact,
        number,
        product,
        agent,
        rs,
        f"raw-{next(_ids)}",
        at,
        at + timedelta(minutes=minutes),
        disposition,
    )


async def _reasons(
    db: asyncpg.Connection, since: datetime = T0 - timedelta(days=1)
) -> list[tuple[int, str, str]]:
    return [(v.dial_id, v.rule, v.reason) for v in await audit(db, since)]


async def test_dials_made_through_the_claim_have_no_violations(db, make_campaign):
    rules = rules_for(**{"caps.same_product_gap_days": 0})
    k = await make_campaign()
    a = await add_contact(db, "+8613811111111", [k])
    b = await add_contact(db, "+8613822222222", [k])
    rs = await rule_set_id(db, rules)
    for day in range(0, 200, 5):  # tries every 5 days; the claim refuses what the caps forbid
        for contact in (a, b):
            at = T0 + timedelta(days=day)
            c = await try_claim(
                db,
                campaign_id=k,
                contact_id=contact,
                now=at,
                rules=rules,
                rule_set=rs,
                process="p",
                agent="agent1" if contact == a else "agent2",
            )
            if c:
                await outcomes.record_end(db, c.dial_id, "answered", at + timedelta(minutes=3))
    assert await db.fetchval("SELECT count(*) FROM dials") >= 8
    assert await _reasons(db) == []


async def test_third_call_in_a_month_and_the_quiet_period_are_flagged(db, make_campaign):
    rules = rules_for(**{"caps.same_product_gap_days": 0})
    k = await make_campaign()
    c = await add_contact(db, "+8613812345678", [k])
    await _raw_dial(db, k, c, T0, rules)
    await _raw_dial(db, k, c, T0 + timedelta(days=10), rules)
    third = await _raw_dial(db, k, c, T0 + timedelta(days=20), rules)
    quiet = await _raw_dial(db, k, c, T0 + timedelta(days=60), rules)
    # the illicit 3rd call counts too: quiet runs 90 days from it (day 110), not from the 2nd
    fine = await _raw_dial(db, k, c, T0 + timedelta(days=110), rules)
    got = await _reasons(db)
    assert [(i, r) for i, r, _ in got] == [(third, "R-CAPS"), (quiet, "R-CAPS")]
    assert "call 3 within 30 days" in got[0][2]
    assert "quiet period" in got[1][2]
    assert fine not in [i for i, _, _ in got]


async def test_dnc_window_product_gap_refusals_overlap_and_agent_are_each_flagged(db, make_campaign):
    rules = rules_for((Window("default", time(9), time(21)),))
    k = await make_campaign()
    on_dnc = await add_contact(db, "+8613811111111", [k])
    await dnc.add(db, "+8613811111111", "public_phone", at=T0 - timedelta(days=1), by="sup1")
    d_dnc = await _raw_dial(db, k, on_dnc, T0, rules)
    late = await add_contact(db, "+8613822222222", [k])
    d_late = await _raw_dial(db, k, late, datetime(2026, 3, 2, 13, 0, tzinfo=UTC), rules)  # 21:00 local
    gap = await add_contact(db, "+8613833333333", [k])
    await _raw_dial(db, k, gap, T0, rules)
    d_gap = await _raw_dial(db, k, gap, T0 + timedelta(days=29), rules)
    refused = await add_contact(db, "+8613844444444", [k])
    relaxed = rules_for(
        (Window("default", time(9), time(21)),), **{"caps.per_month": 40, "caps.same_product_gap_days": 0}
    )
    for i in range(3):
        await _raw_dial(db, k, refused, T0 + timedelta(hours=i), relaxed, disposition="refusal")
    d_refused = await _raw_dial(db, k, refused, T0 + timedelta(hours=5), relaxed)
    busy = await add_contact(db, "+8613855555555", [k])
    holder = await _raw_dial(db, k, busy, T0, relaxed, minutes=10, agent="agent7")
    d_overlap = await _raw_dial(db, k, busy, T0 + timedelta(minutes=2), relaxed)
    other = await add_contact(db, "+8613866666666", [k])
    d_agent = await _raw_dial(db, k, other, T0 + timedelta(minutes=3), relaxed, agent="agent7")
    got = await _reasons(db)
    by_dial = {}
    for i, rule, reason in got:
        by_dial.setdefault(i, []).append((rule, reason))
    assert set(by_dial) == {d_dnc, d_late, d_gap, d_refused, d_overlap, d_agent}
    assert "public_phone list" in by_dial[d_dnc][0][1]
    assert (
        "outside the call window" in by_dial[d_late][0][1]
        and "21:00:00 Asia/Shanghai" in by_dial[d_late][0][1]
    )
    assert "29.0 days after" in by_dial[d_gap][0][1]
    assert "refused 3 times" in by_dial[d_refused][0][1]
    assert "still live" in by_dial[d_overlap][0][1]
    assert by_dial[d_agent] == [("R-PACE", f"agent agent7 already held by dial {holder}")]
    # masked numbers only
    assert all("****" in v.number_masked for v in await audit(db, T0 - timedelta(days=1)))


async def test_rules_as_they_stood_dnc_added_later_and_an_older_rule_set(db, make_campaign):
    old = rules_for(**{"caps.per_month": 40, "caps.same_product_gap_days": 0})
    k = await make_campaign()
    c = await add_contact(db, "+8613812345678", [k])
    for d in range(3):  # three calls in a month were allowed by the rules of that day
        await _raw_dial(db, k, c, T0 + timedelta(days=d), old)
    await dnc.add(db, "+8613812345678", "complaint", at=T0 + timedelta(days=5), by="sup1")
    assert await _reasons(db) == []
    late = await _raw_dial(db, k, c, T0 + timedelta(days=6), old)
    assert [(i, r) for i, r, _ in await _reasons(db)] == [(late, "R-DNC")]


async def test_a_hesitant_customers_follow_up_may_use_one_attempt_past_the_budget(db, make_campaign):
    """R-FOLLOWUP keeps one attempt for a customer who said 考虑 (no_decision): the follow-up dial is
    not a violation of the campaign's attempt limit, a second one past it is."""
    rules = rules_for(**{"caps.same_product_gap_days": 0})
    k = await make_campaign(max_attempts=2)
    c = await add_contact(db, "+8613812345678", [k])
    await _raw_dial(db, k, c, T0, rules)
    await _raw_dial(db, k, c, T0 + timedelta(days=40), rules, disposition="no_decision")
    follow_up = await _raw_dial(db, k, c, T0 + timedelta(days=80), rules)
    past = await _raw_dial(db, k, c, T0 + timedelta(days=120), rules)
    got = await _reasons(db)
    assert [(i, r) for i, r, _ in got] == [(past, "R-CAPS")]
    assert "attempt 4 for this contact in the campaign (max 2)" in got[0][2]
    assert follow_up not in [i for i, _, _ in got]
    # without the hesitant verdict the same third dial is over the limit
    k2 = await make_campaign(name="c2", max_attempts=2)
    c2 = await add_contact(db, "+8613899998888", [k2])
    await _raw_dial(db, k2, c2, T0, rules)
    await _raw_dial(db, k2, c2, T0 + timedelta(days=40), rules, disposition="refusal")
    third = await _raw_dial(db, k2, c2, T0 + timedelta(days=80), rules)
    assert third in [i for i, _, _ in await _reasons(db)]

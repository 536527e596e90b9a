"""R-CAPS edges through the real claim path (the eligibility query re-run before each dial)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from cti.outbound import outcomes
from cti.outbound.eligibility import next_eligible, rule_set_id, try_claim
from tests.outbound.conftest import add_contact, rules_for

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai
NUM = "+8613812345678"


async def _dial(db: asyncpg.Connection, campaign: int, contact: int, at: datetime, rules, agent=None):
    rs = await rule_set_id(db, rules)
    c = await try_claim(
        db,
        campaign_id=campaign,
        contact_id=contact,
        now=at,
        rules=rules,
        rule_set=rs,
        process="p1",
        agent=agent,
    )
    if c is not None:
        await outcomes.record_end(db, c.dial_id, "no_answer", at + timedelta(seconds=30))
    return c


async def test_third_call_within_a_month_is_refused_and_the_day_three_months_later_is_allowed(
    db, make_campaign
):
    rules = rules_for(**{"caps.same_product_gap_days": 0})  # isolate the month cap
    k = await make_campaign()
    contact = await add_contact(db, NUM, [k])
    assert await _dial(db, k, contact, T0, rules)
    second = T0 + timedelta(days=20)
    assert await _dial(db, k, contact, second, rules)
    # 3rd call in the month: refused, by the query and by the claim
    third = T0 + timedelta(days=29)
    assert await next_eligible(db, k, third, rules) == []
    assert await _dial(db, k, contact, third, rules) is None
    # still quiet a day before 3 months (90 days) after the 2nd call
    assert await _dial(db, k, contact, second + timedelta(days=89), rules) is None
    # the day 3 months later: allowed
    assert await _dial(db, k, contact, second + timedelta(days=90), rules)


async def test_two_calls_more_than_a_month_apart_do_not_trigger_the_quiet_period(db, make_campaign):
    rules = rules_for()
    k = await make_campaign()
    contact = await add_contact(db, NUM, [k])
    assert await _dial(db, k, contact, T0, rules)
    assert await _dial(db, k, contact, T0 + timedelta(days=31), rules)
    assert await _dial(db, k, contact, T0 + timedelta(days=62), rules)


async def test_thirty_first_call_in_a_year_is_refused(db, make_campaign):
    # month cap relaxed so the year cap is the one that binds; product gap 0 (distinct days)
    rules = rules_for(**{"caps.per_month": 40, "caps.same_product_gap_days": 0})
    k = await make_campaign()
    contact = await add_contact(db, NUM, [k])
    for i in range(30):
        assert await _dial(db, k, contact, T0 + timedelta(days=i * 10), rules), i
    t31 = T0 + timedelta(days=300)
    assert await _dial(db, k, contact, t31, rules) is None
    # once the first call is a year old, one more is allowed
    assert await _dial(db, k, contact, T0 + timedelta(days=365), rules)


async def test_same_product_29th_day_refused_30th_allowed_other_product_not_affected(db, make_campaign):
    rules = rules_for()
    broadband = await make_campaign("bb", "broadband")
    tv = await make_campaign("tv", "iptv")
    contact = await add_contact(db, NUM, [broadband, tv])
    assert await _dial(db, broadband, contact, T0, rules)
    assert await _dial(db, broadband, contact, T0 + timedelta(days=29), rules) is None
    assert await _dial(db, tv, contact, T0 + timedelta(days=29), rules)  # a different product
    # the 2nd call in the month was made (by tv) -> quiet now applies to broadband too
    assert await _dial(db, broadband, contact, T0 + timedelta(days=30), rules) is None


async def test_same_product_gap_ends_on_day_thirty(db, make_campaign):
    rules = rules_for()
    k = await make_campaign()
    contact = await add_contact(db, NUM, [k])
    assert await _dial(db, k, contact, T0, rules)
    assert await _dial(db, k, contact, T0 + timedelta(days=30), rules)


async def test_third_refusal_ends_the_product(db, make_campaign):
    rules = rules_for(**{"caps.per_month": 40, "caps.same_product_gap_days": 0})
    k = await make_campaign("bb", "broadband")
    other = await make_campaign("tv", "iptv")
    contact = await add_contact(db, NUM, [k, other])
    for i in range(3):
        c = await _dial(db, k, contact, T0 + timedelta(days=i), rules)
        assert c is not None
        await outcomes.record_disposition(db, c.dial_id, "refusal", T0, by="agent1")
    assert await _dial(db, k, contact, T0 + timedelta(days=100), rules) is None
    assert await _dial(db, other, contact, T0 + timedelta(days=100), rules)


async def test_count_when_answered_policy_ignores_unanswered_dials(db, make_campaign):
    rules = rules_for(**{"outbound.count_at": "answer", "caps.same_product_gap_days": 0})
    k = await make_campaign()
    contact = await add_contact(db, NUM, [k])
    for d in (0, 1, 2):  # three unanswered dials: none counts
        assert await _dial(db, k, contact, T0 + timedelta(days=d), rules)
    rs = await rule_set_id(db, rules)
    for d in (3, 4):
        c = await try_claim(
            db,
            campaign_id=k,
            contact_id=contact,
            now=T0 + timedelta(days=d),
            rules=rules,
            rule_set=rs,
            process="p1",
        )
        assert c is not None
        await outcomes.record_answer(db, c.dial_id, T0 + timedelta(days=d, seconds=5), rules)
        await outcomes.record_end(db, c.dial_id, "answered", T0 + timedelta(days=d, seconds=60))
    # two answered calls within a month reach the cap
    assert await _dial(db, k, contact, T0 + timedelta(days=5), rules) is None

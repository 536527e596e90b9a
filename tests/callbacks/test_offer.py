"""Callback offer decisions, abandon protection, and joining an open callback (real PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from cti.callbacks.offer import decide_offer, interpret_reply, open_callback
from cti.callbacks.repo import InvalidCallbackNumber, create_or_join
from cti.peak.predict import Prediction
from cti.policy import load_policy

POLICY = load_policy()
NO = Prediction(False, 60.0, "wait_for_agent")
YES = Prediction(True, 3.0, "free_agent")
T0 = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)


def test_offer_only_in_peak_when_not_answerable_and_number_known():
    assert decide_offer(in_peak=True, calling_number="13812345678", prediction=NO).route == "callback_offer"
    assert decide_offer(in_peak=False, calling_number="13812345678", prediction=NO).reason == "not_peak"
    assert decide_offer(in_peak=True, calling_number="13812345678", prediction=YES).reason == "answerable"
    for withheld in (None, "", "<unknown>", "anonymous", "Restricted"):
        d = decide_offer(in_peak=True, calling_number=withheld, prediction=NO)
        assert (d.route, d.reason, d.number) == ("queue", "withheld", None)


def test_reply_confirm_other_decline_and_retries():
    r = interpret_reply("1", calling_number="138-1234-5678", tries=1)
    assert (r.action, r.reason, r.number) == ("callback", "confirmed", "13812345678")
    r = interpret_reply("13987654321", calling_number="13812345678", tries=1)
    assert (r.action, r.reason, r.number) == ("callback", "other_number", "13987654321")
    assert interpret_reply("2", calling_number="13812345678", tries=1).action == "queue"
    assert interpret_reply("", calling_number="13812345678", tries=1).action == "reprompt"
    assert interpret_reply(None, calling_number="13812345678", tries=2) == interpret_reply(
        "", calling_number="x", tries=2
    )
    assert interpret_reply("", calling_number="13812345678", tries=2).action == "queue"
    assert interpret_reply("99", calling_number="13812345678", tries=1).reason == "invalid"
    assert interpret_reply("99", calling_number="13812345678", tries=2).action == "queue"
    # confirming a withheld number is impossible: ask for another, then queue
    assert interpret_reply("1", calling_number="<unknown>", tries=1).action == "reprompt"


async def test_same_number_joins_open_callback_keeping_earliest_time(db):
    a = await create_or_join(
        db, number="13812345678", did="4008001234", kind="peak", now=T0 + timedelta(minutes=5)
    )
    b = await create_or_join(db, number="138 1234 5678", did="4008009999", kind="abandon", now=T0)
    assert a.created and not b.created and b.id == a.id and b.call_count == 2
    row = await db.fetchrow("SELECT * FROM callbacks WHERE id = $1", a.id)
    assert row["first_call_at"] == T0 and row["last_call_at"] == T0 + timedelta(minutes=5)
    assert row["did"] == "4008001234"  # the DID of the first call is kept
    with pytest.raises(InvalidCallbackNumber):
        await create_or_join(db, number="<unknown>", did=None, kind="peak", now=T0)
    # once the callback is finished, a new call opens a new one
    await db.execute("UPDATE callbacks SET status = 'done', outcome = 'reached' WHERE id = $1", a.id)
    c = await create_or_join(
        db, number="13812345678", did="4008001234", kind="peak", now=T0 + timedelta(hours=1)
    )
    assert c.created and c.id != a.id


async def test_concurrent_callers_from_many_connections_share_one_open_row(db_url, db):
    n = 12
    conns = [await asyncpg.connect(db_url) for _ in range(n)]
    try:
        times = [T0 + timedelta(seconds=(i * 7) % n) for i in range(n)]
        refs = await asyncio.gather(
            *(
                create_or_join(c, number="13812345678", did="4008001234", kind="peak", now=t)
                for c, t in zip(conns, times, strict=True)
            )
        )
    finally:
        for c in conns:
            await c.close()
    assert sum(r.created for r in refs) == 1 and len({r.id for r in refs}) == 1
    rows = await db.fetch(
        "SELECT * FROM callbacks WHERE number = '13812345678' AND status IN ('open', 'dialing')"
    )
    assert len(rows) == 1
    assert rows[0]["call_count"] == n and rows[0]["first_call_at"] == min(times)


async def test_open_callback_priorities(db):
    cb = POLICY.callbacks
    first = await open_callback(db, number="13812345678", did="4008001234", kind="peak", now=T0, policy=cb)
    assert await db.fetchval("SELECT priority FROM callbacks WHERE id = $1", first.id) == 0
    again = await open_callback(db, number="13812345678", did="4008001234", kind="abandon", now=T0, policy=cb)
    assert again.id == first.id
    assert (
        await db.fetchval("SELECT priority FROM callbacks WHERE id = $1", first.id)
        == cb.repeat_caller_priority
    )
    night = await open_callback(db, number="13900000000", did="4008001234", kind="night", now=T0, policy=cb)
    assert await db.fetchval("SELECT priority FROM callbacks WHERE id = $1", night.id) == cb.night_priority

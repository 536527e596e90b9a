"""Abandon protection applied: QueueCallerAbandon -> abandon callback, joining an open one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from cti.callbacks.abandon import AbandonWatcher
from cti.clock import ManualClock
from cti.policy import load_policy
from tests.callbacks.test_offer import ABANDON
from tests.peak.fakes import ListSink

POLICY = load_policy()
T0 = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)


@pytest.fixture
async def pool(db_url):
    p = await asyncpg.create_pool(db_url, min_size=1, max_size=2)
    yield p
    await p.close()


async def test_abandon_in_peak_creates_then_joins(pool, db):
    peak = {"on": True}
    sink = ListSink()
    w = AbandonWatcher(pool, policy=POLICY, clock=ManualClock(T0), events=sink, in_peak=lambda: peak["on"])
    d = await w.handle_ami(ABANDON)
    assert d is not None and d.create
    row = await db.fetchrow("SELECT * FROM callbacks")
    assert (row["kind"], row["did"], row["queue"], row["source_linkedid"]) == (
        "abandon", "4008001234", "sales", "1795430796.0",
    )  # fmt: skip
    assert row["first_call_at"] == T0 - timedelta(seconds=15)  # when they joined the queue
    again = {**ABANDON, "Uniqueid": "1795430900.7", "Linkedid": "1795430900.7"}
    await w.handle_ami(again)
    row = await db.fetchrow("SELECT * FROM callbacks")
    assert row["call_count"] == 2 and await db.fetchval("SELECT count(*) FROM callbacks") == 1
    assert [e.payload["created"] for e in sink.of_type("callback_abandon")] == [True, False]
    assert sink.events[0].payload["number"] == "138****5678"
    # out of peak, not protected ... unless they declined the offer
    peak["on"] = False
    other = {**ABANDON, "CallerIDNum": "13900001111", "Uniqueid": "u-3"}
    assert (await w.handle_ami(other)).reason == "not_protected"
    w.note_declined("u-3")
    assert (await w.handle_ami(other)).create
    assert await db.fetchval("SELECT count(*) FROM callbacks") == 2
    assert await w.handle_ami({"Event": "QueueCallerLeave"}) is None

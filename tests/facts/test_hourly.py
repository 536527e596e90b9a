"""The hourly rollups (facts_hourly) that the report pages read: written with each call's facts,
idempotent, and giving exactly the figures call_facts gives, for every grouping a page shows."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from cti.facts.derive import CallFact
from cti.facts.repo import write_calls
from cti.policy import load_policy
from cti.reports import figures as fig
from cti.reports.pages import bounds, report

POLICY = load_policy()
TZ = ZoneInfo("Asia/Shanghai")
GROUPS = ("total", "hour", "day", "month", "did", "queue", "agent")


def _calls(n: int, seed: int = 7) -> list[CallFact]:
    """Calls over two local days (both sides of local midnight, so UTC and local days differ)."""
    rnd = random.Random(seed)
    t0 = datetime(2026, 11, 15, 20, tzinfo=TZ).timestamp()
    out = []
    for i in range(n):
        start = t0 + rnd.uniform(0, 36 * 3600)
        did = rnd.choice(["4008001234", "4008005678", ""])
        c = CallFact(linkedid=f"17{i:05d}.1", started_at=start, did=did)
        kind = rnd.choice(["answered", "answered", "answered", "abandoned", "timeout", "unqueued"])
        c.caller_num = f"138{rnd.randrange(10**8):08d}"
        c.ended_at = start + 300
        if kind != "unqueued":
            c.queue = rnd.choice(["sales", "service"])
            c.offered_at = start + 2
        if kind == "answered":
            c.answered_by = rnd.choice(["agent1", "agent2", "agent3"])
            c.hold_s = round(rnd.uniform(0.5, 40), 3)
            c.answered_at = start + 2 + c.hold_s
            c.time_to_answer_s = 2 + c.hold_s
            c.talk_s = round(rnd.uniform(5, 400), 3) if rnd.random() > 0.05 else None
            c.rings_to_answer = POLICY.ring.rings_at(c.hold_s)
        elif kind == "abandoned":
            c.abandoned = True
            c.abandon_wait_s = round(rnd.uniform(1, 60), 3)
            c.left_queue_at = start + 2 + c.abandon_wait_s
        elif kind == "timeout":
            c.left_queue_at = start + 62
        out.append(c)
    return out


async def test_rollups_give_the_figures_of_call_facts(db: asyncpg.Connection) -> None:
    calls = _calls(600)
    for i in range(0, len(calls), 100):  # in batches, as calls end
        await write_calls(db, POLICY.ring, calls[i : i + 100], [], [])
    hourly = [tuple(r) for r in await db.fetch("SELECT * FROM facts_hourly ORDER BY 1, 2, 3, 4")]
    await write_calls(db, POLICY.ring, calls[:50], [], [])  # a re-run: nothing changes
    assert [tuple(r) for r in await db.fetch("SELECT * FROM facts_hourly ORDER BY 1, 2, 3, 4")] == hourly
    assert sum(r[4] for r in hourly) == 600

    for since, until in (bounds(date(2026, 11, 16), "day", TZ), bounds(date(2026, 11, 16), "month", TZ)):
        assert fig._whole_hours(since, until, str(TZ))  # so the rollups answer
        from_rollups = await fig.figures_by(db, since, until, GROUPS, str(TZ), POLICY)
        from_facts = await fig.figures_by(db, since, until, GROUPS, str(TZ), POLICY, rollups=False)
        assert from_rollups == from_facts
        assert from_facts["total"][0].offered > 0 and len(from_facts["hour"]) > 10


async def test_the_report_page_reads_the_rollups_unless_the_policy_changed(db: asyncpg.Connection) -> None:
    await write_calls(db, POLICY.ring, _calls(200), [], [])
    day = date(2026, 11, 16)
    before = await report(db, day, "day", TZ, POLICY)
    # a rollup row changed under the page shows on it: the page reads facts_hourly, not call_facts
    await db.execute(
        """UPDATE facts_hourly SET calls = calls + 100
           WHERE ctid = (SELECT ctid FROM facts_hourly WHERE hour = $1 LIMIT 1)""",
        datetime(2026, 11, 16, 2, tzinfo=UTC),
    )
    after = await report(db, day, "day", TZ, POLICY)
    assert after["total"]["calls"] == before["total"]["calls"] + 100
    # counted with another ring policy: the rollups do not answer, call_facts does
    slower = POLICY.model_copy(update={"ring": POLICY.ring.model_copy(update={"max_rings": 3})})
    since, until = bounds(day, "day", TZ)
    assert not await fig._rollups_serve(db, since, until, str(TZ), slower)
    got = await fig.figures_by(db, since, until, ("total",), str(TZ), slower)
    want = await fig.figures_by(db, since, until, ("total",), str(TZ), slower, rollups=False)
    assert got == want and got["total"][0].calls == before["total"]["calls"]
    # a window that does not start on an hour (the 11:30 report) reads call_facts
    assert not fig._whole_hours(since, since + timedelta(hours=11, minutes=30), str(TZ))
    assert not fig._whole_hours(since, until, "Asia/Kolkata")  # +05:30


async def test_two_processes_writing_the_same_calls_at_once(
    db: asyncpg.Connection, pool: asyncpg.Pool
) -> None:
    """Two CTI processes hearing one PBX write every call twice, concurrently: no deadlock, the rows
    of one writer."""
    calls = _calls(300, seed=11)
    await write_calls(db, POLICY.ring, calls, [], [])
    want = [tuple(r) for r in await db.fetch("SELECT * FROM facts_hourly ORDER BY 1, 2, 3, 4")]
    facts = [tuple(r) for r in await db.fetch("SELECT * FROM call_facts ORDER BY linkedid")]

    async def write(batch: list[CallFact]) -> None:
        async with pool.acquire() as conn:
            for i in range(0, len(batch), 30):
                await write_calls(conn, POLICY.ring, batch[i : i + 30], [], [])

    await asyncio.gather(write(calls), write(calls[::-1]), write(calls[100:] + calls[:100]))
    assert [tuple(r) for r in await db.fetch("SELECT * FROM facts_hourly ORDER BY 1, 2, 3, 4")] == want
    assert [tuple(r) for r in await db.fetch("SELECT * FROM call_facts ORDER BY linkedid")] == facts

"""The issue's scripted day, driven through the simulator over AMI into the events table, then
`facts rebuild` and `fines rebuild`. The expected ledger, rewards and 11:30 report below are
written by hand from the script (amounts from the shipped policy.toml), not computed by the code
under test. Inputs nothing writes yet are inserted as their future writers would: the peak guard's
`peak_violations` row, line-test results, follow-up calls, and the AGI route event (the test's
FastAGI script stands in for the route handler and emits its `route` event).

Day D = Monday 2026-11-16, Asia/Shanghai; the queue rings all members. Roster: morning 08:00-17:00
agent1, agent2, agent3; middle 10:00-18:00 agent3; supervisor sup1 for both.
  07:55 agent1, agent2 log in          08:20 agent3 logs in (late: 20 min)
  09:00 call A: agent1 answers after 2 s, talks 60 s, caller hangs up     (quiet morning: no fine)
  09:10 order o1 (agent1)
  10:05 call B: nobody answers, the caller gives up after 8 s while three agents are logged in
  10:30 call C: agent1 answers after 3 s, talks 20 s and hangs up first
  10:40 order o2 (agent2)
  11:00 call D: the caller asked for agent2 (IVR); agent2 rings 10 s unanswered, then the queue:
        agent1 answers after 2 s, talks 40 s
  11:10 order o3 (agent1)                              [11:30 report: 4 calls, orders agent1 2, agent2 1]
  12:00 order o4: agent2 enters a duplicate of o1 (belongs to o1, not a sale)
  14:00 agent3 pauses (break) during a TV-ad peak: the peak guard records it
  14:30 order o5 (agent3)      15:00 order o6: agent2 enters an add-on to o5 (credited to agent3)
  15:00 agent2 pauses without a reason (R-STATUS), unpauses 15:05
  line 4008001234: morning test done, middle test skipped
  17:00 agent1, agent2 log out      18:00 agent3 logs out
  follow-up calls that week: agent1 20, agent2 15, agent3 0 (quota 20)
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from click.testing import CliRunner

from cti.ami.client import AMIClient
from cti.ami.listener import AMIListener
from cti.cli import main
from cti.facts.repo import rebuild as rebuild_facts
from cti.orders.imports import OrderIn, store
from cti.policy import load_policy, load_policy_from_db
from cti.reports.schedule import run_due
from cti.sim import Simulator
from cti.sim.scenario import QueueConfig, Scenario
from cti.state.live import LiveState
from cti.store.events import Event, EventStore
from tests.sim.helpers import FastAgiServer

TZ = ZoneInfo("Asia/Shanghai")
D = date(2026, 11, 16)
DAY0 = datetime(2026, 11, 16, tzinfo=TZ)
UNTIL = datetime(2026, 11, 24, tzinfo=TZ)  # after D's week ended, before November ends
LINE = "4008001234"
CALLERS = {"A": "13800000001", "B": "13800000002", "C": "13800000003", "D": "13800000004"}


def at(hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime(2026, 11, 16, hh, mm, ss, tzinfo=TZ)


async def drive_day(db_url: str, tmp_path: Path) -> None:
    store_ = EventStore(db_url, tmp_path / "spool")
    await store_.start()

    async def route(env: dict[str, str], cmd) -> None:  # type: ignore[no-untyped-def]
        await cmd('SET VARIABLE CTI_QUEUE "sales"')
        if env.get("agi_callerid") == CALLERS["D"]:
            await cmd('SET VARIABLE CTI_PREFERRED "agent2"')
            await cmd('SET VARIABLE CTI_PREFERRED_TIMEOUT "10"')
            uid = env["agi_uniqueid"]
            await store_.append(
                Event(
                    sim.now_dt(),
                    "agi",
                    "route",
                    {
                        "route": "queue",
                        "preferred": "agent2",
                        "preferred_reason": "requested",
                        "number": CALLERS["D"],
                    },
                    key=f"agi:route:{uid}",
                    uniqueid=uid,
                    linkedid=uid,
                    agent="agent2",
                    queue="sales",
                )
            )
        await cmd('SET VARIABLE CTI_ROUTE "queue"')

    agi = FastAgiServer({"route": route})
    port = await agi.start()
    start = at(7, 50).astimezone(UTC)
    sim = Simulator(
        Scenario(start=start, queues=(QueueConfig(strategy="ringall", timeout=10.0, retry=2.0),)),
        agi_url=f"agi://127.0.0.1:{port}",
        write_audio=False,
    )
    for a in ("agent1", "agent2", "agent3"):
        sim.add_agent(a)
    await sim.start()
    client = AMIClient("127.0.0.1", sim.ami_port, "cti", "cti", ping_interval=0)
    listener = AMIListener(client, LiveState(), store_)

    async def until(t: datetime) -> None:
        await sim.advance((t.astimezone(UTC) - sim.now_dt()).total_seconds())

    try:
        await listener.start()
        await until(at(7, 55))
        sim.login("agent1")
        sim.login("agent2")
        for a in ("agent1", "agent2", "agent3"):
            sim.set_answer(a, "never")
        await until(at(8, 20))
        sim.login("agent3")
        await until(at(9, 0))
        sim.set_answer("agent1", "auto", delay=2.0)
        sim.place_call(CALLERS["A"], LINE, behaviour={"talk_time": 60, "hangup_first": "caller"})
        await until(at(10, 5))
        sim.set_answer("agent1", "never")
        sim.place_call(CALLERS["B"], LINE, behaviour={"patience": 8})
        await until(at(10, 30))
        sim.set_answer("agent1", "auto", delay=3.0)
        sim.place_call(CALLERS["C"], LINE, behaviour={"talk_time": 20, "hangup_first": "agent"})
        await until(at(11, 0))
        sim.set_answer("agent1", "auto", delay=2.0)
        sim.place_call(
            CALLERS["D"], LINE, behaviour={"talk_time": 40, "hangup_first": "caller", "patience": 120}
        )
        await until(at(14, 0))
        sim.pause_at_phone("agent3", True, "break")
        await until(at(14, 10))
        sim.pause_at_phone("agent3", False)
        await until(at(15, 0))
        sim.pause_at_phone("agent2", True, "")
        await until(at(15, 5))
        sim.pause_at_phone("agent2", False)
        await until(at(17, 0))
        for a in ("agent1", "agent2"):
            sim.logout(a)
        await until(at(18, 0))
        sim.logout("agent3")
        await until(at(18, 1))
        for _ in range(300):
            if listener.live.summary()["channels"] == 0:
                break
            await asyncio.sleep(0.01)
    finally:
        await listener.close()
        await sim.close()
        await agi.close()
        await store_.close()


async def seed_inputs(db: asyncpg.Connection) -> None:
    await db.execute(
        """INSERT INTO agents (id, name, interface, role) VALUES
           ('sup1', '王主管', 'PJSIP/sup1', 'supervisor'),
           ('agent1', '坐席一', 'PJSIP/agent1', 'agent'), ('agent2', '坐席二', 'PJSIP/agent2', 'agent'),
           ('agent3', '坐席三', 'PJSIP/agent3', 'agent')"""
    )
    await db.execute(
        """INSERT INTO web_users (username, password_hash, role) VALUES ('sup1', 'x', 'supervisor'),
           ('agent1', 'x', 'agent')"""
    )
    # the peak guard's record of agent3's pause during the ad (cti.peak.guard writes these)
    await db.execute(
        """INSERT INTO peak_violations (agent, interface, queue, kind, occurred_at, reason, peak_cause,
           fine_agent, recorded_at)
           VALUES ('agent3', 'PJSIP/agent3', 'sales', 'pause', $1, 'break', 'schedule', 10.00, $1)""",
        at(14, 0),
    )
    await db.execute("INSERT INTO test_lines (line) VALUES ($1)", LINE)
    await db.execute(
        "INSERT INTO line_tests (line, day, slot, tested_at, result) VALUES ($1, $2, 'morning', $3, 'ok')",
        LINE,
        D,
        at(8, 30),
    )
    rows = [("agent1", i) for i in range(20)] + [("agent2", i) for i in range(15)]
    await db.executemany(
        "INSERT INTO followup_calls (agent, called_at) VALUES ($1, $2)",
        [(a, at(16, 0) + timedelta(days=1, minutes=i)) for a, i in rows],
    )
    orders = [
        OrderIn("o1", "13900000001", "agent1", at(9, 10)),
        OrderIn("o2", "13900000002", "agent2", at(10, 40)),
        OrderIn("o3", "13900000003", "agent1", at(11, 10)),
        OrderIn("o4", "13900000001", "agent2", at(12, 0), duplicate_of="o1"),
        OrderIn("o5", "13900000005", "agent3", at(14, 30)),
        OrderIn("o6", "13900000005", "agent2", at(15, 0), parent="o5"),
    ]
    assert await store(db, orders, "api") == {"inserted": 6, "updated": 0}


def cli(db_url: str, *args: str) -> str:
    r = CliRunner().invoke(main, list(args), env={"CTI_DATABASE_URL": db_url}, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r.output


async def ledger(db: asyncpg.Connection) -> list[tuple[Any, ...]]:
    rows = await db.fetch(
        "SELECT id, rule, person, role, amount_fen, points FROM fine_ledger ORDER BY occurred_at, id"
    )
    return [tuple(r) for r in rows]


@pytest.fixture
async def day(db_url: str, db: asyncpg.Connection, tmp_path: Path) -> dict[str, str]:
    await seed_inputs(db)
    await db.executemany(
        "INSERT INTO roster (day, shift, group_name, supervisor, agents, updated_by)"
        " VALUES ($1,$2,$3,$4,$5,'t')",
        [
            (D, "morning", "default", "sup1", ["agent1", "agent2", "agent3"]),
            (D, "middle", "mid", "sup1", ["agent3"]),
        ],
    )
    await drive_day(db_url, tmp_path)
    await rebuild_facts(db, DAY0 - timedelta(hours=1), load_policy().ring)
    calls = await db.fetch("SELECT linkedid, caller_num FROM call_facts ORDER BY started_at")
    by_caller = {r["caller_num"]: r["linkedid"] for r in calls}
    assert sorted(by_caller) == sorted(CALLERS.values())
    return {k: by_caller[v] for k, v in CALLERS.items()}


def expected_ledger(lid: dict[str, str]) -> list[tuple[Any, ...]]:
    """By hand, in time order (id, rule, person, role, fen, points)."""
    b, c, d = lid["B"], lid["C"], lid["D"]
    return [
        ("late:2026-11-16:morning:agent3:late:agent3", "late", "agent3", "agent", 500, 0),
        (f"missed_call:{b}:agent1", "missed_call", "agent1", "agent", 1000, 0),
        (f"missed_call:{b}:agent2", "missed_call", "agent2", "agent", 1000, 0),
        (f"missed_call:{b}:agent3", "missed_call", "agent3", "agent", 1000, 0),
        (f"missed_call:{b}:sup1:sup", "missed_call", "sup1", "supervisor", 5000, 0),
        (f"agent_hung_up_first:{c}:agent1", "agent_hung_up_first", "agent1", "agent", 2000, 0),
        (f"ignored_request:{d}:agent2", "ignored_request", "agent2", "agent", 3000, 0),
        (
            "peak_pause:agent3@sales@2026-11-16T06:00:00+00:00:pause:agent3",
            "peak_pause",
            "agent3",
            "agent",
            1000,
            0,
        ),
        (
            "status_violation:agent2@sales@2026-11-16T07:00:00+00:00:no_reason:agent2",
            "status_violation",
            "agent2",
            "agent",
            0,
            2,
        ),
        (
            "line_test_skipped:2026-11-16:middle:4008001234:sup1:sup",
            "line_test_skipped",
            "sup1",
            "supervisor",
            2000,
            0,
        ),
        ("followup_shortfall:2026-11-16:agent2:agent2", "followup_shortfall", "agent2", "agent", 100, 0),
        # agent3 made none of 20: 20 × 0.20 元
        ("followup_shortfall:2026-11-16:agent3:agent3", "followup_shortfall", "agent3", "agent", 400, 0),
    ]


EXPECTED_REWARDS = [
    # daily: agent1 and agent3 both have 2 effective orders; agent1 reached 2 first (11:10 < 15:00)
    ("champion:day:2026-11-16", "agent1", 2, 1000),
    ("champion:week:2026-11-16", "agent1", 2, 5000),
    ("commission:day:2026-11-16:agent1", "agent1", 2, 40),
    ("commission:day:2026-11-16:agent2", "agent2", 1, 20),
    ("commission:day:2026-11-16:agent3", "agent3", 2, 40),
]


async def rewards(db: asyncpg.Connection) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in await db.fetch("SELECT id, agent, orders, amount_fen FROM rewards ORDER BY id")]


async def test_scripted_day_ledger_rewards_and_report(
    db_url: str, db: asyncpg.Connection, day: dict[str, str]
) -> None:
    out = await asyncio.to_thread(
        cli, db_url, "fines", "rebuild", "--since", DAY0.isoformat(), "--until", UNTIL.isoformat()
    )
    want = expected_ledger(day)
    assert await ledger(db) == want
    assert "violations=9" in out and "dismissal_flags=0" in out
    assert await rewards(db) == EXPECTED_REWARDS

    # the source of every row leads back to the call or record that caused it
    (src,) = await db.fetch("SELECT DISTINCT source_id FROM fine_ledger WHERE rule = 'missed_call'")
    assert src["source_id"] == day["B"]

    # a supervisor waives agent3's missed-call fine; an agent may not waive
    wid = f"missed_call:{day['B']}:agent3"
    r = await asyncio.to_thread(
        CliRunner().invoke,
        main,
        ["fines", "waive", wid, "--by", "agent1", "--reason", "x"],
        env={"CTI_DATABASE_URL": db_url},
    )
    assert r.exit_code == 2 and "may not waive" in r.output
    await asyncio.to_thread(
        cli, db_url, "fines", "waive", wid, "--by", "sup1", "--reason", "系统故障 phone broken"
    )

    # a policy change after the day (fines up, commission up) re-prices nothing of that day
    await db.execute(
        """INSERT INTO policy_values (key, value, updated_by) VALUES
           ('fines.missed_call.agent', '"15.00"', 'boss'),
           ('rewards.commission_per_order', '"0.50"', 'boss')"""
    )
    await asyncio.to_thread(
        cli, db_url, "fines", "rebuild", "--since", DAY0.isoformat(), "--until", UNTIL.isoformat()
    )
    assert await ledger(db) == want
    assert await rewards(db) == EXPECTED_REWARDS
    w = await db.fetchrow("SELECT waived_by, reason FROM fine_waivers WHERE ledger_id = $1", wid)
    assert tuple(w) == ("sup1", "系统故障 phone broken")
    audit = await db.fetch("SELECT actor, action FROM fine_waiver_audit")
    assert [tuple(a) for a in audit] == [("sup1", "waive")]

    # the 11:30 report: calls A-D and orders o1-o3, as of 11:30 even when run later (catch-up)
    policy = await load_policy_from_db(db)
    ran = await run_due(db, at(11, 31), policy, TZ, me="cti-1")
    assert ("midday", D) in [(s.kind, s.day) for s in ran]
    again = await run_due(db, at(11, 32), policy, TZ, me="cti-2")
    assert again == []  # the second process finds every due slot already run
    rep = json.loads(
        await db.fetchval("SELECT output FROM report_runs WHERE kind = 'midday' AND day = $1", D)
    )
    assert rep["orders"] == {"total": 3, "by_agent": {"agent1": 2, "agent2": 1}}
    inbound = rep["inbound"]
    assert {k: inbound[k] for k in ("calls", "offered", "answered", "abandoned", "timeout")} == {
        "calls": 4,
        "offered": 4,
        "answered": 3,
        "abandoned": 1,
        "timeout": 0,
    }
    assert inbound["sl_two_rings"] == 0.75 and inbound["within_30s"] == 0.75  # A, C, D of A-D
    assert inbound["asa_s"] == pytest.approx((2 + 3 + 2) / 3, abs=0.05)
    assert inbound["aht_s"] == pytest.approx((60 + 20 + 40) / 3, abs=0.05)
    assert inbound["abandon_wait_avg_s"] == pytest.approx(8, abs=0.05)
    # a restart at 17:05 catches up the afternoon and the morning shift's end, once
    late = await run_due(db, at(17, 5), policy, TZ, me="cti-1")
    assert {(s.kind, s.day) for s in late} == {("afternoon", D), ("shift_end:morning", D)}

"""R-LINE-TEST: line tests out through a (fake) carrier and back in through our real FastAGI route
handler; a broken loop fails with its reason and an alarm; a slot nobody ran is skipped; two
processes claim a slot once; the test call is no customer for facts, missed calls or the CDR sweep."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from cti.agi.context import MemoryEvents
from cti.agi.server import FastAgiServer
from cti.callbacks.cdr_sweep import sweep_cdr
from cti.callbacks.missed import MissedCallWatcher
from cti.clock import ManualClock
from cti.config import Settings
from cti.facts.derive import derive
from cti.linetest.runner import LineTester, LineTestScheduler
from cti.linetest.schedule import due, slots_for_day
from cti.metrics import LINE_TEST_OK
from cti.policy import load_policy
from tests.agi.conftest import make_ctx
from tests.agi.fake_asterisk import FakeChannel, env_lines, run_call
from tests.cliproc import run_cti

POLICY = load_policy()
TZ = ZoneInfo("Asia/Shanghai")
TEST_CALLER = "4008009999"  # what the carrier presents for our own outbound calls
DID = "4008001234"
MORNING = datetime(2026, 11, 23, 8, 5, tzinfo=TZ)  # 5 minutes into the morning shift (08:00)


class Carrier:
    """The PSTN between our Originate and our from-trunk: delivers the call back to the DID (as a
    FastAGI `route` session from Asterisk), or, broken, never does."""

    def __init__(self, agi_port: int, *, broken: bool = False, fail_reason: str | None = None) -> None:
        self.port, self.broken, self.fail_reason = agi_port, broken, fail_reason
        self.originates: list[dict[str, str]] = []
        self.channels: list[FakeChannel] = []
        self.tester: LineTester | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def action(self, name: str, headers: Mapping[str, str]) -> Mapping[str, Any]:
        assert name == "Originate"
        self.originates.append(dict(headers))
        t = asyncio.create_task(self._deliver(dict(headers)))
        self._tasks.add(t)
        return {
            "Response": "Success",
            "ActionID": f"a{len(self.originates)}",
            "Message": "Originate successfully queued",
        }

    async def _deliver(self, h: dict[str, str]) -> None:
        await asyncio.sleep(0.05)
        if self.fail_reason is not None and self.tester is not None:
            await self.tester.handle_ami(
                {
                    "Event": "OriginateResponse",
                    "Response": "Failure",
                    "ActionID": f"a{len(self.originates)}",  # a failure names no channel (06c)
                    "Uniqueid": "<unknown>",
                    "Reason": self.fail_reason,
                }
            )
            return
        if self.broken:
            return
        did = h["Channel"].removeprefix("PJSIP/").split("@")[0]
        ch = FakeChannel(vars={"CTI_DNIS": did, "CHANNEL(linkedid)": f"1795430750.{len(self.channels)}"})
        self.channels.append(ch)
        await run_call(
            self.port,
            ch,
            env_lines(agi_callerid=h["CallerID"], agi_uniqueid=f"1795430750.{len(self.channels) - 1}"),
        )


@pytest.fixture
async def agi(pool: asyncpg.Pool):  # type: ignore[no-untyped-def]
    settings = Settings(agi={"port": 0, "session_timeout_s": 2.0}, linetest={"caller_id": TEST_CALLER})
    ctx = make_ctx(settings=settings, pool=pool, clock=ManualClock(MORNING.astimezone(UTC)))
    server = FastAgiServer(ctx, host="127.0.0.1", port=0)
    await server.start()
    yield server
    await server.close()
    await ctx.aclose()


def make_tester(pool: asyncpg.Pool, carrier: Carrier, clock: ManualClock, events: MemoryEvents,
           timeout_s: float = 5.0) -> LineTester:  # fmt: skip
    t = LineTester(
        pool,
        action=carrier.action,
        clock=clock,
        events=events,
        caller_id=TEST_CALLER,
        trunk="trunk",
        timeout_s=timeout_s,
        poll_s=0.02,
    )
    carrier.tester = t
    return t


def test_slots_come_from_the_policy_shifts_and_a_late_test_is_skipped() -> None:
    day = date(2026, 11, 23)
    slots = slots_for_day(POLICY, day, TZ)
    assert [(s.shift, s.start.hour) for s in slots] == [("morning", 8), ("middle", 10)]
    dids = ["4008001234", "4008001002"]
    at = lambda h, m: datetime(2026, 11, 23, h, m, tzinfo=TZ)  # noqa: E731
    assert due(at(7, 59), slots, dids, set()) == []
    assert {(d.did, d.slot.shift, d.action) for d in due(at(8, 5), slots, dids, set())} == {
        ("4008001234", "morning", "run"), ("4008001002", "morning", "run")}  # fmt: skip
    assert {d.action for d in due(at(8, 30), slots, dids, set())} == {"skip"}  # 30 minutes: too late
    done = {(d, "morning", day) for d in dids}
    assert [(d.slot.shift, d.action) for d in due(at(10, 10), slots, dids[:1], done)] == [("middle", "run")]
    assert due(at(11, 0), slots, dids[:1], done | {(dids[0], "middle", day)}) == []


async def test_a_line_test_passes_through_the_carrier_loop(pool: asyncpg.Pool, agi: FastAgiServer) -> None:
    carrier = Carrier(agi.port)
    clock, events = ManualClock(MORNING.astimezone(UTC)), MemoryEvents()
    r = await make_tester(pool, carrier, clock, events).run(DID, via="cli")

    assert r.status == "passed" and r.reason is None and r.duration_s is not None
    (o,) = carrier.originates
    assert o["Channel"] == f"PJSIP/{DID}@trunk" and o["CallerID"] == TEST_CALLER
    assert o["ChannelId"] == f"cti-lt-{r.id}" and o["Application"] == "Wait"
    (ch,) = carrier.channels
    # hung up by the dialplan, never queued, never masked for an agent
    assert ch.vars["CTI_ROUTE"] == "hangup" and ch.vars["CTI_LINETEST"] == "1"
    assert "CTI_QUEUE" not in ch.vars
    row = await pool.fetchrow("SELECT * FROM line_test_runs WHERE id = $1", r.id)
    assert (row["status"], row["inbound_linkedid"], row["via"]) == ("passed", "1795430750.0", "cli")
    # not a customer: no route event, and the missed-call protection has its answer already
    ctx_events: MemoryEvents = agi.ctx.events  # type: ignore[assignment]
    assert ctx_events.of_type("route") == [] and len(ctx_events.of_type("line_test_inbound")) == 1
    assert (
        await pool.fetchval("SELECT reason FROM missed_calls WHERE linkedid = '1795430750.0'") == "line_test"
    )
    # the CDR sweep does not call it back either (Asterisk's row of the inbound leg, unanswered)
    await pool.execute(
        """INSERT INTO cdr (calldate, src, dst, channel, disposition, uniqueid, linkedid, duration)
           VALUES ($1, $2, 's', 'PJSIP/trunk-00000001', 'ANSWERED', '1795430750.0', '1795430750.0', 2)""",
        clock.now(),
        TEST_CALLER,
    )
    watcher = MissedCallWatcher(pool, policy=POLICY, clock=clock, events=MemoryEvents())
    async with pool.acquire() as conn:
        n = await sweep_cdr(
            conn,
            watcher,
            since=clock.now() - timedelta(hours=1),
            settled_before=clock.now() + timedelta(hours=1),
        )
    assert n == 0 and await pool.fetchval("SELECT count(*) FROM callbacks") == 0
    (ev,) = events.of_type("line_test_passed")
    assert ev.payload["did"] == DID
    assert LINE_TEST_OK.labels(DID)._value.get() == 1


async def test_a_broken_loop_fails_with_the_reason_and_an_alarm(
    pool: asyncpg.Pool, agi: FastAgiServer
) -> None:
    clock, events = ManualClock(MORNING.astimezone(UTC)), MemoryEvents()
    r = await make_tester(pool, Carrier(agi.port, broken=True), clock, events, timeout_s=0.5).run(DID)
    assert r.status == "failed" and "did not come back in through from-trunk within 0.5 s" in (r.reason or "")
    (alarm,) = events.of_type("line_test_failed")
    assert alarm.payload["reason"] == r.reason
    assert LINE_TEST_OK.labels(DID)._value.get() == 0
    # the carrier refuses it: failed at once with Asterisk's reason, not after the timeout
    r = await make_tester(pool, Carrier(agi.port, fail_reason="8"), clock, events, timeout_s=30).run(DID)
    assert (
        r.status == "failed" and r.reason == "originate failed: congestion (the carrier could not route it)"
    )
    # a late arrival after the timeout passes nothing and still is no customer
    late = FakeChannel(vars={"CTI_DNIS": DID, "CHANNEL(linkedid)": "1795430799.1"})
    await run_call(agi.port, late, env_lines(agi_callerid=TEST_CALLER))
    assert late.vars["CTI_ROUTE"] == "hangup"
    assert await pool.fetchval("SELECT count(*) FROM line_test_runs WHERE status = 'passed'") == 0


async def test_a_slot_nobody_ran_is_skipped_and_claimed_once(pool: asyncpg.Pool, agi: FastAgiServer) -> None:
    await pool.execute(
        "INSERT INTO agents (id, name, interface, did) VALUES ('a1', 'A', 'PJSIP/a1', '4008001002')"
    )
    carrier = Carrier(agi.port)
    events = MemoryEvents()

    def scheduler(at: datetime) -> LineTestScheduler:
        clock = ManualClock(at.astimezone(UTC))
        return LineTestScheduler(
            pool,
            make_tester(pool, carrier, clock, events),
            policy=POLICY,
            tz=TZ,
            clock=clock,
            events=events,
            dids=[DID],
        )

    # 08:05: two CTI processes tick together; each DID is called once
    results = await asyncio.gather(scheduler(MORNING).tick(), scheduler(MORNING).tick())
    assert sorted(r.did for rs in results for r in rs) == ["4008001002", DID]
    assert sorted(o["Channel"] for o in carrier.originates) == [
        "PJSIP/4008001002@trunk",
        f"PJSIP/{DID}@trunk",
    ]
    assert all(r.status == "passed" for rs in results for r in rs)
    # the CTI was down through the middle shift's first 30 minutes: skipped, with an alarm
    late = datetime(2026, 11, 23, 10, 31, tzinfo=TZ)
    skipped = await scheduler(late).tick()
    assert {(r.did, r.status) for r in skipped} == {(DID, "skipped"), ("4008001002", "skipped")}
    assert skipped[0].reason == "not run by 10:30, 30 minutes after the middle shift started"
    assert len(events.of_type("line_test_skipped")) == 2
    assert await scheduler(late).tick() == []  # recorded once
    assert len(carrier.originates) == 2
    # what the fines read (db/061): both lines owed, the morning results; no row = skipped
    assert sorted(await pool.fetch("SELECT line FROM test_lines WHERE active")) == [("4008001002",), (DID,)]
    fines_rows = await pool.fetch("SELECT line, slot, result FROM line_tests ORDER BY line")
    assert [tuple(r) for r in fines_rows] == [("4008001002", "morning", "ok"), (DID, "morning", "ok")]
    rows = await pool.fetch("SELECT shift, status FROM line_test_runs ORDER BY shift, did")
    assert [(r["shift"], r["status"]) for r in rows] == [("middle", "skipped")] * 2 + [
        ("morning", "passed")
    ] * 2


def test_facts_leave_line_test_calls_out() -> None:
    from cti.policy import load_policy as lp

    ring = lp().ring
    t = 1795430750.0
    customer = [
        (t, "Newchannel", {"Uniqueid": "c.1", "Linkedid": "c.1", "CallerIDNum": "13812345678", "Exten": DID}),
        (t + 9, "Hangup", {"Uniqueid": "c.1", "Linkedid": "c.1"}),
    ]
    test_call = [
        (t, "Newchannel", {"Uniqueid": "cti-lt-7", "Linkedid": "cti-lt-7", "CallerIDNum": TEST_CALLER}),
        (
            t + 1,
            "Newchannel",
            {"Uniqueid": "t.1", "Linkedid": "t.1", "CallerIDNum": TEST_CALLER, "Exten": DID},
        ),
        (t + 1.1, "VarSet", {"Uniqueid": "t.1", "Linkedid": "t.1", "Variable": "CTI_LINETEST", "Value": "1"}),
        (t + 2, "Hangup", {"Uniqueid": "t.1", "Linkedid": "t.1"}),
        (t + 2, "Hangup", {"Uniqueid": "cti-lt-7", "Linkedid": "cti-lt-7"}),
    ]
    facts = derive(sorted(customer + test_call, key=lambda e: e[0]), ring)
    assert list(facts.calls) == ["c.1"]


async def cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    return await run_cti(env, "linetest", *args)


async def test_cli_lists_results_and_refuses_without_setup(db_url: str, pool: asyncpg.Pool, tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {"DATABASE_URL": db_url, "CTI_DATA_DIR": str(tmp_path)}
    rc, _, err = await cli(env, "run")
    assert rc == 2 and "linetest.caller_id" in err and "Traceback" not in err
    rc, _, err = await cli({**env, "CTI_LINETEST__CALLER_ID": TEST_CALLER}, "run", "--did", "40O8")
    assert rc == 2 and "not a phone number" in err
    rc, out, _ = await cli(env, "list")
    assert rc == 0 and "no line tests" in out
    now = datetime.now(UTC)
    await pool.execute(
        """INSERT INTO line_test_runs (did, status, reason, started_at, finished_at, duration_s, via)
           VALUES ($1, 'failed', 'originate failed: busy', $2, $2, 1.5, 'cli')""",
        DID, now,
    )  # fmt: skip
    rc, out, _ = await cli(env, "list")
    assert rc == 0 and DID in out and "failed" in out and "originate failed: busy" in out


async def test_the_simulated_carrier_plays_the_loop_back_and_can_break_it(
    pool: asyncpg.Pool, agi: FastAgiServer
) -> None:
    """Through the simulated PBX over real AMI and FastAGI: out on the trunk, back in through
    [from-trunk] to our route AGI; then the carrier broken two ways (cti/sim/carrier_loop.py)."""
    from cti.ami.client import AMIClient
    from cti.callbacks.ami_adapter import ami_action
    from cti.sim import Simulator
    from cti.sim.scenario import QueueConfig, Scenario

    sim = Simulator(Scenario(queues=(QueueConfig(),)), speed="max", agi_url=f"agi://127.0.0.1:{agi.port}",
                    record_events=True)  # fmt: skip
    await sim.start()
    client = AMIClient("127.0.0.1", sim.ami_port, "cti", "cti", action_timeout=5)
    await client.start()
    clock, events = ManualClock(MORNING.astimezone(UTC)), MemoryEvents()
    t = LineTester(pool, action=ami_action(client), clock=clock, events=events, caller_id=TEST_CALLER,
                   trunk="trunk", timeout_s=3.0, poll_s=0.02)  # fmt: skip
    client.subscribe(t.handle_ami)
    try:
        r = await t.run(DID)
        assert r.status == "passed", r.reason
        # the call that came back was Asterisk's ordinary inbound call: from our number, to the DID
        came = [
            dict(e.pairs) for e in sim.events if e.name == "Newchannel" and dict(e.pairs).get("Exten") == DID
        ]
        assert came and came[0]["CallerIDNum"] == TEST_CALLER and came[0]["Context"] == "from-trunk"
        # ... and facts derived from that event stream leave both legs out
        facts = derive([(e.ts, e.name, dict(e.pairs)) for e in sim.events], POLICY.ring)
        assert facts.calls == {}

        sim.set_carrier_loop("lost")  # answered by the carrier, never delivered to us
        r = await t.run(DID)
        assert r.status == "failed" and "did not come back in through from-trunk" in (r.reason or "")
        sim.set_carrier_loop("congestion")
        r = await t.run(DID)
        assert (
            r.status == "failed"
            and r.reason == "originate failed: the carrier refused the call or the trunk is down"
        )
        assert len(events.of_type("line_test_failed")) == 2
    finally:
        await client.close()
        await sim.close()

"""The callback dispatcher against real PostgreSQL: order, SKIP LOCKED across processes, never sending
an attempt twice (restart, AMI reconnect), retries and backoff, final outcomes, inbound first."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from cti.callbacks.dispatcher import Dispatcher
from cti.callbacks.offer import open_callback
from cti.callbacks.originate import OriginateNotSent, OriginateRequest
from cti.callbacks.repo import create_or_join
from cti.clock import ManualClock
from cti.policy import load_policy
from tests.fakes import ListSink, StaticLiveAgents

POLICY = load_policy()
CB = POLICY.callbacks
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # 20:00 in Shanghai, within service hours
DID = "4008001234"
AGENTS = [f"agent{i}" for i in range(1, 41)]


class FakeAmi:
    """Records Originates; replies like Asterisk does to an Async Originate (06a)."""

    def __init__(self, fail: BaseException | None = None, response: str = "Success") -> None:
        self.sent: list[OriginateRequest] = []
        self.fail = fail
        self.response = response
        self.during: Any = None  # async (req, action_id) -> None: events arriving before the reply

    async def originate(self, req: OriginateRequest) -> Mapping[str, Any]:
        if self.fail is not None:
            raise self.fail
        self.sent.append(req)
        if self.during is not None:
            await self.during(req, f"cti-1-abc-{len(self.sent)}")
        msg = "Originate successfully queued" if self.response == "Success" else "Originate failed"
        return {"Response": self.response, "ActionID": f"cti-1-abc-{len(self.sent)}", "Message": msg}


# AMI frames with the fields a real Asterisk 22 sends that the dispatcher reads (captures 06a-06d)
def originate_success(req: OriginateRequest, action_id: str) -> dict[str, str]:
    return {
        "Event": "OriginateResponse",
        "Privilege": "call,all",
        "ActionID": action_id,
        "Response": "Success",
        "Channel": f"{req.channel}-00000000",
        "Context": "callback-did",
        "Exten": req.exten,
        "Reason": "4",
        "Uniqueid": req.channel_id,
        "CallerIDNum": req.did,
        "CallerIDName": "<unknown>",
    }


def originate_failure(req: OriginateRequest, action_id: str, reason: str) -> dict[str, str]:
    return {
        "Event": "OriginateResponse",
        "Privilege": "call,all",
        "ActionID": action_id,
        "Response": "Failure",
        "Channel": req.channel,
        "Context": "callback-did",
        "Exten": req.exten,
        "Reason": reason,
        "Uniqueid": "<unknown>",
        "CallerIDNum": req.did,
        "CallerIDName": "<unknown>",
    }


def customer_dial_end(req: OriginateRequest, status: str) -> dict[str, str]:
    return {
        "Event": "DialEnd",
        "Privilege": "call,all",
        "Channel": f"{req.channel}-00000000",
        "Context": "callback-did",
        "Exten": req.exten,
        "Uniqueid": req.channel_id,
        "Linkedid": req.channel_id,
        "DestChannel": "PJSIP/pstn-00000001",
        "DestUniqueid": "1795431049.3",
        "DestLinkedid": req.channel_id,
        "DialStatus": status,
    }


def agent_leg_dial_end(req: OriginateRequest, status: str) -> dict[str, str]:
    return {
        "Event": "DialEnd",
        "Privilege": "call,all",
        "DestChannel": f"{req.channel}-00000000",
        "DestUniqueid": req.channel_id,
        "DestLinkedid": req.channel_id,
        "DialStatus": status,
    }


def make(
    pool, clock, ami, sink=None, *, waiting=lambda: 0, answered=None, alive=None, worker="w1", agents=AGENTS
):
    return Dispatcher(
        pool,
        policy=POLICY,
        clock=clock,
        events=sink if sink is not None else ListSink(),
        live=StaticLiveAgents(agents, waiting=waiting, answered=answered),
        originate=ami.originate,
        channel_alive=alive,
        default_did=DID,
        worker_id=worker,
    )


async def add(db, number: str, at: datetime, kind: str = "peak", did: str | None = DID) -> int:
    return (await open_callback(db, number=number, did=did, kind=kind, now=at, policy=CB)).id  # type: ignore[arg-type]


async def cb_row(db, cid: int):
    return await db.fetchrow("SELECT * FROM callbacks WHERE id = $1", cid)


def test_originate_request_has_the_contract_shape():
    req = OriginateRequest(
        callback_id=12, attempt=2, channel="PJSIP/agent3", exten="13812345678", did=DID,
        channel_id="cti-cb-12-2", timeout_ms=10000,
    )  # fmt: skip
    assert list(req.headers().items()) == [
        ("Channel", "PJSIP/agent3"),
        ("Context", "callback-did"),
        ("Exten", "13812345678"),
        ("Priority", "1"),
        ("CallerID", DID),
        ("Timeout", "10000"),
        ("Variable", f"CTI_DID={DID},CTI_CALLBACK_ID=12"),
        ("Async", "true"),
        ("ChannelId", "cti-cb-12-2"),
    ]


async def test_order_priority_then_first_call_time_and_due_only(db, pool):
    clock = ManualClock(T0 + timedelta(hours=1))
    late = await add(db, "13800000003", T0 + timedelta(minutes=3))
    early = await add(db, "13800000001", T0 + timedelta(minutes=1))
    mid = await add(db, "13800000002", T0 + timedelta(minutes=2))
    repeat = await add(db, "13800000009", T0 + timedelta(minutes=9))
    await add(db, "13800000009", T0 + timedelta(minutes=10))  # calls again: repeat caller
    night = await add(db, "13800000010", T0 + timedelta(minutes=30), kind="night")
    # a night callback created by another path without the priority set still goes first
    other_night = (
        await create_or_join(db, number="13800000011", did=DID, kind="night", now=T0 + timedelta(minutes=31))
    ).id
    not_due = await add(db, "13800000004", T0)
    await db.execute(
        "UPDATE callbacks SET next_attempt_at = $2 WHERE id = $1", not_due, clock.now() + timedelta(1)
    )
    ami = FakeAmi()
    d = make(pool, clock, ami)
    results = [await d.dispatch_once() for _ in range(7)]
    assert [r.status for r in results] == ["dispatched"] * 6 + ["idle"]
    assert [r.callback_id for r in results[:6]] == [night, other_night, repeat, early, mid, late]
    # the one not yet due was never claimed
    assert not_due not in {r.callback_id for r in results}
    assert (await cb_row(db, not_due))["status"] == "open"
    # each on a different agent, DID presented, ChannelId numbered by attempt
    assert len({r.channel for r in ami.sent}) == 6
    assert all(r.did == DID and r.channel_id == f"cti-cb-{r.callback_id}-1" for r in ami.sent)


async def test_two_dispatchers_on_two_databases_connections_never_claim_the_same(db_url, db):
    numbers = [f"1390000{i:04d}" for i in range(30)]
    for i, n in enumerate(numbers):
        await add(db, n, T0 + timedelta(seconds=i))
    pools = [await asyncpg.create_pool(db_url, min_size=1, max_size=3) for _ in range(2)]
    try:
        clock = ManualClock(T0 + timedelta(hours=1))
        amis = [FakeAmi(), FakeAmi()]
        # disjoint agent sets (as two CTI processes would each see their own free agents)
        ds = [
            make(pools[0], clock, amis[0], worker="cti-a", agents=AGENTS[:20]),
            make(pools[1], clock, amis[1], worker="cti-b", agents=AGENTS[20:]),
        ]
        for _ in range(16):
            await asyncio.gather(ds[0].dispatch_once(), ds[1].dispatch_once())
    finally:
        for p in pools:
            await p.close()
    ids = [r.callback_id for a in amis for r in a.sent]
    assert len(ids) == 30 and len(set(ids)) == 30  # every callback exactly once
    assert amis[0].sent and amis[1].sent
    rows = await db.fetch("SELECT callback_id, count(*) AS n FROM callback_attempts GROUP BY callback_id")
    assert len(rows) == 30 and all(r["n"] == 1 for r in rows)


async def test_reached_is_final_and_agent_can_refine(db, pool):
    clock = ManualClock(T0)
    cid = await add(db, "13812345678", T0)
    ami, sink = FakeAmi(), ListSink()
    d = make(pool, clock, ami, sink)
    r = await d.dispatch_once()
    req = ami.sent[0]
    await d.handle_ami(originate_success(req, "cti-1-abc-1"))
    assert (await db.fetchval("SELECT state FROM callback_attempts WHERE channel_id = $1", r.channel_id)) == (
        "agent_answered"
    )
    clock.advance(3)
    await d.handle_ami(customer_dial_end(req, "ANSWER"))
    row = await cb_row(db, cid)
    assert (row["status"], row["outcome"]) == ("done", "reached")
    # later frames for the same attempt change nothing and emit nothing
    n = len(sink.events)
    await d.handle_ami(customer_dial_end(req, "NOANSWER"))
    await d.handle_ami({"Event": "Hangup", "Uniqueid": req.channel_id, "Cause": "16"})
    assert len(sink.events) == n
    assert await d.set_disposition(cid, "wrong_number", by="agent1")
    assert (await cb_row(db, cid))["outcome"] == "wrong_number"
    with pytest.raises(ValueError, match="disposition"):
        await d.set_disposition(cid, "maybe", by="agent1")
    types = [e.type for e in sink.events]
    assert types == [
        "callback_attempt",
        "callback_originate_sent",
        "callback_agent_answered",
        "callback_attempt_result",
        "callback_closed",
        "callback_disposition",
    ]
    closed = sink.of_type("callback_closed")[0].payload
    assert closed["outcome"] == "reached" and closed["wait_s"] == 3.0
    assert "13812345678" not in json.dumps([e.payload for e in sink.events])  # R-MASK
    assert sink.events[0].payload["number"] == "138****5678"


async def test_no_answer_retries_with_backoff_until_max_attempts(db, pool):
    clock = ManualClock(T0)
    cid = await add(db, "13812345678", T0)
    ami, sink = FakeAmi(), ListSink()
    d = make(pool, clock, ami, sink)
    for n in range(1, CB.max_attempts + 1):
        r = await d.dispatch_once()
        assert r.status == "dispatched" and r.attempt == n, (n, r)
        req = ami.sent[-1]
        await d.handle_ami(originate_success(req, f"a{n}"))
        status = "BUSY" if n == CB.max_attempts else "NOANSWER"
        await d.handle_ami(customer_dial_end(req, status))
        row = await cb_row(db, cid)
        if n < CB.max_attempts:
            assert row["status"] == "open"
            wait = CB.backoff_before(n + 1)
            assert row["next_attempt_at"] == clock.now() + timedelta(seconds=wait)
            clock.advance(wait - 1)
            assert (await d.dispatch_once()).status == "idle"  # not due yet
            clock.advance(1)
    row = await cb_row(db, cid)
    assert (row["status"], row["outcome"], row["attempts"]) == ("failed", "busy", CB.max_attempts)
    retries = sink.of_type("callback_retry")
    assert [e.payload["after"] for e in retries] == ["no_answer"] * (CB.max_attempts - 1)
    gaps = [(datetime.fromisoformat(e.payload["next_attempt_at"]) - e.ts).total_seconds() for e in retries]
    assert gaps == [CB.backoff_before(n) for n in range(2, CB.max_attempts + 1)]
    assert sink.of_type("callback_closed")[0].payload["outcome"] == "busy"
    assert len(ami.sent) == CB.max_attempts
    assert len({r.channel_id for r in ami.sent}) == CB.max_attempts


async def test_agent_side_failures_requeue_without_using_up_attempts(db, pool):
    clock = ManualClock(T0)
    cid = await add(db, "13812345678", T0)
    ami = FakeAmi()
    d = make(pool, clock, ami)
    # agent did not answer: OriginateResponse Failure Reason 3 (06c case 1)
    await d.dispatch_once()
    await d.handle_ami(originate_failure(ami.sent[-1], "cti-1-abc-1", "3"))
    # agent busy: the agent leg's DialEnd BUSY then Failure Reason 0 (06c case 3)
    clock.advance(POLICY.ring.retry_s)
    await d.dispatch_once()
    await d.handle_ami(agent_leg_dial_end(ami.sent[-1], "BUSY"))
    await d.handle_ami(originate_failure(ami.sent[-1], "cti-1-abc-2", "0"))
    # unregistered agent: Failure Reason 0 arriving before the Originate reply was handled (ActionID
    # not yet recorded): matched by agent interface + customer number
    clock.advance(POLICY.ring.retry_s)

    async def fail_early(req: OriginateRequest, action_id: str) -> None:
        await d.handle_ami(originate_failure(req, action_id, "0"))

    ami.during = fail_early
    await d.dispatch_once()
    ami.during = None
    outcomes = [
        r["outcome"] for r in await db.fetch("SELECT outcome FROM callback_attempts ORDER BY attempt")
    ]
    assert outcomes == ["agent_no_answer", "agent_busy", "agent_unavailable"]
    row = await cb_row(db, cid)
    assert row["status"] == "open" and row["next_attempt_at"] == clock.now() + timedelta(
        seconds=POLICY.ring.retry_s
    )
    # the customer is still owed every attempt
    clock.advance(POLICY.ring.retry_s)
    for n in range(CB.max_attempts - 1):
        await d.dispatch_once()
        await d.handle_ami(originate_success(ami.sent[-1], f"x{n}"))
        await d.handle_ami(customer_dial_end(ami.sent[-1], "NOANSWER"))
        clock.advance(max(CB.backoff_s))
    assert (await cb_row(db, cid))["status"] == "open"


async def test_agent_hangs_up_before_customer_answers(db, pool):
    clock = ManualClock(T0)
    cid = await add(db, "13812345678", T0)
    ami = FakeAmi()
    d = make(pool, clock, ami)
    await d.dispatch_once()
    req = ami.sent[-1]
    await d.handle_ami(originate_success(req, "a"))
    await d.handle_ami({"Event": "Hangup", "Uniqueid": req.channel_id, "Cause": "16"})
    assert await db.fetchval("SELECT outcome FROM callback_attempts") == "agent_hangup"
    assert (await cb_row(db, cid))["status"] == "open"


async def test_originate_rejected_or_not_connected_is_not_a_customer_attempt(db, pool):
    clock = ManualClock(T0)
    cid = await add(db, "13812345678", T0)
    d = make(pool, clock, FakeAmi(response="Error"))
    assert (await d.dispatch_once()).status == "rejected"
    clock.advance(POLICY.ring.retry_s)
    d2 = make(pool, clock, FakeAmi(fail=OriginateNotSent("no AMI connection")))
    assert (await d2.dispatch_once()).status == "not_sent"
    rows = await db.fetch("SELECT outcome FROM callback_attempts ORDER BY attempt")
    assert [r["outcome"] for r in rows] == ["originate_error", "not_sent"]
    assert (await cb_row(db, cid))["status"] == "open"


async def test_lost_connection_mid_send_is_never_resent(db, pool):
    """AMI dropped while sending: unknown whether Asterisk got it. No resend, even after reconnect."""
    clock = ManualClock(T0)
    cid = await add(db, "13812345678", T0)
    broken = FakeAmi(fail=ConnectionResetError("AMI connection lost"))
    d = make(pool, clock, broken)
    r = await d.dispatch_once()
    assert r.status == "unknown"
    broken.fail = None  # the AMI client reconnected
    for _ in range(3):
        assert (await d.dispatch_once()).status == "idle"
    assert broken.sent == []
    assert (await cb_row(db, cid))["status"] == "dialing"
    # it did reach Asterisk after all: the events tell the outcome
    req = OriginateRequest(
        callback_id=cid, attempt=1, channel="PJSIP/agent1", exten="13812345678", did=DID,
        channel_id=r.channel_id or "", timeout_ms=10000,
    )  # fmt: skip
    await d.handle_ami(originate_success(req, "cti-9-zzz-1"))
    await d.handle_ami(customer_dial_end(req, "ANSWER"))
    assert (await cb_row(db, cid))["outcome"] == "reached"
    assert broken.sent == []


async def store_events(db, frames: list[dict[str, str]], ts: datetime) -> None:
    """Write AMI frames into the events table as the AMI listener/event store does."""
    await db.execute("SELECT cti_ensure_event_partitions($1::date, 2)", ts.date())
    for i, f in enumerate(frames):
        await db.execute(
            """INSERT INTO events (ts, key, source, type, uniqueid, linkedid, payload)
               VALUES ($1, $2, 'ami', $3, $4, $5, $6::jsonb)""",
            ts + timedelta(milliseconds=i),
            f"{f['Event']}:{i}",
            f["Event"],
            f.get("Uniqueid"),
            f.get("Linkedid"),
            json.dumps(f),
        )


async def test_killed_after_recording_outcome_from_stored_events_no_resend(db, pool):
    clock = ManualClock(T0)
    cid = await add(db, "13812345678", T0)
    ami = FakeAmi()
    first = make(pool, clock, ami, worker="cti-a")
    await first.dispatch_once()
    req = ami.sent[0]
    # the process dies here; while it is down the AMI listener of another process stored the outcome
    del first
    await store_events(db, [originate_success(req, "cti-1-abc-1"), customer_dial_end(req, "NOANSWER")], T0)
    clock.advance(5)
    ami2, sink = FakeAmi(), ListSink()
    restarted = make(pool, clock, ami2, sink, worker="cti-a")
    assert await restarted.recover() == 1
    assert await db.fetchval(
        "SELECT outcome FROM callback_attempts WHERE channel_id = $1", req.channel_id
    ) == ("no_answer")
    assert (await cb_row(db, cid))["status"] == "open"
    assert (await restarted.dispatch_once()).status == "idle"  # backoff, and never the same attempt
    clock.advance(CB.backoff_before(2))
    r = await restarted.dispatch_once()
    assert r.status == "dispatched" and r.attempt == 2 and ami2.sent[0].channel_id == f"cti-cb-{cid}-2"


async def test_killed_before_any_trace_waits_then_retries_as_a_new_attempt(db, pool):
    clock = ManualClock(T0)
    cid = await add(db, "13812345678", T0)
    ami = FakeAmi()
    await make(pool, clock, ami, worker="cti-a").dispatch_once()
    channel_id = ami.sent[0].channel_id
    alive = {"v": True}

    async def channel_alive(ch: str) -> bool:
        assert ch == channel_id
        return alive["v"]

    ami2 = FakeAmi()
    restarted = make(pool, clock, ami2, worker="cti-a", alive=channel_alive)
    assert await restarted.recover() == 0
    assert (await restarted.dispatch_once()).status == "idle"  # still possibly ringing: hands off
    clock.advance(600)
    assert await restarted.recover() == 0  # Asterisk still has the channel: keep waiting
    assert ami2.sent == []
    alive["v"] = False
    assert await restarted.recover() == 1
    assert await db.fetchval("SELECT outcome FROM callback_attempts WHERE channel_id = $1", channel_id) == (
        "not_sent"
    )
    clock.advance(POLICY.ring.retry_s)
    r = await restarted.dispatch_once()
    assert r.status == "dispatched" and r.attempt == 2 and ami2.sent[0].channel_id != channel_id
    assert (await cb_row(db, cid))["status"] == "dialing"


async def test_inbound_first_ratio(db, pool):
    clock = ManualClock(T0 + timedelta(minutes=1))
    for i in range(5):
        await add(db, f"1380000{i:04d}", T0 + timedelta(seconds=i))
    waiting = {"n": 3}
    answered = {"n": 100}
    ami = FakeAmi()
    d = make(pool, clock, ami, waiting=lambda: waiting["n"], answered=lambda: answered["n"])
    assert POLICY.peak.inbound_to_callback_ratio == 1
    assert (await d.dispatch_once()).status == "inbound_first"  # callers wait, none answered since
    answered["n"] += 1
    assert (await d.dispatch_once()).status == "dispatched"
    assert (await d.dispatch_once()).status == "inbound_first"  # one inbound per callback
    answered["n"] += 2
    assert (await d.dispatch_once()).status == "dispatched"
    assert (await d.dispatch_once()).status == "inbound_first"
    waiting["n"] = 0
    assert (await d.dispatch_once()).status == "dispatched"  # nobody waiting: callbacks flow
    assert len(ami.sent) == 3
    # without an answered count, callbacks wait until no inbound caller waits
    strict = make(pool, clock, ami, waiting=lambda: 1, worker="w2")
    assert (await strict.dispatch_once()).status == "inbound_first"


async def test_waits_for_a_free_agent(db, pool):
    clock = ManualClock(T0)
    await add(db, "13812345678", T0)
    await add(db, "13812345679", T0)
    ami = FakeAmi()
    d = make(pool, clock, ami, agents=["agent1"])
    assert (await d.dispatch_once()).status == "dispatched"
    # agent1 holds an unresolved attempt: not offered again even if live state says free
    assert (await d.dispatch_once()).status == "no_agent"
    await d.handle_ami(originate_success(ami.sent[0], "a"))
    await d.handle_ami(customer_dial_end(ami.sent[0], "ANSWER"))
    assert (await d.dispatch_once()).status == "dispatched"


async def test_run_loop_dispatches_and_stops_on_cancel(db, pool):
    clock = ManualClock(T0)
    for i in range(3):
        await add(db, f"1380000{i:04d}", T0)
    ami = FakeAmi()
    d = make(pool, clock, ami)
    task = asyncio.create_task(d.run())
    for _ in range(200):
        if len(ami.sent) == 3:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(ami.sent) == 3


async def test_two_processes_seeing_the_same_events_record_the_outcome_once(db_url, db):
    cid = await add(db, "13812345678", T0)
    pools = [await asyncpg.create_pool(db_url, min_size=1, max_size=2) for _ in range(2)]
    try:
        clock = ManualClock(T0)
        ami, sinks = FakeAmi(), [ListSink(), ListSink()]
        ds = [make(pools[i], clock, ami, sinks[i], worker=f"cti-{i}") for i in range(2)]
        await ds[0].dispatch_once()
        req = ami.sent[0]
        for frame in (originate_success(req, "a1"), customer_dial_end(req, "NOANSWER")):
            await asyncio.gather(ds[0].handle_ami(frame), ds[1].handle_ami(frame))
    finally:
        for p in pools:
            await p.close()
    results = [e for s in sinks for e in s.of_type("callback_attempt_result")]
    retries = [e for s in sinks for e in s.of_type("callback_retry")]
    assert len(results) == 1 and len(retries) == 1
    row = await cb_row(db, cid)
    assert row["status"] == "open" and row["attempts"] == 1


async def test_nobody_is_called_back_outside_service_hours(db, pool):
    # 23:30 in Shanghai is 15:30 UTC; service hours are 06:00-22:00 local
    late = datetime(2026, 11, 23, 15, 30, tzinfo=UTC)
    await add(db, "13812345678", late - timedelta(minutes=5), kind="night")
    clock = ManualClock(late)
    ami = FakeAmi()
    d = make(pool, clock, ami)
    assert (await d.dispatch_once()).status == "closed"
    clock.advance(7 * 3600)  # 06:30 local
    assert (await d.dispatch_once()).status == "dispatched" and len(ami.sent) == 1


async def test_extra_variables_follow_the_contract_ones(db, pool):
    from cti.masking import mask_number

    clock = ManualClock(T0)
    cid = await add(db, "13812345678", T0)
    ami = FakeAmi()
    d = Dispatcher(
        pool, policy=POLICY, clock=clock, events=ListSink(), live=StaticLiveAgents(AGENTS),
        originate=ami.originate, default_did=DID,
        extra_variables=lambda cb, attempt, number: {"CTI_MASKED": mask_number(number)},
    )  # fmt: skip
    await d.dispatch_once()
    assert ami.sent[0].headers()["Variable"] == f"CTI_DID={DID},CTI_CALLBACK_ID={cid},CTI_MASKED=138****5678"


async def test_agent_phone_shows_who_is_called_back_never_the_full_number(db, pool):
    """Issue 10 item 17c: the Originate's CallerID name is `回拨 138****5678`; the number stays the DID
    ([callback-did] presents it to the customer)."""
    clock = ManualClock(T0)
    await add(db, "13812345678", T0)
    ami = FakeAmi()
    await make(pool, clock, ami).dispatch_once()
    assert ami.sent[0].headers()["CallerID"] == f'"回拨 138****5678" <{DID}>'
    assert "13812345678" not in ami.sent[0].headers()["CallerID"]

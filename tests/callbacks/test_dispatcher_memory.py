"""The dispatcher's flow against the in-memory repository (tests/fakes.py): no database, so these run
in the pure set. The same flows against PostgreSQL are in test_dispatcher.py."""

from __future__ import annotations

from datetime import timedelta

from cti.callbacks.dispatcher import Dispatcher
from cti.callbacks.originate import OriginateNotSent
from cti.clock import ManualClock
from tests.callbacks.test_dispatcher import (
    AGENTS,
    CB,
    DID,
    POLICY,
    T0,
    FakeAmi,
    customer_dial_end,
    originate_success,
)
from tests.fakes import ListSink, MemoryCallbackRepo, StaticLiveAgents


def make(repo: MemoryCallbackRepo, clock: ManualClock, ami: FakeAmi, sink: ListSink | None = None, *,
         waiting=lambda: 0, worker: str = "w1") -> Dispatcher:  # fmt: skip
    return Dispatcher(repo, policy=POLICY, clock=clock, events=sink if sink is not None else ListSink(),
                      live=StaticLiveAgents(AGENTS, waiting=waiting), originate=ami.originate,
                      default_did=DID, worker_id=worker)  # fmt: skip


async def test_reached_closes_the_callback_and_frees_the_agent():
    repo, clock, ami, sink = MemoryCallbackRepo(), ManualClock(T0), FakeAmi(), ListSink()
    cid = repo.add("13812345678", at=T0)
    d = make(repo, clock, ami, sink)
    r = await d.dispatch_once()
    assert (r.status, r.channel_id, r.agent) == ("dispatched", f"cti-cb-{cid}-1", "agent1")
    req = ami.sent[0]
    assert (req.channel, req.exten, req.did) == ("PJSIP/agent1", "13812345678", DID)
    assert await repo.busy_agents() == {"agent1"}
    await d.handle_ami(originate_success(req, "cti-1-abc-1"))
    clock.advance(3)
    await d.handle_ami(customer_dial_end(req, "ANSWER"))
    assert (repo.callbacks[cid]["status"], repo.callbacks[cid]["outcome"]) == ("done", "reached")
    assert await repo.busy_agents() == set()
    assert [e.type for e in sink.events] == ["callback_attempt", "callback_originate_sent",
                                             "callback_agent_answered", "callback_attempt_result",
                                             "callback_closed"]  # fmt: skip
    assert sink.events[0].payload["number"] == "138****5678"  # R-MASK
    assert await d.set_disposition(cid, "declined", by="agent1")
    assert repo.callbacks[cid]["outcome"] == "declined"


async def test_no_answer_waits_the_backoff_then_dials_a_new_attempt():
    repo, clock, ami = MemoryCallbackRepo(), ManualClock(T0), FakeAmi()
    cid = repo.add("13812345678", at=T0)
    d = make(repo, clock, ami)
    await d.dispatch_once()
    await d.handle_ami(originate_success(ami.sent[0], "a1"))
    await d.handle_ami(customer_dial_end(ami.sent[0], "NOANSWER"))
    assert repo.callbacks[cid]["status"] == "open"
    wait = CB.backoff_before(2)
    clock.advance(wait - 1)
    assert (await d.dispatch_once()).status == "idle"
    clock.advance(1)
    r = await d.dispatch_once()
    assert (r.status, r.attempt, ami.sent[-1].channel_id) == ("dispatched", 2, f"cti-cb-{cid}-2")


async def test_an_originate_never_sent_is_retried_without_costing_the_customer_an_attempt():
    repo, clock, sink = MemoryCallbackRepo(), ManualClock(T0), ListSink()
    cid = repo.add("13812345678", at=T0)
    d = make(repo, clock, FakeAmi(fail=OriginateNotSent("no AMI connection")), sink)
    assert (await d.dispatch_once()).status == "not_sent"
    assert repo.attempts[f"cti-cb-{cid}-1"]["outcome"] == "not_sent"
    assert repo.callbacks[cid]["status"] == "open"
    assert repo.callbacks[cid]["next_attempt_at"] == T0 + timedelta(seconds=POLICY.ring.retry_s)


async def test_inbound_callers_waiting_keep_callbacks_back():
    repo, clock, ami = MemoryCallbackRepo(), ManualClock(T0), FakeAmi()
    cid = repo.add("13812345678", at=T0)
    waiting = {"n": 1}
    d = make(repo, clock, ami, waiting=lambda: waiting["n"])
    assert (await d.dispatch_once()).status == "inbound_first"
    assert repo.callbacks[cid]["status"] == "open" and not ami.sent
    waiting["n"] = 0
    assert (await d.dispatch_once()).status == "dispatched"


async def test_a_restarted_worker_resolves_its_attempt_from_stored_events_and_never_resends():
    repo, clock, ami = MemoryCallbackRepo(), ManualClock(T0), FakeAmi()
    cid = repo.add("13812345678", at=T0)
    await make(repo, clock, ami, worker="cti-a").dispatch_once()
    req = ami.sent[0]
    # the outcome arrived while the worker was down: only the events table has it
    repo.frames += [originate_success(req, "cti-1-abc-1"), customer_dial_end(req, "ANSWER")]
    clock.advance(5)
    ami2 = FakeAmi()
    restarted = make(repo, clock, ami2, worker="cti-a")
    assert await restarted.recover() == 1
    assert repo.callbacks[cid]["outcome"] == "reached" and not ami2.sent

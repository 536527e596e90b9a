"""Nobody who calls is lost: every inbound caller who hangs up unanswered holds a callback afterwards,
once, in peak or not; answered calls, our own originates and withheld numbers are left alone."""

from __future__ import annotations

from datetime import UTC, datetime

from cti.callbacks.missed import MissedCallWatcher, WatchedCall, missed_call_decision
from cti.callbacks.repo import create_or_join
from cti.clock import ManualClock
from cti.policy import load_policy
from tests.fakes import ListSink

POLICY = load_policy()
T0 = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)


def frames(uid: str, number: str, *, answered: str | None = None, hangup_after: float = 20.0) -> list[dict]:
    """An inbound call's frames as Asterisk sends them (capture 01/03 shapes, trimmed)."""
    t = T0.timestamp()
    ch = f"PJSIP/trunk-{uid[-4:]}"
    base = {"Channel": ch, "Uniqueid": uid, "Linkedid": uid, "CallerIDNum": number}
    out = [
        {"Event": "Newchannel", "Timestamp": f"{t:.6f}", "Exten": "4008001234", **base},
        {"Event": "QueueCallerJoin", "Timestamp": f"{t + 1:.6f}", "Queue": "sales", **base},
    ]
    if answered == "queue":
        out.append({"Event": "AgentConnect", "Timestamp": f"{t + 5:.6f}", "Queue": "sales", **base})
    if answered == "dial":
        out.append({"Event": "DialEnd", "Timestamp": f"{t + 5:.6f}", "DialStatus": "ANSWER", **base})
    out.append({"Event": "Hangup", "Timestamp": f"{t + hangup_after:.6f}", "Cause": "16", **base})
    return out


async def feed(w: MissedCallWatcher, fs: list[dict]) -> None:
    for f in fs:
        await w.handle_ami(f)


def test_decision():
    call = WatchedCall("u", 100.0, "13812345678", "4008001234")
    assert missed_call_decision(call, 100.4, min_wait_s=0).create  # hung up in the IVR: still owed a call
    assert missed_call_decision(call, 104.0, min_wait_s=5).reason == "too_short"
    assert missed_call_decision(WatchedCall("u", 100.0, None, None), 200, min_wait_s=0).reason == "withheld"
    call.answered = True
    assert missed_call_decision(call, 300, min_wait_s=0).reason == "answered"


async def test_unanswered_callers_get_one_callback_answered_ones_none(pool, db):
    sink = ListSink()
    w = MissedCallWatcher(pool, policy=POLICY, clock=ManualClock(T0), events=sink)
    await feed(w, frames("1795430796.1", "13812345678"))  # abandoned in the queue
    await feed(w, frames("1795430796.2", "13900001111", answered="queue"))
    await feed(w, frames("1795430796.3", "13700002222", answered="dial"))  # preferred agent answered
    await feed(w, frames("1795430796.4", "<unknown>"))  # withheld: cannot be called back
    await feed(w, frames("cti-cb-9-1", "13600003333"))  # our own callback originate
    rows = await db.fetch("SELECT number, kind, did, queue, first_call_at, source_linkedid FROM callbacks")
    assert [tuple(r) for r in rows] == [("13812345678", "abandon", "4008001234", "sales", T0, "1795430796.1")]
    reasons = dict(await db.fetch("SELECT linkedid, reason FROM missed_calls"))
    assert reasons == {"1795430796.1": "callback", "1795430796.4": "withheld"}
    assert [e.payload["number"] for e in sink.of_type("missed_call")] == ["138****5678", ""]
    assert w.calls == {}, "finished calls are forgotten"


async def test_calling_again_joins_and_a_call_already_holding_a_callback_is_not_counted_twice(pool, db):
    w = MissedCallWatcher(pool, policy=POLICY, clock=ManualClock(T0), events=ListSink())
    # the night/offer handler already took a callback during this call
    await create_or_join(db, number="13812345678", did="4008001234", kind="night", now=T0)
    await feed(w, frames("1795430796.5", "13812345678"))
    row = await db.fetchrow("SELECT count(*) n, max(call_count) c FROM callbacks")
    assert (row["n"], row["c"]) == (1, 1)
    assert await db.fetchval("SELECT reason FROM missed_calls") == "already_holding"


async def test_two_cti_processes_decide_each_call_once(pool, db):
    a = MissedCallWatcher(pool, policy=POLICY, clock=ManualClock(T0), events=ListSink())
    b = MissedCallWatcher(pool, policy=POLICY, clock=ManualClock(T0), events=ListSink())
    fs = frames("1795430796.6", "13812345678")
    await feed(a, fs)
    await feed(b, fs)
    row = await db.fetchrow("SELECT count(*) n, max(call_count) c FROM callbacks")
    assert (row["n"], row["c"]) == (1, 1)


async def test_after_a_blind_gap_calls_that_vanished_are_decided_and_running_ones_adopted(pool, db):
    from cti.state.model import Call, Channel, State

    w = MissedCallWatcher(pool, policy=POLICY, clock=ManualClock(T0), events=ListSink())
    fs = frames("1795430796.7", "13812345678")
    await feed(w, fs[:2])  # joined the queue, then the AMI link dropped; it hung up while we were blind
    t = T0.timestamp()
    snapshot = State(
        channels={
            "1795430796.8": Channel(
                "1795430796.8", "PJSIP/trunk-0008", "1795430796.8", t, caller_num="13900001111"
            ),
            "1795430796.9": Channel(
                "1795430796.9", "PJSIP/trunk-0009", "1795430796.9", t, caller_num="13700002222", bridge="b-1"
            ),  # talking to an agent already
        },
        calls={"1795430796.9": Call("1795430796.9", t, answered_by="agent3")},
    )
    assert await w.reconcile(snapshot, t + 60) == 1
    assert await db.fetchval("SELECT number FROM callbacks") == "13812345678"
    assert set(w.calls) == {"1795430796.8", "1795430796.9"}
    # the adopted calls are protected like any other when they end
    await w.handle_ami({"Event": "Hangup", "Uniqueid": "1795430796.8", "Linkedid": "1795430796.8",
                        "Timestamp": f"{t + 90:.6f}"})  # fmt: skip
    await w.handle_ami({"Event": "Hangup", "Uniqueid": "1795430796.9", "Linkedid": "1795430796.9",
                        "Timestamp": f"{t + 95:.6f}"})  # fmt: skip
    assert sorted(r["number"] for r in await db.fetch("SELECT number FROM callbacks")) == [
        "13812345678", "13900001111",
    ]  # fmt: skip


async def test_a_new_process_follows_the_calls_an_earlier_one_was_following(pool, db, db_url, tmp_path):
    from cti.store.events import Event, EventStore

    store = EventStore(db_url, tmp_path / "spool")
    await store.start()
    for f in frames("1795430796.10", "13812345678")[:2] + frames("1795430796.11", "13900001111"):
        await store.append(Event(datetime.fromtimestamp(float(f["Timestamp"]), UTC), "ami", f["Event"], f,
                                 uniqueid=f["Uniqueid"], linkedid=f["Linkedid"]))  # fmt: skip
    await store.close()
    w = MissedCallWatcher(pool, policy=POLICY, clock=ManualClock(T0), events=ListSink())
    await w.recover(db, T0.replace(hour=0))
    # .11 ended while the earlier process was alive but undecided; .10 is still followed
    assert set(w.calls) == {"1795430796.10"}
    assert await db.fetchval("SELECT number FROM callbacks") == "13900001111"
    await w.recover(db, T0.replace(hour=0))  # recovering twice decides nothing twice
    assert await db.fetchval("SELECT count(*) FROM missed_calls") == 1

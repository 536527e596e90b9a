"""Trunk down (capture 18, decision 0411) through the dispatcher against real PostgreSQL: CHANUNAVAIL
pauses dispatch, raises an alarm and costs the customer nothing."""

from __future__ import annotations

from datetime import timedelta

from cti.callbacks.originate import OriginateRequest
from cti.clock import ManualClock
from tests.callbacks.test_dispatcher import (
    CB,
    T0,
    FakeAmi,
    add,
    cb_row,
    customer_dial_end,
    make,
    originate_success,
)
from tests.captures import ami_text_frames
from tests.fakes import ListSink


def capture_18_frames(req: OriginateRequest, action_id: str) -> list[dict[str, str]]:
    """Capture 18's frames for the callback channel (OriginateResponse Success/4, VarSet
    DIALSTATUS=CHANUNAVAIL, Hangup Cause 3) with this attempt's ChannelId and ActionID."""
    out = []
    for f in ami_text_frames("18-"):
        if f.get("Uniqueid") != "cti-cb-18-1" or f.get("Event") not in (
            "OriginateResponse",
            "VarSet",
            "Hangup",
        ):
            continue
        f = {k: (req.channel_id if v == "cti-cb-18-1" else v) for k, v in f.items()}
        if "ActionID" in f:
            f["ActionID"] = action_id
        out.append(f)
    return out


async def test_trunk_down_pauses_dispatch_raises_an_alarm_and_costs_the_customer_nothing(db, pool):
    """Issue 10 item 10 / capture 18: CHANUNAVAIL is not the customer's no_answer."""
    clock = ManualClock(T0)
    cid = await add(db, "13812345678", T0)
    other = await add(db, "13900001111", T0 + timedelta(seconds=1))
    ami, sink = FakeAmi(), ListSink()
    d = make(pool, clock, ami, sink)
    fed = 0

    async def trunk_down(req: OriginateRequest, action_id: str) -> None:
        for f in capture_18_frames(req, action_id):
            await d.handle_ami(f)

    ami.during = trunk_down
    assert (await d.dispatch_once()).status == "dispatched"
    fed += 1
    att = await db.fetchrow("SELECT outcome, dial_status FROM callback_attempts")
    assert (att["outcome"], att["dial_status"]) == ("trunk_unavailable", "CHANUNAVAIL")
    row = await cb_row(db, cid)
    assert row["status"] == "open" and row["outcome"] is None
    (alarm,) = sink.of_type("trunk_alarm")
    assert alarm.payload["state"] == "down"
    assert d.trunk_down
    # paused: the other due callback is not dialed into a dead trunk
    assert (await d.dispatch_once()).status == "trunk_down"
    assert len(ami.sent) == fed
    # the probe after the retry wait fails again: still down, longer wait, still nobody's attempt
    clock.advance(61)
    assert (await d.dispatch_once()).status == "dispatched"
    fed += 1
    assert (await d.dispatch_once()).status == "trunk_down"
    clock.advance(61)
    assert (await d.dispatch_once()).status == "trunk_down"  # the wait doubled to 120 s
    # many more probes than max_attempts: neither callback is ever closed by the trunk
    for _ in range(CB.max_attempts + 2):
        clock.advance(600)
        assert (await d.dispatch_once()).status == "dispatched"
        fed += 1
    assert len(ami.sent) == fed
    assert {r["status"] for r in await db.fetch("SELECT status FROM callbacks")} == {"open"}
    assert len(sink.of_type("trunk_alarm")) == 1  # one alarm for one outage
    # the trunk is back: the probe's customer leg rings (NOANSWER), the alarm clears, dispatch resumes
    ami.during = None
    clock.advance(600)
    assert (await d.dispatch_once()).status == "dispatched"
    probe = ami.sent[-1]
    await d.handle_ami(originate_success(probe, "p"))
    await d.handle_ami(customer_dial_end(probe, "NOANSWER"))
    assert not d.trunk_down
    assert [a.payload["state"] for a in sink.of_type("trunk_alarm")] == ["down", "up"]
    assert (await d.dispatch_once()).status == "dispatched"
    misses = await db.fetchval(
        "SELECT count(*) FROM callback_attempts WHERE outcome IN ('no_answer', 'busy', 'unreachable')"
    )
    assert misses == 1  # only the real ring-out counts against a customer
    assert ami.sent[-1].callback_id == other  # resumed: the waiting callback is dialed at last
    assert (await cb_row(db, cid))["status"] == "open"

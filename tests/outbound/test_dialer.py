"""The dialer loop against the real database with an injected Originate: progressive claims one
agent per dial, nothing is dialed while inbound callers wait or in peak mode (and dialing resumes on
the next tick), outcomes from AMI frames shaped as in captures 06c and 18."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cti.clock import ManualClock
from cti.outbound.dialer import Dialer, OutboundOriginate
from cti.outbound.eligibility import rule_set_id
from tests.outbound.conftest import add_contact, rules_for

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


@dataclass
class Floor:
    free: list[str] = field(default_factory=lambda: ["agent1", "agent2", "agent3"])
    busy: int = 0
    waiting: int = 0
    peak: bool = False

    def free_agents(self) -> list[str]:
        return list(self.free)

    def busy_agents(self) -> int:
        return self.busy

    def inbound_waiting(self) -> int:
        return self.waiting

    def in_peak(self) -> bool:
        return self.peak


async def _dialer(pool, db, make_campaign, mode: str = "progressive"):
    rules = rules_for()
    k = await make_campaign()
    for i in range(5):
        await add_contact(db, f"+86138000000{i:02d}", [k])
    sent: list[OutboundOriginate] = []

    async def originate(req: OutboundOriginate) -> dict[str, Any]:
        sent.append(req)
        return {
            "Response": "Success",
            "ActionID": f"ami-{len(sent)}",
            "Message": "Originate successfully queued",
        }

    floor = Floor()
    d = Dialer(pool, k, mode, "sales", rules, await rule_set_id(db, rules), ManualClock(T0), originate, floor)
    return d, floor, sent


async def test_progressive_dials_one_per_free_agent_each_agent_claimed(pool, db, make_campaign):
    d, _floor, sent = await _dialer(pool, db, make_campaign)
    r = await d.step()
    assert r.dials == 3
    assert sorted(s.agent for s in sent) == ["agent1", "agent2", "agent3"]
    h = sent[0].headers()
    assert h["Channel"] == "PJSIP/13800000000@trunk" and h["Context"] == "cti-outbound"
    assert h["CallerID"] == "4008001234" and h["ChannelId"] == f"cti-ob-{sent[0].dial_id}"
    assert "CTI_MASKED=138****0000" in h["Variable"] and "CTI_PREFERRED=agent1" in h["Variable"]
    # the agents are held: a second step dials nobody
    assert (await d.step()).dials == 0
    assert await db.fetchval("SELECT count(*) FROM dial_claims WHERE agent IS NOT NULL") == 3


async def test_no_dial_while_inbound_waits_or_in_peak_then_resumes(pool, db, make_campaign):
    d, floor, sent = await _dialer(pool, db, make_campaign, mode="predictive")
    floor.waiting = 1
    assert (await d.step()).gate == "inbound callers waiting"
    floor.waiting, floor.peak = 0, True
    assert (await d.step()).gate == "peak mode"
    assert sent == [] and await db.fetchval("SELECT count(*) FROM dials") == 0
    assert d.status()["gate"] == "peak mode"  # the supervisor sees why it is not dialing
    floor.peak = False
    assert (await d.step()).dials > 0  # resumed by itself
    assert d.status()["gate"] is None


async def test_outcomes_from_ami_frames_release_the_claim(pool, db, make_campaign):
    d, _floor, sent = await _dialer(pool, db, make_campaign)
    await d.step()
    a, b, c = sent
    # 06c: no answer -> OriginateResponse Failure Reason 3, Uniqueid <unknown>, matched by ActionID
    await d.handle_ami(
        {
            "Event": "OriginateResponse",
            "ActionID": "ami-1",
            "Response": "Failure",
            "Reason": "3",
            "Uniqueid": "<unknown>",
            "Channel": f"PJSIP/{a.number}@trunk",
        }
    )
    # 06c case 3, in its order: 486 Busy -> HangupRequest Cause 17 on the customer leg (Uniqueid =
    # our ChannelId), OriginateResponse Failure Reason 0, and only then Hangup Cause 17
    await d.handle_ami({"Event": "HangupRequest", "Uniqueid": b.channel_id, "Cause": "17"})
    await d.handle_ami(
        {
            "Event": "OriginateResponse",
            "ActionID": "ami-2",
            "Response": "Failure",
            "Reason": "0",
            "Uniqueid": "<unknown>",
        }
    )
    await d.handle_ami({"Event": "Hangup", "Uniqueid": b.channel_id, "Cause": "17"})
    # answered (Reason 4), agent connected within 2 s, then hangup
    await d.handle_ami(
        {
            "Event": "OriginateResponse",
            "ActionID": "ami-3",
            "Response": "Success",
            "Reason": "4",
            "Uniqueid": c.channel_id,
        }
    )
    d.clock.advance(1)  # type: ignore[attr-defined]
    await d.handle_ami({"Event": "AgentConnect", "Uniqueid": "x", "Linkedid": c.channel_id})
    d.clock.advance(60)  # type: ignore[attr-defined]
    await d.handle_ami({"Event": "Hangup", "Uniqueid": c.channel_id, "Cause": "16"})
    rows = await db.fetch("SELECT id, outcome, talk_s FROM dials ORDER BY id")
    assert [(r["outcome"], r["talk_s"]) for r in rows] == [
        ("no_answer", None),
        ("busy", None),
        ("answered", 60),
    ]
    assert await db.fetchval("SELECT count(*) FROM dial_claims") == 0


async def test_answered_without_agent_within_two_seconds_is_abandoned(pool, db, make_campaign):
    """[cti-outbound] gives the queue CTI_CONNECT_TIMEOUT (2 s), then plays the company message and
    hangs up: an answered dial that ends without a connect frame is abandoned. A connect frame is the
    PBX saying it connected in time, even if it reaches us late (AMI latency is not the customer's)."""
    d, _floor, sent = await _dialer(pool, db, make_campaign, mode="predictive")
    await d.step()
    first, second = sent[0], sent[1]
    for aid, ch in (("ami-1", first.channel_id), ("ami-2", second.channel_id)):
        ok = {"Event": "OriginateResponse", "ActionID": aid, "Response": "Success", "Reason": "4"}
        await d.handle_ami({**ok, "Uniqueid": ch})
    d.clock.advance(2.5)  # type: ignore[attr-defined]
    await d.handle_ami({"Event": "AgentConnect", "Linkedid": second.channel_id, "MemberName": "agent2"})
    d.clock.advance(5)  # type: ignore[attr-defined]
    await d.handle_ami({"Event": "Hangup", "Uniqueid": first.channel_id, "Cause": "16"})
    assert await db.fetchval("SELECT outcome FROM dials WHERE id = $1", first.dial_id) == "abandoned"
    assert d.window.rate((T0 + timedelta(seconds=10)).timestamp()) == (1.0, 1)
    # the connected one is on its agent's record at once: the panel may post while they talk
    assert await db.fetchval("SELECT connected_agent FROM dials WHERE id = $1", second.dial_id) == "agent2"
    # what the supervisor's pacing view says meanwhile: one abandon in one answer, the factor cut
    # by it, one customer talking, the rest still ringing
    st = d.status()
    assert (st["mode"], st["abandon_rate"], st["abandon_window_answered"], st["abandon_max"]) == (
        "predictive",
        1.0,
        1,
        0.03,
    )
    assert st["overdial"] < 1.0 and st["in_call"] == 1 and st["in_flight"] == len(sent) - 2
    assert st["gate"] is None and st["dialed"] == len(sent)
    await d.handle_ami({"Event": "Hangup", "Uniqueid": second.channel_id, "Cause": "16"})
    assert await db.fetchval("SELECT outcome FROM dials WHERE id = $1", second.dial_id) == "answered"


async def test_originate_that_never_left_releases_the_number_and_agent(pool, db, make_campaign):
    from cti.callbacks.originate import OriginateNotSent

    d, _floor, _sent = await _dialer(pool, db, make_campaign)

    async def not_connected(req: OutboundOriginate) -> dict[str, Any]:
        raise OriginateNotSent("AMI not connected")

    d.originate = not_connected
    assert (await d.step()).dials == 3
    assert await db.fetchval("SELECT count(*) FROM dial_claims") == 0
    assert {r["outcome"] for r in await db.fetch("SELECT outcome FROM dials")} == {"originate_error"}


def test_live_floor_does_not_count_our_own_predictive_customers_as_inbound():
    from cti.outbound.runner import LiveFloor
    from cti.state.live import LiveState

    live = LiveState()
    for uid, q in (("1763928000.1", "sales"), ("cti-ob-7", "sales")):
        live.apply(
            {
                "Event": "Newchannel",
                "Channel": f"PJSIP/x-{uid}",
                "ChannelState": "4",
                "Uniqueid": uid,
                "Linkedid": uid,
                "CallerIDNum": "13812345678",
                "Exten": "s",
                "Context": "x",
            },
            1.0,
        )
        live.apply(
            {
                "Event": "QueueCallerJoin",
                "Channel": f"PJSIP/x-{uid}",
                "Uniqueid": uid,
                "Linkedid": uid,
                "Queue": q,
                "Position": "1",
                "Count": "1",
                "CallerIDNum": "13812345678",
            },
            1.0,
        )
    floor = LiveFloor(live, "sales", lambda: False)
    assert len(live.state.callers) == 2
    assert floor.inbound_waiting() == 1


async def test_a_dial_that_never_hears_back_is_closed_and_an_orphan_claim_is_released(
    pool, db, make_campaign
):
    from cti.cluster.claims import renew_lease
    from cti.outbound.outcomes import release_orphans

    d, floor, _sent = await _dialer(pool, db, make_campaign)
    await d.step()
    assert await db.fetchval("SELECT count(*) FROM dial_claims") == 3
    d.clock.advance(121)  # type: ignore[attr-defined]
    floor.free = []  # nobody free: the step only expires
    await d.step()
    assert await db.fetchval("SELECT count(*) FROM dial_claims") == 0
    assert {r["outcome"] for r in await db.fetch("SELECT outcome FROM dials")} == {"failed"}
    # a claim left by a process that died: released by the pacer once the dead process's lease has
    # lapsed, not while the process lives (its own Dialer will end the dial)
    await renew_lease(db, d.process)
    floor.free = ["agent1"]
    await d.step()
    d.live.clear()  # the process "dies": nobody will end that dial
    later = d.clock.now()  # type: ignore[attr-defined]
    assert await release_orphans(db, "new-leader", later + timedelta(minutes=10), 4 * 3600) == 0  # alive
    assert await db.fetchval("SELECT agent FROM dial_claims") == "agent1"
    await db.execute("UPDATE process_leases SET expires_at = now() - interval '1 s'")  # it died
    assert await release_orphans(db, "new-leader", later + timedelta(seconds=60), 4 * 3600) == 0  # ringing?
    assert await release_orphans(db, "new-leader", later + timedelta(minutes=10), 4 * 3600) == 1
    assert await db.fetchval("SELECT count(*) FROM dial_claims") == 0  # number and agent1 free again
    # no lease row at all (a process that never renewed one): as dead as a lapsed lease
    await d.step()
    d.live.clear()
    await db.execute("DELETE FROM process_leases")
    assert await release_orphans(db, "new-leader", later + timedelta(hours=5), 4 * 3600) == 1


async def test_runner_follows_campaigns_and_their_windows(pool, db, db_url, make_campaign):
    from datetime import time

    from cti.outbound import campaigns
    from cti.outbound.rules import Window
    from cti.outbound.runner import OutboundRunner
    from cti.policy import load_policy
    from cti.state.live import LiveState

    k = await make_campaign()

    async def originate(req: OutboundOriginate) -> dict[str, Any]:
        return {"Response": "Success"}

    runner = OutboundRunner(
        pool,
        db_url,
        LiveState(),
        load_policy(),
        "Asia/Shanghai",
        ManualClock(T0),
        originate,
        in_peak=lambda: False,
    )
    await runner.refresh()
    first = runner.dialers[k].rule_set_id
    st = runner.status()  # not holding the pacer lock (run() not started): says so
    assert st["pacing"] is False and [c["campaign"] for c in st["campaigns"]] == [k]
    await campaigns.set_windows(db, k, (Window("default", time(10), time(12)),))
    await runner.refresh()
    assert runner.dialers[k].rule_set_id != first
    assert runner.dialers[k].rules.windows == (Window("default", time(10), time(12)),)
    await campaigns.set_status(db, k, "paused", by="t")
    await runner.refresh()
    assert k not in runner.dialers


async def test_progressive_call_connected_by_dial_to_the_claimed_agent(pool, db, make_campaign):
    d, _floor, sent = await _dialer(pool, db, make_campaign)
    await d.step()
    c = sent[0]
    await d.handle_ami(
        {
            "Event": "OriginateResponse",
            "ActionID": "ami-1",
            "Response": "Success",
            "Reason": "4",
            "Uniqueid": c.channel_id,
        }
    )
    d.clock.advance(1)  # type: ignore[attr-defined]
    # capture 12's shape: DialEnd on the caller's channel, DestChannel the agent's
    await d.handle_ami(
        {
            "Event": "DialEnd",
            "Uniqueid": c.channel_id,
            "DestChannel": f"PJSIP/{c.agent}-00000001",
            "DialStatus": "ANSWER",
        }
    )
    d.clock.advance(40)  # type: ignore[attr-defined]
    await d.handle_ami({"Event": "Hangup", "Uniqueid": c.channel_id, "Cause": "16"})
    row = await db.fetchrow("SELECT outcome, connected_agent, talk_s FROM dials WHERE id = $1", c.dial_id)
    assert tuple(row) == ("answered", c.agent, 40)

"""Captures 17 and 19 replayed: the simulator is no kinder than Asterisk 22 about queue membership.

- 19: a member added right after REGISTER is Status 5 until the first qualify; a caller then gets
  JOINEMPTY. PJSIPQualify (capture 17's frames) makes it Status 1 at once.
- 17: `core restart now` hangs up the calls, sends `Event: Shutdown` and closes AMI without a Goodbye;
  AMI then accepts a login while QueueStatus is still `Invalid/unknown command`; once booted the
  queue has no members and nobody re-adds them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cti.sim import Simulator
from tests.sim.helpers import FastAgiServer, RawAmi, capture_frames, d, keys, started
from tests.sim.test_fidelity import queue_add, route_queue_only, scenario


@pytest.fixture
async def rig() -> AsyncIterator[tuple[Simulator, RawAmi]]:
    agi = FastAgiServer({"route": route_queue_only})
    port = await agi.start()
    sim = Simulator(
        scenario(30.0), agi_url=f"agi://127.0.0.1:{port}", auth_fail_delay=0.05, record_events=True
    )
    sim.add_agent("agent1", "Agent One", registered=False)
    sim.add_agent("agent2", "Agent Two", registered=False)
    async with started(sim) as ami:
        yield sim, ami
    await agi.close()


def _events(frames, name):  # type: ignore[no-untyped-def]
    return [d(f) for f in frames if d(f).get("Event") == name]


async def test_19_member_added_after_register_is_unavailable_and_the_caller_gets_joinempty(rig) -> None:  # type: ignore[no-untyped-def]
    sim, ami = rig
    sim.register("agent1", True)
    await queue_add(ami, "agent1", 0, "ami-002")
    added = await ami.wait(lambda f: d(f).get("Event") == "QueueMemberAdded")
    cap = [
        f
        for f in capture_frames("19-extra-joinempty-before-qualify")
        if d(f).get("Event") == "QueueMemberAdded"
    ]
    assert d(added)["Status"] == d(cap[0])["Status"] == "5"
    assert keys(added) == keys(cap[0])
    assert not _events(ami.frames, "PeerStatus")  # capture 19: a REGISTER under qualify shows nothing
    sim.place_call(caller="13812345678", did="4008001234", name="张三")
    await sim.advance(1)
    await ami.drain_for()
    statuses = [v["Value"] for v in _events(ami.frames, "VarSet") if v.get("Variable") == "QUEUESTATUS"]
    assert statuses == ["JOINEMPTY"]
    assert not _events(ami.frames, "QueueCallerJoin")


async def test_17_pjsipqualify_makes_the_member_reachable_at_once(rig) -> None:  # type: ignore[no-untyped-def]
    sim, ami = rig
    sim.register("agent1", True)
    await queue_add(ami, "agent1", 0, "ami-002")
    r = await ami.action(("Action", "PJSIPQualify"), ("ActionID", "ami-004"), ("Endpoint", "agent1"))
    cap = capture_frames("17-asterisk-restart-with-cti")
    cap_reply = next(f for f in cap if d(f).get("ActionID") == "ami-004")
    assert r == cap_reply  # Response Success, ActionID, Message "Endpoint found, will qualify"
    await sim.advance(0.1)
    await ami.drain_for()
    got = [
        (d(f)["Event"], d(f).get("Status", d(f).get("PeerStatus", d(f).get("ContactStatus", ""))))
        for f in ami.frames
        if d(f).get("Event") in ("PeerStatus", "ContactStatus", "QueueMemberStatus")
    ]
    assert got == [("PeerStatus", "Reachable"), ("ContactStatus", "Reachable"), ("QueueMemberStatus", "1")]
    for ev in ("PeerStatus", "ContactStatus", "QueueMemberStatus"):
        mine = next(f for f in ami.frames if d(f).get("Event") == ev)
        theirs = next(f for f in cap if d(f).get("Event") == ev)
        assert keys(mine) == keys(theirs), ev
    assert sim.queue_members()[0]["status"] == 1
    bad = await ami.action(("Action", "PJSIPQualify"), ("ActionID", "q9"), ("Endpoint", "nobody"))
    assert d(bad)["Response"] == "Error"


async def test_periodic_qualify_makes_a_fresh_member_reachable_within_qualify_frequency(rig) -> None:  # type: ignore[no-untyped-def]
    sim, ami = rig
    sim.register("agent2", True)
    await queue_add(ami, "agent2", 0, "a1")
    await sim.advance(0.2)
    assert sim.queue_members()[0]["status"] == 5
    await sim.advance(31)
    assert sim.queue_members()[0]["status"] == 1


async def test_17_restart_shutdown_eof_unknown_queuestatus_then_an_empty_queue(rig) -> None:  # type: ignore[no-untyped-def]
    sim, ami = rig
    for a in ("agent1", "agent2"):
        sim.register(a, True)
        await queue_add(ami, a, 0, f"add-{a}")
        await ami.action(("Action", "PJSIPQualify"), ("ActionID", f"q-{a}"), ("Endpoint", a))
    sim.place_call(caller="13812345678", did="4008001234", name="张三")
    await sim.advance(10)
    assert len(sim.channels()) == 2  # the caller talking to an agent, as in capture 17
    sim.restart_asterisk()
    with pytest.raises(AssertionError):  # EOF: no more frames, and never a Goodbye
        await ami.wait(lambda f: False, timeout=1)
    cap = capture_frames("17-asterisk-restart-with-cti")
    shutdown = next(f for f in ami.frames if d(f).get("Event") == "Shutdown")
    assert keys(shutdown) == keys(next(f for f in cap if d(f).get("Event") == "Shutdown"))
    assert d(shutdown)["Shutdown"] == "Cleanly" and d(shutdown)["Restart"] == "True"
    assert not [f for f in ami.frames if f[0] == ("Response", "Goodbye")]
    hangups = _events(ami.frames, "Hangup")
    assert hangups and all(h["Cause"] == "16" for h in hangups)
    assert ami.frames.index(shutdown) > max(
        ami.frames.index(f) for f in ami.frames if d(f).get("Event") == "Hangup"
    )

    again = await RawAmi.connect(sim.ami_port)
    assert d(await again.login())["Message"] == "Authentication accepted"
    early = await again.action(("Action", "QueueStatus"), ("ActionID", "r1"))
    assert d(early) == {
        "Response": "Error",
        "ActionID": "r1",
        "Message": "Invalid/unknown command: QueueStatus. "
        "Use Action: ListCommands to show available commands.",
    }
    await sim.advance(1)
    status = await again.action(("Action", "QueueStatus"), ("ActionID", "r2"))
    assert d(status)["Response"] == "Success"
    done = await again.wait(lambda f: d(f).get("Event") == "QueueStatusComplete")
    items = [d(f)["Event"] for f in again.frames if d(f).get("ActionID") == "r2" and "Event" in d(f)]
    assert items == ["QueueParams", "QueueStatusComplete"]  # no QueueMember: nobody re-added them
    assert d(done)["ListItems"] == "1"
    assert sim.queue_members() == [] and sim.channels() == []
    await again.close()

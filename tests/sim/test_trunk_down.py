"""Capture 18: a callback Originate while the carrier trunk is unreachable. The agent answers, the
Originate reports Success Reason 4, then `[callback-did]`'s Dial creates no channel: DIALSTATUS
CHANUNAVAIL, no DialBegin/DialEnd, the agent leg hangs up with Cause 3 TechCause 404."""

from __future__ import annotations

from tests.sim.helpers import capture_frames, d
from tests.sim.test_fidelity import Rig, make_rig, rigs  # noqa: F401  (fixture)

CAPTURE = "18-originate-chanunavail"
CID = "cti-cb-18-1"


def after_answer(frames) -> list[tuple[str, ...]]:  # type: ignore[no-untyped-def]
    """What the callback channel says once the agent answered, in the fields a CTI can act on."""
    out: list[tuple[str, ...]] = []
    for f in frames:
        m = d(f)
        ev = m.get("Event")
        if ev == "OriginateResponse" and m.get("Uniqueid") == CID:
            out.append((ev, m["Response"], m["Reason"]))
        if m.get("Uniqueid") != CID and m.get("DestUniqueid") != CID:
            continue
        if ev == "VarSet" and m["Variable"] == "DIALSTATUS" and m["Value"]:
            out.append((ev, m["Variable"], m["Value"]))
        elif ev == "Newexten" and m["Application"] in ("NoOp", "Hangup") and m["Context"] == "callback-did":
            out.append((ev, m["Application"], m["AppData"]))
        elif ev in ("SoftHangupRequest", "Hangup"):
            out.append((ev, m.get("Cause", ""), m.get("Cause-txt", ""), m.get("TechCause", "")))
        elif ev in ("DialBegin", "DialEnd") and m.get("Uniqueid") == CID:
            out.append((ev, m.get("DialStatus", "")))  # the customer leg: must not exist
    return [x for x in out if not (x[0] == "Newexten" and x[2].startswith("Callback"))]


async def test_18_callback_with_the_trunk_down_replayed(rigs: list[Rig]) -> None:  # noqa: F811
    rig = await make_rig({})
    rigs.append(rig)
    sim, ami = rig.sim, rig.ami
    sim.set_trunk(False)
    sim.set_answer("agent1", "auto", delay=1.0)
    reply = await ami.action(
        ("Action", "Originate"), ("ActionID", "ami-004"), ("Channel", "PJSIP/agent1"),
        ("Context", "callback-did"), ("Exten", "13812345678"), ("Priority", "1"),
        ("CallerID", "4008001234"), ("Timeout", "10000"),
        ("Variable", "CTI_DID=4008001234,CTI_CALLBACK_ID=18"), ("Async", "true"), ("ChannelId", CID),
    )  # fmt: skip
    assert d(reply)["Message"] == "Originate successfully queued"
    await sim.advance(5)
    await ami.drain_for()
    want = after_answer(capture_frames(CAPTURE))
    assert want == [
        ("OriginateResponse", "Success", "4"),
        ("VarSet", "DIALSTATUS", "CHANUNAVAIL"),
        ("Newexten", "NoOp", "DIALSTATUS=CHANUNAVAIL"),
        ("Newexten", "Hangup", ""),
        ("SoftHangupRequest", "16", "", ""),
        ("Hangup", "3", "No route to destination", "404"),
    ]
    assert after_answer(ami.frames) == want
    assert sim.channels() == []
    # trunk back: the next callback reaches the customer's phone again
    sim.set_trunk(True)
    sim.set_customer("13812345678", "answer", delay=1.0, talk_time=2.0)
    await ami.action(
        ("Action", "Originate"), ("ActionID", "ami-005"), ("Channel", "PJSIP/agent1"),
        ("Context", "callback-did"), ("Exten", "13812345678"), ("Priority", "1"),
        ("CallerID", "4008001234"), ("Timeout", "10000"),
        ("Variable", "CTI_DID=4008001234,CTI_CALLBACK_ID=18"), ("Async", "true"),
        ("ChannelId", "cti-cb-18-2"),
    )  # fmt: skip
    await sim.advance(10)
    await ami.drain_for()
    ends = [
        d(f) for f in ami.frames if d(f).get("Event") == "DialEnd" and d(f).get("Uniqueid") == "cti-cb-18-2"
    ]
    assert [e["DialStatus"] for e in ends] == ["ANSWER"]

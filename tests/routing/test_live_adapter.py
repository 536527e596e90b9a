"""The adapter from the AMI live state to routing availability, fed real frame shapes (capture 02)."""

from __future__ import annotations

from cti.routing.live_adapter import LiveSnapshot, live_snapshot_source
from cti.routing.snapshot import Availability
from cti.state.live import LiveState


def _member(event: str, name: str, **kw: str) -> dict[str, str]:
    base = {
        "Event": event,
        "Queue": "sales",
        "MemberName": name,
        "Interface": f"PJSIP/{name}",
        "StateInterface": f"PJSIP/{name}",
        "Membership": "dynamic",
        "Penalty": "0",
        "CallsTaken": "0",
        "LastCall": "0",
        "LastPause": "0",
        "LoginTime": "1795430749",
        "InCall": "0",
        "Status": "1",
        "Paused": "0",
        "PausedReason": "",
        "Ringinuse": "0",
        "Wrapuptime": "0",
    }
    base.update(kw)
    return base


def test_availability_follows_queue_member_events() -> None:
    live = LiveState()
    live.apply(_member("QueueMemberAdded", "agent1"), 1.0)
    live.apply(_member("QueueMemberAdded", "agent2"), 1.0)
    live.apply(_member("QueueMemberAdded", "agent3", Status="5"), 1.0)
    snap = LiveSnapshot(live)
    assert snap.availability("agent1") is Availability.AVAILABLE
    assert snap.availability("agent3") is Availability.OFFLINE  # phone not registered
    assert snap.availability("agent4") is Availability.OFFLINE  # not logged in
    live.apply(_member("QueueMemberPause", "agent1", Paused="1", PausedReason="Auto-Pause"), 2.0)
    assert snap.availability("agent1") is Availability.PAUSED
    live.apply(_member("QueueMemberStatus", "agent2", Status="6"), 2.0)
    assert snap.availability("agent2") is Availability.RINGING
    live.apply(_member("QueueMemberStatus", "agent2", Status="2", InCall="1"), 3.0)
    assert snap.availability("agent2") is Availability.BUSY


def test_no_opinion_while_ami_is_down() -> None:
    live = LiveState()
    live.apply(_member("QueueMemberAdded", "agent1", Paused="1"), 1.0)
    up = [True]
    source = live_snapshot_source(live, connected=lambda: up[0])
    assert source().availability("agent1") is Availability.PAUSED
    up[0] = False
    assert source().live is False
    assert source().availability("agent1") is Availability.UNKNOWN


def test_queue_is_unreachable_while_its_only_members_are_status_5_and_paused_members_count() -> None:
    """Capture 19: QueueMemberAdded Status 5 right after REGISTER -> JOINEMPTY until qualified."""
    live = LiveState()
    snap = LiveSnapshot(live)
    assert snap.queue_reachable("sales") is False  # after a restart: no members at all (capture 17)
    live.apply(_member("QueueMemberAdded", "agent1", Status="5"), 1.0)
    assert snap.queue_reachable("sales") is False
    live.apply(_member("QueueMemberStatus", "agent1", Status="1"), 2.0)  # qualified
    assert snap.queue_reachable("sales") is True
    live.apply(_member("QueueMemberPause", "agent1", Paused="1", PausedReason="lunch"), 3.0)
    assert snap.queue_reachable("sales") is True  # captures 14, 20: paused members do not empty it

"""The listener's resync: events that arrive while the snapshot is being taken are not lost."""

from __future__ import annotations

from cti.ami.client import AMIClient
from cti.ami.listener import AMIListener
from cti.state.live import LiveState
from tests.ami.fake_server import FakeAMI

CH = {"Channel": "PJSIP/trunk-00000007", "Uniqueid": "1795430999.7", "Linkedid": "1795430999.7"}


async def test_events_during_the_snapshot_are_applied_on_top_of_it() -> None:
    ami = await FakeAMI().start()

    def queue_status(conn, m):  # type: ignore[no-untyped-def]
        frames = [
            {
                "Response": "Success",
                "ActionID": "$ID",
                "EventList": "start",
                "Message": "Queue status will follow",
            },
            {
                "Event": "QueueMember",
                "Queue": "sales",
                "Name": "agent1",
                "Location": "PJSIP/agent1",
                "Status": "1",
                "Paused": "0",
                "PausedReason": "",
                "InCall": "0",
                "ActionID": "$ID",
            },
            {"Event": "QueueStatusComplete", "ActionID": "$ID", "EventList": "Complete", "ListItems": "1"},
            # after the QueueStatus answer, before CoreShowChannels: a caller arrives and queues
            {
                "Event": "Newchannel",
                "Privilege": "call,all",
                "Timestamp": "1795430999.100000",
                **CH,
                "CallerIDNum": "13812345678",
                "Exten": "4008001234",
                "ChannelStateDesc": "Up",
            },
            {
                "Event": "QueueCallerJoin",
                "Privilege": "agent,all",
                "Timestamp": "1795430999.200000",
                **CH,
                "Queue": "sales",
                "Position": "1",
                "Count": "1",
                "CallerIDNum": "13812345678",
            },
        ]
        return frames

    def core_show_channels(conn, m):  # type: ignore[no-untyped-def]
        return [
            {
                "Response": "Success",
                "ActionID": "$ID",
                "EventList": "start",
                "Message": "Channels will follow",
            },
            {
                "Event": "CoreShowChannel",
                "ActionID": "$ID",
                **CH,
                "CallerIDNum": "13812345678",
                "Exten": "4008001234",
                "Duration": "00:00:01",
                "BridgeId": "",
            },
            {
                "Event": "CoreShowChannelsComplete",
                "ActionID": "$ID",
                "EventList": "Complete",
                "ListItems": "1",
            },
        ]

    ami.handlers["QueueStatus"] = queue_status
    ami.handlers["CoreShowChannels"] = core_show_channels
    live = LiveState()
    client = AMIClient("127.0.0.1", ami.port, "cti", "secret", ping_interval=0)
    listener = AMIListener(client, live)
    try:
        await listener.start()
        assert live.resyncs == 1
        (caller,) = live.callers_waiting("sales")  # the snapshot alone would not have it
        assert caller.uniqueid == "1795430999.7" and caller.joined == 1795430999.2
        assert live.free_agents("sales") == ["agent1"]
        assert live.summary()["channels"] == 1 and live.summary()["calls"] == 1
    finally:
        await listener.close()
        await ami.stop()

"""Our AMI client against a fake AMI server: one test per panoramisk 1.4 defect (issue 4), showing
ours does not have it, plus list actions, ordering and the on_connect hook."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import pytest

from cti.ami.client import (
    ActionError,
    ActionTimeout,
    AMIClient,
    AuthenticationError,
    ConnectionLost,
    NotConnected,
)
from cti.ami.codec import Message
from tests.ami.fake_server import FakeAMI


@pytest.fixture
async def ami() -> AsyncIterator[FakeAMI]:
    srv = await FakeAMI().start()
    yield srv
    await srv.stop()


def client_for(srv: FakeAMI, **kw: float) -> AMIClient:
    opts: dict = {"action_timeout": 1.0, "ping_interval": 0, "backoff_initial": 0.02, "backoff_max": 0.1}
    opts.update(kw)
    return AMIClient("127.0.0.1", srv.port, srv.username, srv.secret, **opts)


async def wait_for(cond, limit: float = 3.0) -> None:
    end = time.monotonic() + limit
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def test_defect1_originate_without_async_resolves_and_connection_survives(ami: FakeAMI) -> None:
    ami.handlers["Originate"] = lambda c, m: [
        {"Response": "Error", "ActionID": "$ID", "Message": "Originate failed"}
    ]
    c = client_for(ami)
    await c.start()
    try:
        with pytest.raises(ActionError, match="Originate failed"):
            await c.action("Originate", {"Channel": "PJSIP/agent1", "Exten": "100", "Context": "x"})
        reply = await c.action("Originate", {"Channel": "PJSIP/agent1"}, check=False)
        assert reply.response["Message"] == "Originate failed"
        assert (await c.ping()).response["Ping"] == "Pong"  # same connection still fine
        assert ami.logins == 1
    finally:
        await c.close()


async def test_async_originate_reply_then_originate_response_event(ami: FakeAMI) -> None:
    def originate(conn, m):  # type: ignore[no-untyped-def]
        return [
            {"Response": "Success", "ActionID": "$ID", "Message": "Originate successfully queued"},
            {"Event": "OriginateResponse", "Privilege": "call,all", "ActionID": "$ID", "Response": "Success",
             "Channel": "PJSIP/agent1-00000001", "Reason": "4", "Uniqueid": "cti-cb-1-1"},
        ]  # fmt: skip

    ami.handlers["Originate"] = originate
    events: list[Message] = []
    c = client_for(ami)
    c.subscribe(events.append)
    await c.start()
    try:
        r = await c.action(
            "Originate", {"Channel": "PJSIP/agent1", "Async": "true", "ChannelId": "cti-cb-1-1"}
        )
        assert r.response["Message"] == "Originate successfully queued"
        await wait_for(lambda: any(e.name == "OriginateResponse" for e in events))
        (o,) = [e for e in events if e.name == "OriginateResponse"]
        assert o["ActionID"] == r.action_id and o["Reason"] == "4"
    finally:
        await c.close()


async def test_defect2_action_in_flight_fails_on_disconnect_and_is_never_resent(ami: FakeAMI) -> None:
    ami.hold.add("Originate")
    c = client_for(ami, action_timeout=5.0)
    await c.start()
    try:
        task = asyncio.create_task(c.action("Originate", {"Channel": "PJSIP/agent1", "Async": "true"}))
        await wait_for(lambda: len(ami.actions("Originate")) == 1)
        ami.drop_all()
        with pytest.raises(ConnectionLost, match="outcome unknown"):
            await task
        await wait_for(lambda: ami.logins == 2)
        await c.ping()
        await asyncio.sleep(0.05)
        assert len(ami.actions("Originate")) == 1  # one call to the customer, not two
    finally:
        await c.close()


async def test_defect3_action_while_disconnected_fails_within_timeout(ami: FakeAMI) -> None:
    c = client_for(ami)
    await c.start()
    await ami.stop()  # server gone: reconnects keep failing
    ami.drop_all()
    await wait_for(lambda: not c.connected)
    t0 = time.monotonic()
    with pytest.raises(NotConnected, match=r"within 0\.3s"):
        await c.action("Ping", timeout=0.3)
    assert time.monotonic() - t0 < 1.0
    await c.close()


async def test_defect3_unanswered_action_times_out(ami: FakeAMI) -> None:
    ami.hold.add("QueueStatus")
    c = client_for(ami)
    await c.start()
    try:
        with pytest.raises(ActionTimeout, match="may or may not have run"):
            await c.action("QueueStatus", timeout=0.2)
        await c.ping()  # and the connection is still usable
    finally:
        await c.close()


async def test_defect4_half_open_peer_detected_and_reconnected(ami: FakeAMI) -> None:
    c = client_for(ami, ping_interval=0.05, ping_timeout=0.1)
    await c.start()
    try:
        ami.answer_pings = False  # the peer still accepts bytes but never answers: half-open
        await wait_for(lambda: ami.logins >= 2)
        ami.answer_pings = True
        await wait_for(lambda: c.connected)
        assert (await c.ping()).response["Ping"] == "Pong"
    finally:
        await c.close()


async def test_defect5_close_cancels_a_scheduled_reconnect(ami: FakeAMI) -> None:
    c = client_for(ami, backoff_initial=0.3, backoff_max=0.3)
    await c.start()
    ami.drop_all()
    await wait_for(lambda: not c.connected)
    await c.close()  # a reconnect is now sleeping in its backoff
    conns_before = ami.logins
    await asyncio.sleep(0.6)
    assert ami.logins == conns_before == 1
    assert not c.connected
    with pytest.raises(NotConnected, match="closed"):
        await c.action("Ping")


async def test_defect6_failed_login_raises(ami: FakeAMI) -> None:
    c = AMIClient("127.0.0.1", ami.port, "cti", "wrong", action_timeout=2.0, ping_interval=0)
    with pytest.raises(AuthenticationError, match="Authentication failed"):
        await c.start()
    await c.close()


async def test_connect_refused_is_a_clear_error() -> None:
    srv = await FakeAMI().start()
    port = srv.port
    await srv.stop()
    c = AMIClient("127.0.0.1", port, "cti", "secret", ping_interval=0)
    with pytest.raises(NotConnected, match="cannot connect"):
        await c.start()


async def test_defect7_and_8_utf8_split_and_empty_last_header(ami: FakeAMI) -> None:
    got: list[Message] = []
    c = client_for(ami)
    c.subscribe(got.append)
    await c.start()
    try:
        frame = (
            "Event: Newchannel\r\nPrivilege: call,all\r\n"
            "CallerIDName: Zoë Müller 张三\r\nUniqueid: 1.0\r\n\r\n"
            "Event: VarSet\r\nPrivilege: dialplan,all\r\nVariable: ANSWEREDTIME\r\nValue: \r\n\r\n"
        ).encode()
        (conn,) = ami.conns
        for i in range(len(frame)):  # one byte per write: every character gets split
            conn.send(frame[i : i + 1])
            await conn.writer.drain()
            await asyncio.sleep(0)
        await wait_for(lambda: len(got) == 3)
        assert got[1]["CallerIDName"] == "Zoë Müller 张三"
        assert got[2]["Value"] == ""
    finally:
        await c.close()


def test_defect9_no_panoramisk_at_runtime_even_after_its_testing_module() -> None:
    # panoramisk.testing mutates module state; we never import panoramisk outside tests, and our
    # client works in a process where panoramisk.testing was imported and used.
    code = """
import asyncio, sys
import cti.ami.client, cti.ami.listener, cti.ami.codec, cti.state.live
assert not any(m.startswith("panoramisk") for m in sys.modules), "panoramisk imported at runtime"
import panoramisk.testing
panoramisk.testing.Manager()
from tests.ami.fake_server import FakeAMI
async def main():
    srv = await FakeAMI().start()
    c = cti.ami.client.AMIClient("127.0.0.1", srv.port, "cti", "secret", ping_interval=0)
    await c.start()
    r = await c.ping()
    assert r.response["Ping"] == "Pong"
    await c.close(); await srv.stop()
asyncio.run(main())
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=".")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")


async def test_list_action_collects_items_until_complete(ami: FakeAMI) -> None:
    ami.handlers["CoreShowChannels"] = lambda c, m: [
        {"Response": "Success", "ActionID": "$ID", "EventList": "start", "Message": "Channels will follow"},
        {"Event": "CoreShowChannel", "ActionID": "$ID", "Channel": "PJSIP/trunk-00000000", "Uniqueid": "1.0"},
        {
            "Event": "CoreShowChannel",
            "ActionID": "$ID",
            "Channel": "PJSIP/agent1-00000001",
            "Uniqueid": "1.1",
        },
        {"Event": "CoreShowChannelsComplete", "ActionID": "$ID", "EventList": "Complete", "ListItems": "2"},
    ]
    events: list[Message] = []
    c = client_for(ami)
    c.subscribe(events.append)
    await c.start()
    try:
        r = await c.action("CoreShowChannels")
        assert [m["Uniqueid"] for m in r.items] == ["1.0", "1.1"]
        assert r.complete is not None and r.complete["ListItems"] == "2"
        assert [e.name for e in events] == ["FullyBooted"]  # list items are not broadcast events
    finally:
        await c.close()


async def test_events_in_order_to_sync_and_async_subscribers_and_on_connect(ami: FakeAMI) -> None:
    seen_sync: list[str] = []
    seen_async: list[str] = []
    hooks: list[int] = []

    async def slow(m: Message) -> None:
        await asyncio.sleep(0 if int(m.get("N", "0")) % 2 else 0.001)
        seen_async.append(m.first("N"))

    c = client_for(ami)
    c.subscribe(lambda m: seen_sync.append(m.first("N")))
    c.subscribe(slow)

    async def hook(cl: AMIClient) -> None:
        hooks.append(cl.connects)
        await cl.ping()  # actions work inside the hook

    c.on_connect(hook)
    await c.start()
    try:
        for i in range(200):
            ami.broadcast({"Event": "UserEvent", "Privilege": "user,all", "N": str(i)})
        await wait_for(lambda: len(seen_async) == 201)
        expected = ["", *[str(i) for i in range(200)]]  # FullyBooted first
        assert seen_sync == expected and seen_async == expected
        ami.drop_all()
        await wait_for(lambda: hooks == [1, 2])
    finally:
        await c.close()


async def test_a_subscriber_that_raises_loses_one_event_not_the_link_or_the_rest(ami: FakeAMI) -> None:
    """A failing handler is logged (structlog's own `event` argument must not clash with the AMI
    event's name: that TypeError escaped the except block and took the reader down)."""
    seen_sync: list[str] = []
    seen_async: list[str] = []

    def sync(m: Message) -> None:
        if m.first("N") == "1":
            raise ValueError("bad frame for this subscriber")
        seen_sync.append(m.first("N"))

    async def aio(m: Message) -> None:
        if m.first("N") == "1":
            raise ValueError("bad frame for this subscriber")
        seen_async.append(m.first("N"))

    c = client_for(ami)
    c.subscribe(sync)
    c.subscribe(aio)
    await c.start()
    try:
        for i in range(4):
            ami.broadcast({"Event": "UserEvent", "Privilege": "user,all", "N": str(i)})
        await wait_for(lambda: len(seen_async) == 4)
        assert seen_sync == seen_async == ["", "0", "2", "3"]  # FullyBooted, then all but the bad one
        assert c.connects == 1 and c.connected
    finally:
        await c.close()


async def test_action_before_login_is_refused_by_server_shape(ami: FakeAMI) -> None:
    # our client never sends before Login; prove the guard: action() before start() waits then fails
    c = client_for(ami)
    with pytest.raises(NotConnected):
        await c.action("Ping", timeout=0.1)


async def test_start_with_retry_waits_for_a_late_asterisk() -> None:
    probe = await FakeAMI().start()
    port = probe.port
    await probe.stop()  # nothing listens on `port` yet
    c = AMIClient("127.0.0.1", port, "cti", "secret", ping_interval=0, backoff_initial=0.05, backoff_max=0.1)
    task = asyncio.create_task(c.start(retry=True))
    await asyncio.sleep(0.3)
    assert not task.done() and c.last_error is not None  # still trying, not crashed
    late = FakeAMI(port=0)
    late._server = await asyncio.start_server(late._serve, "127.0.0.1", port)
    late.port = port
    try:
        await asyncio.wait_for(task, 3)
        assert c.connected and late.logins == 1
    finally:
        await c.close()
        await late.stop()


async def test_from_settings_logs_in_with_the_configured_secret(ami: FakeAMI) -> None:
    from cti.config import AmiSettings

    c = AMIClient.from_settings(
        AmiSettings(port=ami.port, username="cti", secret="secret", ping_interval_s=1)
    )
    await c.start()
    try:
        assert ami.logins == 1 and c.ping_interval == 1 and c.ping_timeout == 1
    finally:
        await c.close()


async def test_a_peer_still_sending_is_behind_not_dead(ami: FakeAMI) -> None:
    """A Ping reply queued behind a stream of events (or a busy CTI) must not drop a live link;
    silence with no reply still does (the half-open test above)."""
    c = client_for(ami, ping_interval=0.05, ping_timeout=0.1)
    await c.start()
    try:
        ami.answer_pings = False
        for _ in range(40):  # events keep flowing for 0.8 s, eight ping timeouts' worth
            ami.broadcast({"Event": "Newexten", "Channel": "PJSIP/trunk-00000001"})
            await asyncio.sleep(0.02)
        assert ami.logins == 1 and c.connected
    finally:
        ami.answer_pings = True
        await c.close()

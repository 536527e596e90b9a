"""AgiConnection, the protocol-level reader the server uses instead of StreamReader: bytes arrive in
whatever pieces TCP makes of them, lines come out whole."""

from __future__ import annotations

import asyncio

import pytest

from cti.agi.connection import AgiConnection
from cti.agi.protocol import AgiCommandError, AgiHangup, AgiProtocolError, Environment
from cti.agi.session import AgiSession, read_environment
from tests.captures import CAPTURES


class FakeTransport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.eof_written = False
        self.closed = False
        self.aborted = False
        self.paused = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof_written = True

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False


def _conn(limit: int = 65536) -> tuple[AgiConnection, FakeTransport, list[AgiConnection]]:
    closed: list[AgiConnection] = []
    conn = AgiConnection(lambda _c: None, closed.append, limit=limit)
    transport = FakeTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    return conn, transport, closed


async def _later(conn: AgiConnection, *pieces: bytes) -> None:
    """Deliver pieces one loop turn apart, as separate packets would arrive."""
    for p in pieces:
        await asyncio.sleep(0)
        conn.data_received(p)


async def test_a_line_split_across_packets_is_read_whole() -> None:
    conn, _, _ = _conn()
    feeder = asyncio.create_task(_later(conn, b"200 res", b"ult=1 (", b"13812345678)", b"\n"))
    assert await conn.read_until(b"\n") == b"200 result=1 (13812345678)"
    await feeder


async def test_several_lines_in_one_packet_are_read_without_waiting() -> None:
    conn, _, _ = _conn()
    conn.data_received(b"200 result=1\n200 result=0\nHANGUP\n")
    assert [conn.take(b"\n") for _ in range(4)] == [b"200 result=1", b"200 result=0", b"HANGUP", None]


async def test_the_agi_block_with_its_empty_line_split_between_packets() -> None:
    conn, _, _ = _conn()
    feeder = asyncio.create_task(
        _later(conn, b"agi_network_script: route\nagi_uniqueid: 1.2\n", b"\n200 result=1\n")
    )
    env = await read_environment(conn, 1.0)
    await feeder
    assert env == Environment({"agi_network_script": "route", "agi_uniqueid": "1.2"})
    assert conn.take(b"\n") == b"200 result=1"  # what came after the block stays for the next read


async def test_a_520_usage_reply_split_anywhere_leaves_the_session_in_sync() -> None:
    raw = (CAPTURES / "04-agent-hangs-up-first" / "agi.from-asterisk.raw").read_bytes()
    start = raw.index(b"520-")
    usage = raw[start : raw.index(b"520 End of proper usage.\n") + len(b"520 End of proper usage.\n")]
    data = usage + b"200 result=1\n"
    for cut in range(1, len(data)):
        conn, _, _ = _conn()
        session = AgiSession(conn, Environment({}))
        feeder = asyncio.create_task(_later(conn, data[:cut], data[cut:]))
        with pytest.raises(AgiCommandError) as e:
            await session.command('SET VARIABLE "A"')
        assert e.value.code == 520 and "Sets a variable to the current channel." in e.value.message
        assert (await session.command('SET VARIABLE "B" "1"')).result == "1"
        await feeder


async def test_eof_in_the_middle_of_a_line_is_a_hangup() -> None:
    conn, _, _ = _conn()
    session = AgiSession(conn, Environment({}))

    async def cut_short() -> None:
        await _later(conn, b"200 res")
        conn.eof_received()

    feeder = asyncio.create_task(cut_short())
    with pytest.raises(AgiHangup):
        await session.command('GET VARIABLE "X"')
    await feeder
    assert session.hung_up
    with pytest.raises(AgiHangup):  # and stays hung up, without touching the socket
        await session.command('GET VARIABLE "Y"')


async def test_eof_while_waiting_and_a_lost_connection_both_end_the_read() -> None:
    conn, _, closed = _conn()
    waiting = asyncio.create_task(conn.read_until(b"\n"))
    await asyncio.sleep(0)
    conn.connection_lost(ConnectionResetError("reset"))
    with pytest.raises(AgiHangup, match="reset"):
        await waiting
    assert closed == [conn]
    with pytest.raises(AgiHangup):  # nothing left to read
        await conn.read_until(b"\n")


async def test_a_line_longer_than_the_limit_is_a_protocol_error() -> None:
    conn, _, _ = _conn(limit=16)
    waiting = asyncio.create_task(conn.read_until(b"\n"))
    await asyncio.sleep(0)
    conn.data_received(b"x" * 17)
    with pytest.raises(AgiProtocolError):
        await waiting


async def test_nobody_reading_pauses_the_socket_until_the_buffer_is_read() -> None:
    conn, transport, _ = _conn(limit=16)
    conn.data_received(b"12345678\n" * 4)  # 36 bytes > 2 * limit, nobody waiting
    assert transport.paused
    while len(conn._buf) > 16:
        assert conn.take(b"\n") == b"12345678"
    assert not transport.paused


async def test_finish_half_closes_then_closes_when_asterisk_does() -> None:
    conn, transport, _ = _conn()
    conn.data_received(b"unread\n")
    conn.finish(5.0)
    assert transport.eof_written and not transport.closed
    conn.data_received(b"HANGUP\n")  # dropped: the session is over
    assert conn.take(b"\n") is None
    conn.eof_received()
    assert transport.closed


async def test_finish_closes_after_the_wait_if_asterisk_never_does() -> None:
    conn, transport, _ = _conn()
    conn.finish(0.01)
    await asyncio.sleep(0.05)
    assert transport.eof_written and transport.closed


async def test_finish_after_asterisk_closed_first_closes_at_once() -> None:
    conn, transport, _ = _conn()
    conn.eof_received()
    conn.finish(5.0)
    assert transport.closed and not transport.eof_written


async def test_writing_to_a_closed_connection_is_a_hangup() -> None:
    conn, transport, _ = _conn()
    session = AgiSession(conn, Environment({}))
    transport.close()
    with pytest.raises(AgiHangup):
        await session.command("ANSWER")
    assert session.hung_up and transport.written == []

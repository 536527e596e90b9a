"""The FastAGI server against a raw client that replays Asterisk 22's captured bytes."""

from __future__ import annotations

import asyncio

from cti.agi.protocol import AgiCommandError
from cti.agi.registry import Registry
from cti.agi.session import AgiSession
from cti.config import Settings
from tests.agi.conftest import make_ctx
from tests.agi.fake_asterisk import FakeChannel, env_lines, run_call
from tests.captures import CAPTURES


def _capture(scenario: str) -> tuple[list[str], list[str], list[list[str]]]:
    """(environment lines, our command lines, Asterisk's reply lines per command) of a capture."""
    base = CAPTURES / scenario
    from_ast = (base / "agi.from-asterisk.raw").read_bytes().decode()
    env, _, rest = from_ast.partition("\n\n")
    commands = (base / "agi.to-asterisk.raw").read_bytes().decode().rstrip("\n").split("\n")
    reply_lines = rest.rstrip("\n").split("\n")
    replies: list[list[str]] = []
    block: list[str] = []
    for line in reply_lines:
        block.append(line)
        if not line.startswith("520-") and not (block[0].startswith("520-") and not line.startswith("520 ")):
            replies.append(block)
            block = []
    return env.split("\n"), commands, replies


def _replayer(commands: list[str], results: list[object]) -> Registry:
    async def replay(session: AgiSession, _ctx: object) -> None:
        for c in commands:
            try:
                results.append(await session.command(c))
            except AgiCommandError as e:
                results.append(e)

    reg = Registry()
    reg.register("route", replay)
    return reg


async def _replay_capture(scenario: str, start_server) -> tuple[FakeChannel, list[object], object]:  # type: ignore[no-untyped-def]
    env, commands, replies = _capture(scenario)
    queue = list(replies)
    channel = FakeChannel(custom=lambda _argv: queue.pop(0))
    results: list[object] = []
    server = await start_server(make_ctx(), _replayer(commands, results))
    await run_call(server.port, channel, env)
    return channel, results, server


async def test_replaying_capture_04_sends_the_same_bytes_and_survives_510_and_520(start_server) -> None:  # type: ignore[no-untyped-def]
    channel, results, server = await _replay_capture("04-agent-hangs-up-first", start_server)
    sent = "".join(line + "\n" for line in channel.sent).encode()
    assert sent == (CAPTURES / "04-agent-hangs-up-first" / "agi.to-asterisk.raw").read_bytes()
    assert [getattr(r, "code", None) for r in results] == [200] * 6 + [510, 520, 200]
    assert results[-1].result == "1"  # type: ignore[attr-defined]  # in sync after the 520 block
    assert channel.got_eof  # the server half-closed, Asterisk wrote HANGUP
    assert server.stats.completed == 1 and server.stats.fallbacks == 0


async def test_replaying_capture_01_reads_utf8_values(start_server) -> None:  # type: ignore[no-untyped-def]
    _channel, results, _ = await _replay_capture("01-inbound-answered", start_server)
    assert results[1].data == "张三"  # type: ignore[attr-defined]
    assert results[-1].data == "138****5678|queue"  # type: ignore[attr-defined]


async def test_probes_and_half_headers_do_not_disturb_calls(start_server) -> None:  # type: ignore[no-untyped-def]
    reg = Registry()

    async def ok(session: AgiSession, _ctx: object) -> None:
        await session.set_variable("CTI_ROUTE", "queue")

    reg.register("route", ok)
    server = await start_server(make_ctx(), reg, header_timeout_s=0.3)
    # 1: connect and close; 2: half an agi_ block then close (panoramisk spins at 100% CPU here);
    # 3: an HTTP health check; 4: connect and say nothing (stalls until the header timeout)
    r, w = await asyncio.open_connection("127.0.0.1", server.port)
    w.close()
    r, w = await asyncio.open_connection("127.0.0.1", server.port)
    w.write(b"agi_network: yes\nagi_network_script: rou")
    await w.drain()
    w.close()
    r, w = await asyncio.open_connection("127.0.0.1", server.port)
    w.write(b"GET /health HTTP/1.0\r\n\r\n")
    await w.drain()
    assert await asyncio.wait_for(r.read(), 2) == b""  # closed without an answer
    w.close()
    r_stall, w_stall = await asyncio.open_connection("127.0.0.1", server.port)
    # a real call meanwhile is served normally
    channel = await asyncio.wait_for(run_call(server.port, FakeChannel()), 2)
    assert channel.vars["CTI_ROUTE"] == "queue"
    assert await asyncio.wait_for(r_stall.read(), 2) == b""
    w_stall.close()
    await asyncio.sleep(0.05)
    assert server.stats.probes == 4
    assert server.stats.sessions == 1 and server.stats.fallbacks == 0


async def test_caller_hangup_mid_session_is_clean(start_server) -> None:  # type: ignore[no-untyped-def]
    reached: list[str] = []
    reg = Registry()

    async def slow(session: AgiSession, _ctx: object) -> None:
        await session.get_variable("A")
        reached.append("after first")
        await session.get_variable("B")
        reached.append("after second")

    reg.register("route", slow)
    ctx = make_ctx()
    server = await start_server(ctx, reg)
    await run_call(server.port, FakeChannel(), hangup_after=1)
    await asyncio.sleep(0.05)
    assert reached == ["after first"]
    assert server.stats.hangups == 1 and server.stats.fallbacks == 0
    assert ctx.events.events == []  # type: ignore[attr-defined]


async def test_crashing_handler_leaves_the_call_in_the_default_queue_masked(start_server) -> None:  # type: ignore[no-untyped-def]
    reg = Registry()

    async def crash(session: AgiSession, _ctx: object) -> None:
        await session.get_variable("CTI_DNIS")
        raise RuntimeError("boom")

    reg.register("route", crash)
    ctx = make_ctx()
    server = await start_server(ctx, reg)
    channel = await run_call(server.port, FakeChannel())
    assert channel.vars["CTI_ROUTE"] == "queue"
    assert channel.vars["CTI_QUEUE"] == "sales"
    assert channel.vars["CALLERID(name)"] == "138****5678"
    assert channel.vars["CTI_MASKED"] == "138****5678"
    (ev,) = ctx.events.of_type("agi_fallback")  # type: ignore[attr-defined]
    assert ev.source == "agi" and ev.payload["reason"] == "error" and "boom" in ev.payload["detail"]
    assert ev.payload["number"] == "13812345678"  # the database keeps the real number
    assert ev.uniqueid == "1795430750.0"


async def test_timeout_with_a_reply_outstanding_stays_in_sync(start_server) -> None:  # type: ignore[no-untyped-def]
    """Asterisk answers GET VARIABLE late; the deadline fires while we wait for it. The fallback must
    read that late reply first, or every later reply would belong to the wrong command."""
    reg = Registry()

    async def waits(session: AgiSession, _ctx: object) -> None:
        await session.get_variable("SLOW")

    reg.register("route", waits)
    ctx = make_ctx(settings=Settings(agi={"port": 0, "session_timeout_s": 0.2}))
    server = await start_server(ctx, reg)

    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(("\n".join(env_lines()) + "\n\n").encode())
    assert (await reader.readline()) == b'GET VARIABLE "SLOW"\n'
    await asyncio.sleep(0.4)  # past the deadline
    writer.write(b"200 result=1 (late)\n")
    got = []
    while True:
        line = await asyncio.wait_for(reader.readline(), 2)
        if not line:
            break
        got.append(line.decode().rstrip("\n"))
        writer.write(b"200 result=1\n")
    writer.write(b"HANGUP\n")
    writer.close()
    assert got[-1] == 'SET VARIABLE "CTI_ROUTE" "queue"'
    assert 'SET VARIABLE "CTI_QUEUE" "sales"' in got
    assert ctx.events.of_type("agi_fallback")[0].payload["reason"] == "timeout"  # type: ignore[attr-defined]


async def test_unknown_script_goes_to_the_queue(start_server) -> None:  # type: ignore[no-untyped-def]
    ctx = make_ctx()
    server = await start_server(ctx, Registry())
    channel = await run_call(server.port, FakeChannel(), env_lines(agi_network_script="nosuch"))
    assert channel.vars["CTI_ROUTE"] == "queue"
    assert ctx.events.of_type("agi_fallback")[0].payload["reason"] == "unknown_script"  # type: ignore[attr-defined]


async def test_names_with_quotes_backslashes_and_chinese_round_trip(start_server) -> None:  # type: ignore[no-untyped-def]
    names = ['张"三"', "李\\四", 'a \\" b', "王 五\t六"]
    reg = Registry()

    async def setter(session: AgiSession, _ctx: object) -> None:
        for i, n in enumerate(names):
            await session.set_variable(f"N{i}", n)
        for i in range(len(names)):
            assert await session.get_variable(f"N{i}") == names[i]

    reg.register("route", setter)
    server = await start_server(make_ctx(), reg)
    channel = await run_call(server.port, FakeChannel())
    assert [channel.vars[f"N{i}"] for i in range(len(names))] == names
    assert server.stats.completed == 1


async def test_many_concurrent_sessions(start_server) -> None:  # type: ignore[no-untyped-def]
    reg = Registry()

    async def ok(session: AgiSession, _ctx: object) -> None:
        await session.set_variable("CTI_ROUTE", session.uniqueid)

    reg.register("route", ok)
    server = await start_server(make_ctx(), reg)
    chans = [FakeChannel() for _ in range(50)]
    await asyncio.gather(
        *(run_call(server.port, c, env_lines(agi_uniqueid=f"1.{i}")) for i, c in enumerate(chans))
    )
    assert [c.vars["CTI_ROUTE"] for c in chans] == [f"1.{i}" for i in range(50)]

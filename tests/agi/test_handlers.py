"""route / night / callback_offer against a real PostgreSQL, driven by the raw FastAGI client."""

from __future__ import annotations

import io
import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import pytest
import structlog

from cti.agi.context import AgiContext
from cti.clock import ManualClock
from cti.config import Settings
from cti.log import configure
from cti.routing.snapshot import Availability, StaticSnapshot
from tests.agi.conftest import DAY, NIGHT, make_ctx
from tests.agi.fake_asterisk import FakeChannel, env_lines, run_call

TZ = ZoneInfo("Asia/Shanghai")


async def _order(pool: asyncpg.Pool, owner: str, status: str = "new", **kw: object) -> int:
    cols = ", ".join(["customer_id", "owner_agent", "status", *kw])
    vals = ", ".join(f"${i}" for i in range(1, 4 + len(kw)))
    cust = await pool.fetchval("SELECT id FROM customers WHERE number = '13812345678'")
    return await pool.fetchval(
        f"INSERT INTO orders ({cols}) VALUES ({vals}) RETURNING id", cust, owner, status, *kw.values()
    )


def _recording_under(root: Path) -> Settings:
    return Settings(
        agi={"port": 0, "session_timeout_s": 2.0},
        recording={"path_pattern": f"{root}/%Y/%m/%d/{{linkedid}}.wav"},
    )


def _ctx(pool: asyncpg.Pool, now: datetime = DAY, **kw: object) -> AgiContext:
    return make_ctx(pool=pool, clock=ManualClock(now), **kw)


async def _call(start_server, ctx: AgiContext, channel: FakeChannel | None = None, **env: str) -> FakeChannel:  # type: ignore[no-untyped-def]
    server = await start_server(ctx)
    channel = channel or FakeChannel(vars={"CTI_DNIS": "4008001234", "CHANNEL(linkedid)": "1795430750.0"})
    await run_call(server.port, channel, env_lines(**env))
    return channel


async def test_order_owner_first_masked_and_recorded(start_server, pool) -> None:  # type: ignore[no-untyped-def]
    await _order(pool, "agent1")
    ctx = _ctx(pool)
    ch = await _call(start_server, ctx)
    v = ch.vars
    assert v["CTI_ROUTE"] == "queue" and v["CTI_QUEUE"] == "sales"
    assert (v["CTI_PREFERRED"], v["CTI_PREFERRED_TIMEOUT"]) == ("agent1", "10")
    assert v["CALLERID(name)"] == v["CTI_MASKED"] == "138****5678"
    assert v["CTI_RECORD"] == "/var/spool/asterisk/monitor/2026/11/23/1795430750.0.wav"
    assert ch.argv[-1] == ["SET", "VARIABLE", "CTI_ROUTE", "queue"]  # the decision is the last thing set
    await ctx.recordings.flush()  # type: ignore[union-attr]  # rows are batched off the call's path
    row = await pool.fetchrow("SELECT * FROM recordings WHERE linkedid = '1795430750.0'")
    assert row["path"] == v["CTI_RECORD"] and row["number"] == "13812345678"  # DB keeps the real number
    (ev,) = ctx.events.of_type("route")  # type: ignore[attr-defined]
    assert ev.source == "agi" and ev.agent == "agent1" and ev.payload["preferred_reason"] == "order_owner"
    assert ev.payload["number"] == "13812345678" and ev.key == "agi:route:1795430750.0"


async def test_received_orders_mean_whoever_answers(start_server, pool) -> None:  # type: ignore[no-untyped-def]
    await _order(pool, "agent1", "received")
    ch = await _call(start_server, _ctx(pool))
    assert ch.vars["CTI_ROUTE"] == "queue" and ch.vars["CTI_PREFERRED"] == ""


async def test_add_on_order_goes_to_the_original_agent(start_server, pool) -> None:  # type: ignore[no-untyped-def]
    first = await _order(pool, "agent1", "received")
    await _order(pool, "agent3", "new", parent_order_id=first)
    ch = await _call(start_server, _ctx(pool))
    assert ch.vars["CTI_PREFERRED"] == "agent1"


async def test_dialing_an_agents_personal_did_rings_that_agent_first(start_server, pool) -> None:  # type: ignore[no-untyped-def]
    await _order(pool, "agent1")
    ch = FakeChannel(vars={"CTI_DNIS": "4008001002"})
    ch = await _call(start_server, _ctx(pool), ch)
    assert ch.vars["CTI_PREFERRED"] == "agent2"


async def test_ivr_choice_and_live_state(start_server, pool) -> None:  # type: ignore[no-untyped-def]
    snap = StaticSnapshot({"agent3": Availability.AVAILABLE, "agent1": Availability.BUSY})
    ctx = _ctx(pool, snapshot=lambda: snap)
    ch = FakeChannel(vars={"CTI_DNIS": "4008001234", "CTI_REQUESTED_AGENT": "agent3"})
    assert (await _call(start_server, ctx, ch)).vars["CTI_PREFERRED"] == "agent3"
    await _order(pool, "agent1")
    ch = await _call(start_server, _ctx(pool, snapshot=lambda: snap), FakeChannel(vars={}))
    assert ch.vars["CTI_PREFERRED"] == ""  # the owner is on another call: straight to the queue


@pytest.mark.parametrize(
    "callerid",
    ["unknown", "", "138abc45678", "1'; DROP TABLE orders; --", "13812345678\\", '"13812345678"'],
)
async def test_unusable_numbers_get_the_safe_default_and_a_masked_log(start_server, pool, callerid) -> None:  # type: ignore[no-untyped-def]
    out = io.StringIO()
    configure("json", "info", out)
    try:
        ctx = _ctx(pool)
        ch = await _call(start_server, ctx, agi_callerid=callerid)
    finally:
        structlog.reset_defaults()
    assert ch.vars["CTI_ROUTE"] == "queue" and ch.vars["CTI_QUEUE"] == "sales"
    assert ch.vars["CALLERID(name)"] == ch.vars["CTI_MASKED"] == "unknown"
    assert await pool.fetchval("SELECT count(*) FROM orders") == 0  # nothing odd happened to the tables
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert any(line["event"] == "caller number unusable; no customer lookup" for line in lines)
    assert "13812345678" not in out.getvalue()
    assert ctx.events.of_type("agi_fallback") == []  # handled, not crashed  # type: ignore[attr-defined]


async def test_missing_environment_and_variables(start_server, pool) -> None:  # type: ignore[no-untyped-def]
    ctx = _ctx(pool)
    server = await start_server(ctx)
    ch = await run_call(server.port, FakeChannel(), ["agi_network: yes", "agi_network_script: route"])
    assert ch.vars["CTI_ROUTE"] == "queue" and ch.vars["CTI_MASKED"] == "unknown"


async def test_night_call_leaves_name_and_confirmed_number(start_server, pool, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ctx = _ctx(pool, NIGHT, settings=_recording_under(tmp_path))
    ch = await _call(start_server, ctx)
    assert ch.vars["CTI_ROUTE"] == "night" and ch.vars["CTI_RECORD"] == ""
    await ctx.recordings.flush()  # type: ignore[union-attr]
    assert await pool.fetchval("SELECT count(*) FROM recordings") == 0

    server = await start_server(ctx)
    night = FakeChannel(vars={"CTI_DNIS": "4008001234", "CHANNEL(linkedid)": "1795430750.0"}, dtmf=["1"])
    await run_call(server.port, night, env_lines(agi_network_script="night"))
    words = [" ".join(a[:2]).upper() for a in night.argv]
    assert words[:2] == ["GET VARIABLE", "GET VARIABLE"] and "ANSWER" in words
    assert words.index("RECORD FILE") < words.index("GET DATA") < len(words) - 1 and night.hung_up_by_script
    row = await pool.fetchrow("SELECT * FROM callbacks")
    assert (row["number"], row["kind"], row["did"]) == ("13812345678", "night", "4008001234")
    assert row["due_by"] == datetime(2026, 11, 24, 8, 30, tzinfo=TZ)
    assert row["priority"] == ctx.policy.callbacks.night_priority
    # beside the dated recording directories, in the one that exists before any call (capture 15)
    assert row["caller_name_file"] == f"{tmp_path}/1795430750.0-name.wav"
    assert ctx.events.of_type("night_callback")[0].payload["callback_id"] == row["id"]  # type: ignore[attr-defined]


async def test_daytime_caller_the_queue_cannot_take_hears_no_night_message(
    start_server, pool, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """JOINEMPTY by day (capture 19: phones not yet qualified) falls through [cti-queue] to the night
    script: the caller is told all agents are busy, not that we are closed, and holds an ordinary
    callback, not a night one due the next morning."""
    ctx = _ctx(pool, DAY, settings=_recording_under(tmp_path))
    server = await start_server(ctx)
    ch = FakeChannel(vars={"CTI_DNIS": "4008001234", "CHANNEL(linkedid)": "1795430750.0"}, dtmf=["1"])
    await run_call(server.port, ch, env_lines(agi_network_script="night"))
    played = [a[2] for a in ch.argv if " ".join(a[:2]).upper() in ("STREAM FILE", "GET DATA")]
    assert "cti/day-all-busy" in played and "cti/night-welcome" not in played
    row = await pool.fetchrow("SELECT * FROM callbacks")
    assert (row["number"], row["kind"], row["due_by"]) == ("13812345678", "abandon", None)


async def test_night_caller_keys_another_number_and_withheld_without_number(start_server, pool) -> None:  # type: ignore[no-untyped-def]
    ctx = _ctx(pool, NIGHT)
    server = await start_server(ctx)
    ch = FakeChannel(dtmf=["13900001111"])
    await run_call(server.port, ch, env_lines(agi_network_script="night"))
    assert await pool.fetchval("SELECT number FROM callbacks") == "13900001111"
    # withheld: asked to key a number; keys nothing three times -> no callback, the fact is kept
    ch = FakeChannel(dtmf=["", "12", ""])
    await run_call(server.port, ch, env_lines(agi_network_script="night", agi_callerid="anonymous"))
    assert await pool.fetchval("SELECT count(*) FROM callbacks") == 1
    assert len(ctx.events.of_type("night_no_number")) == 1  # type: ignore[attr-defined]
    assert ch.hung_up_by_script


async def test_callback_offer_accept_and_decline(start_server, pool) -> None:  # type: ignore[no-untyped-def]
    ctx = _ctx(pool)
    server = await start_server(ctx)
    ch = FakeChannel(vars={"CTI_ROUTE": "callback_offer"}, dtmf=["1"])
    await run_call(server.port, ch, env_lines(agi_network_script="callback_offer"))
    assert ch.vars["CTI_ROUTE"] == "hangup"
    assert await pool.fetchval("SELECT kind FROM callbacks WHERE number = '13812345678'") == "peak"
    ch = FakeChannel(vars={"CTI_ROUTE": "callback_offer"}, dtmf=["2"])
    await run_call(
        server.port, ch, env_lines(agi_network_script="callback_offer", agi_callerid="13900002222")
    )
    assert ch.vars["CTI_ROUTE"] == "queue"
    assert await pool.fetchval("SELECT count(*) FROM callbacks") == 1


async def test_peak_advisor_turns_route_into_callback_offer(start_server, pool) -> None:  # type: ignore[no-untyped-def]
    ctx = _ctx(pool, callback_advisor=lambda _snap, _now: True)
    ch = await _call(start_server, ctx)
    assert ch.vars["CTI_ROUTE"] == "callback_offer" and ch.vars["CTI_QUEUE"] == "sales"


async def test_database_down_still_routes_masked_without_the_owner(start_server, pool) -> None:  # type: ignore[no-untyped-def]
    await _order(pool, "agent1")
    ctx = _ctx(pool)
    await ctx.directory.refresh()
    await pool.close()
    ch = await _call(start_server, ctx, FakeChannel(vars={"CTI_DNIS": "4008001002"}))
    # the lookup failed, the decision did not: the DID's agent is still rung first, the number masked
    assert ch.vars["CTI_ROUTE"] == "queue" and ch.vars["CTI_MASKED"] == "138****5678"
    assert ch.vars["CTI_PREFERRED"] == "agent2"
    (ev,) = ctx.events.of_type("route")  # type: ignore[attr-defined]
    assert ev.payload["orders_seen"] == 0
    assert ctx.events.of_type("agi_fallback") == []  # type: ignore[attr-defined]


async def test_daytime_caller_the_queue_could_not_take_leaves_a_number(start_server, pool) -> None:  # type: ignore[no-untyped-def]
    ctx = _ctx(pool)  # 10:00: in service hours; the dialplan sends a caller here after Queue() gave up
    server = await start_server(ctx)
    await run_call(server.port, FakeChannel(dtmf=["1"]), env_lines(agi_network_script="night"))
    row = await pool.fetchrow("SELECT kind, due_by, priority FROM callbacks")
    assert (row["kind"], row["due_by"], row["priority"]) == ("abandon", None, 0)


# -- capture 15: prompts missing, RECORD FILE into a directory that does not exist -------------------
NIGHT_PROMPTS = {
    "cti/night-welcome", "cti/say-your-name", "cti/your-number-is", "cti/press-1-or-enter-number",
    "cti/enter-number", "cti/invalid-number", "cti/sorry-no-number", "cti/thanks-we-call-back",
}  # fmt: skip


async def test_night_caller_without_prompts_still_leaves_a_number(start_server, pool, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Capture 15, caller A: every cti/ prompt missing (STREAM FILE and GET DATA answer -1 at once,
    the caller stays). Before: GET DATA -1 was taken for a hangup, the caller was cut off, no
    callback. Now the caller hears the beep and keys 1#, and the callback is stored."""
    ctx = _ctx(pool, NIGHT, settings=_recording_under(tmp_path))
    server = await start_server(ctx)
    ch = FakeChannel(
        vars={"CTI_DNIS": "4008001234", "CHANNEL(linkedid)": "1795923548.0"},
        missing=set(NIGHT_PROMPTS),
        dtmf=["1#"],
    )
    await run_call(server.port, ch, env_lines(agi_network_script="night"))
    words = [" ".join(a[:3]).upper() for a in ch.argv]
    assert any(w.startswith("GET DATA") for w in words)  # answered -1: not the end of the call
    assert ch.hung_up_by_script and ch.argv[-1] == ["HANGUP"]  # the script ran to its end
    row = await pool.fetchrow("SELECT number, kind, caller_name_file FROM callbacks")
    assert (row["number"], row["kind"]) == ("13812345678", "night")
    assert row["caller_name_file"] == f"{tmp_path}/1795923548.0-name.wav"


async def test_name_recording_that_failed_is_not_referenced(start_server, pool, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Capture 15, caller B: the recording pattern's directory does not exist -> RECORD FILE
    `200 result=-1 (writefile)`. The callback is stored without a name file, and the failure logged."""
    log = io.StringIO()
    configure("json", "info", log)
    ctx = _ctx(pool, NIGHT, settings=_recording_under(tmp_path / "no-such-dir"))
    server = await start_server(ctx)
    ch = FakeChannel(vars={"CTI_DNIS": "4008001234", "CHANNEL(linkedid)": "1795923563.1"}, dtmf=["1"])
    try:
        await run_call(server.port, ch, env_lines(agi_network_script="night", agi_callerid="13912345678"))
    finally:
        structlog.reset_defaults()
    row = await pool.fetchrow("SELECT number, caller_name_file FROM callbacks")
    assert row["number"] == "13912345678" and row["caller_name_file"] is None
    (ev,) = ctx.events.of_type("night_callback")  # type: ignore[attr-defined]
    assert ev.payload["name_file"] is None
    out = log.getvalue()
    assert "caller's name not recorded" in out and "writefile" in out and "13912345678" not in out


async def test_missing_prompt_is_logged_masked(start_server, pool, tmp_path) -> None:  # type: ignore[no-untyped-def]
    log = io.StringIO()
    configure("json", "info", log)
    ctx = _ctx(pool, NIGHT, settings=_recording_under(tmp_path))
    server = await start_server(ctx)
    ch = FakeChannel(missing={"cti/night-welcome"}, dtmf=["1"])
    try:
        await run_call(server.port, ch, env_lines(agi_network_script="night"))
    finally:
        structlog.reset_defaults()
    lines = [json.loads(x) for x in log.getvalue().splitlines() if x.startswith("{")]
    assert any(x["event"] == "prompt not played" and x["prompt"] == "cti/night-welcome" for x in lines)
    assert await pool.fetchval("SELECT count(*) FROM callbacks") == 1


# -- capture 16: a key pressed while the number is read back ----------------------------------------
async def test_callback_offer_takes_the_1_pressed_during_the_read_back(start_server, pool) -> None:  # type: ignore[no-untyped-def]
    """Capture 16: the caller keyed 1# while SAY DIGITS read the number. With escape digits "" the 1
    was lost and GET DATA saw only # (`200 result=`), the offer failed. Now SAY DIGITS stops at the
    1, and the # that follows ends the answer: callback accepted."""
    ctx = _ctx(pool)
    server = await start_server(ctx)
    ch = FakeChannel(vars={"CTI_ROUTE": "callback_offer"}, typed=["", "1#"])
    await run_call(server.port, ch, env_lines(agi_network_script="callback_offer"))
    say = next(a for a in ch.argv if a[:2] == ["SAY", "DIGITS"])
    assert "1" in say[3] and "#" in say[3]
    assert not any(a[:2] == ["GET", "DATA"] for a in ch.argv)  # the question is not played over the keys
    assert ch.vars["CTI_ROUTE"] == "hangup"
    assert await pool.fetchval("SELECT kind FROM callbacks WHERE number = '13812345678'") == "peak"


async def test_night_caller_keys_another_number_during_the_read_back(start_server, pool, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ctx = _ctx(pool, NIGHT, settings=_recording_under(tmp_path))
    server = await start_server(ctx)
    ch = FakeChannel(typed=["", "", "13900001111#"])  # welcome, say-your-name, then during "your number is"
    await run_call(server.port, ch, env_lines(agi_network_script="night"))
    assert await pool.fetchval("SELECT number FROM callbacks") == "13900001111"

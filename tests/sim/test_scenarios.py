"""Shipped scenarios load, run end to end in fast mode, and a seed fixes the event sequence."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from cti.sim import ScenarioError, Simulator, load_scenario
from cti.sim.scenario import parse_scenario

ROOT = Path(__file__).resolve().parents[2]


def dead_agi() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"agi://127.0.0.1:{port}"


async def run_once(seed: int) -> tuple[list[tuple[str, str]], dict[str, object]]:
    sc = load_scenario(ROOT / "scenarios/quiet_morning.toml")
    sim = Simulator(sc, speed="max", seed=seed, arrivals=True, agi_url=dead_agi(), record_events=True)
    sim.on_shift.append(lambda a, on: sim.login(a.id) if on else None)  # the test plays the CTI
    await sim.start()
    try:
        await sim.run_until_finished(timeout=60)
    finally:
        await sim.close()
    return [(e.name, e.channel) for e in sim.events], sim.summary()


async def test_same_seed_same_events_and_summary_adds_up() -> None:
    a, sa = await run_once(5)
    b, sb = await run_once(5)
    c, _ = await run_once(6)
    assert a == b and sa == sb
    assert a != c
    assert sa["offered"] >= 30
    assert sa["answered"] + sa["abandoned"] + sa["queue_timeouts"] <= sa["offered"]
    assert sa["answered"] > 0


def test_tv_evening_has_40_agents_and_3000_calls_in_the_ad_hour() -> None:
    sc = load_scenario(ROOT / "scenarios/tv_evening.toml")
    assert len(sc.agents) == 40 and sc.agents_table()[0]["did"] == "4008001001"
    ad = sc.ads[0]
    expected = sum(sc.arrival_rate(t) for t in range(int(ad.at_s), int(ad.at_s) + 3600))
    assert expected >= 3000


def test_bad_scenarios_are_rejected_with_the_field_named() -> None:
    with pytest.raises(ScenarioError, match=r"arrivals\.hourly"):
        parse_scenario({"arrivals": {"hourly": [1, 2]}})
    with pytest.raises(ScenarioError, match=r"agents\[0\].profile"):
        parse_scenario({"agents": [{"id": "agent1", "profile": "nope"}]})
    with pytest.raises(ScenarioError, match="strategy"):
        parse_scenario({"queues": [{"name": "sales", "strategy": "wrandom"}]})


async def test_scenario_agents_seed_the_agents_table(db) -> None:  # type: ignore[no-untyped-def]
    from cti.sim.scenario import seed_agents

    sc = load_scenario(ROOT / "scenarios/tv_evening.toml")
    assert await seed_agents(db, sc) == 40
    assert await seed_agents(db, sc) == 40  # idempotent
    rows = await db.fetch("SELECT id, interface, did, group_name FROM agents ORDER BY did")
    assert len(rows) == 40
    assert tuple(rows[0]) == ("agent1", "PJSIP/agent1", "4008001001", "evening")
    # provisioned as a real center's agents are: Asterisk's realtime rows exist for each phone
    assert await db.fetchval("SELECT count(*) FROM ps_endpoints e JOIN ps_auths a USING (id)") == 40


async def test_shifts_register_phones_and_members_join_only_on_queueadd_and_breaks() -> None:
    sc = parse_scenario(
        {
            "sim": {"start": "2026-11-23T08:50:00+08:00", "duration_s": 1800, "seed": 3},
            "arrivals": {"hourly": [0] * 8 + [240, 240] + [0] * 14},
            "shifts": {"morning": {"start": "09:00", "end": "12:00"}},
            "profiles": {
                "agent": {
                    "default": {
                        "answer_delay": 2,
                        "talk_time": 30,
                        "break_chance": 1.0,
                        "break_duration": 60,
                        "break_reason": "tea",
                    }
                },
                "caller": {"patience": 20},
            },
            "agents": [
                {"id": "agent1", "name": "Agent One", "shift": "morning"},
                {"id": "agent2", "name": "Agent Two", "shift": "morning"},
            ],
        }
    )
    sim = Simulator(sc, speed="max", arrivals=True, agi_url=dead_agi(), record_events=True)
    # the test plays the CTI: it logs each agent in (QueueAdd) when the phone comes up
    sim.on_shift.append(lambda a, on: sim.login(a.id) if on else None)
    await sim.start()
    try:
        await sim.run_until_finished(timeout=60)
    finally:
        await sim.close()
    shift_start = sc.start.timestamp() + 600
    reach = [e for e in sim.events if e.name == "PeerStatus" and dict(e.pairs)["PeerStatus"] == "Reachable"]
    # capture 19: a REGISTER under qualify_frequency = 30 is reachable only after the first OPTIONS
    assert len(reach) == 2 and all(shift_start <= e.ts < shift_start + 61 + 30 for e in reach)
    first_added = [dict(e.pairs)["Status"] for e in sim.events if e.name == "QueueMemberAdded"]
    assert first_added == ["5", "5"]
    added = [e for e in sim.events if e.name == "QueueMemberAdded"]
    assert len(added) == 2
    connects = [e for e in sim.events if e.name == "AgentConnect"]
    assert connects and min(e.ts for e in connects) >= shift_start
    breaks = [dict(e.pairs) for e in sim.events if e.name == "QueueMemberPause"]
    assert any(b["PausedReason"] == "tea" and b["Paused"] == "1" for b in breaks)
    assert any(b["Paused"] == "0" for b in breaks)
    early = [
        e
        for e in sim.events
        if e.name == "VarSet" and dict(e.pairs)["Variable"] == "QUEUESTATUS" and e.ts < shift_start
    ]
    assert early and all(dict(e.pairs)["Value"] == "JOINEMPTY" for e in early)  # nobody logged in yet


async def test_manual_clock_moves_with_advance() -> None:
    from datetime import UTC, datetime

    from cti.clock import ManualClock

    clock = ManualClock(datetime(2026, 11, 23, 12, 0, tzinfo=UTC))
    sim = Simulator(clock=clock, agi_url=dead_agi(), record_events=True)
    sim.add_agent("agent1", "Agent One")
    await sim.start()
    try:
        sim.login("agent1")
        sim.set_answer("agent1", "auto", delay=4.0)
        sim.place_call(caller="13800000001", did="4008001234", behaviour={"talk_time": 10})
        await sim.advance(30)
        assert clock.time() == sim.now == datetime(2026, 11, 23, 12, 0, 30, tzinfo=UTC).timestamp()
        connect = next(e for e in sim.events if e.name == "AgentConnect")
        assert connect.ts == clock.time() - 30 + 0.5 + 4.0  # Answer() 0.5 s, then 4 s of ringing
    finally:
        await sim.close()


@pytest.mark.parametrize("name", ["quiet_morning", "tv_evening"])
async def test_shipped_scenarios_start_with_an_empty_queue_and_nobody_joins_by_himself(name: str) -> None:
    """Asterisk (persistentmembers = no) has no member until someone sends QueueAdd (capture 17);
    the simulator must not be kinder: without a CTI every caller finds an empty queue."""
    sc = load_scenario(ROOT / f"scenarios/{name}.toml")
    sc.duration_s = 1800
    sim = Simulator(sc, speed="max", arrivals=True, agi_url=dead_agi(), record_events=True)
    await sim.start()
    try:
        assert sim.queue_members() == []
        await sim.run_until_finished(timeout=120)
    finally:
        await sim.close()
    assert not [e for e in sim.events if e.name == "QueueMemberAdded"]
    assert not [e for e in sim.events if e.name == "AgentConnect"]


def test_auto_login_is_refused_with_a_clear_message() -> None:
    with pytest.raises(ScenarioError, match="auto_login: removed"):
        parse_scenario({"sim": {"auto_login": True}})

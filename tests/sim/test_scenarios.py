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

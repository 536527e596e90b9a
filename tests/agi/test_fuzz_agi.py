"""Hostile FastAGI sessions against the real server (bench.fuzz_agi at a reduced size; the 100k run is
the bench): every call ends in a route the dialplan knows, no connection outlives its deadline, the
masked name never carries the full number, nothing is left in the server afterwards."""

from __future__ import annotations

from bench.fuzz_agi import KINDS, SAFE_ROUTES, run


async def test_hostile_sessions_end_safely_and_release_their_slots():
    out = await run(600, concurrency=60, seed=3)
    assert out["completed"] == 600 and not out["client_errors"], out["client_errors"]
    assert set(out["by_kind"]) == set(KINDS)  # every kind of hostility was tried
    assert out["calls"] > 100 and out["calls_unsafe_route"] == 0, out["unsafe_examples"]
    assert set(out["routes"]) <= SAFE_ROUTES  # at this load every decision arrives in time
    assert out["calls_left_to_the_dialplan_fallback"] == 0
    assert out["held_past_deadline"] == 0 and out["max_session_s"] < out["deadline_s"]
    assert out["masked_name_leaks_full_number"] == 0
    assert out["leftover_server_tasks"] == 0 and out["leftover_connections"] == 0
    # the slow kinds were cut by the header timeout, not served forever
    assert out["by_kind"]["slowloris"]["max_s"] < out["deadline_s"]
    assert out["by_kind"]["silent"]["max_s"] < out["deadline_s"]

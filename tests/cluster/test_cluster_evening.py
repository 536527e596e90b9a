"""Issue 18 end to end, reduced: the TV-ad evening (a quarter of the agents and calls, the ad five
minutes in) with two CTI subprocesses on one database, and the leader SIGKILLed three minutes into the ad.
Nobody is lost (the simulator's ledger), no agent is rung by two attempts at once, no Originate goes
out twice, and another process leads again within 5 s."""

from __future__ import annotations

import tempfile
from pathlib import Path

import asyncpg
import pytest

from cti.cluster.rehearsal import ClusterRehearsal
from cti.config import load_settings
from cti.policy import load_policy

pytestmark = pytest.mark.end_to_end  # ~2 min of two cores: run with the end-to-end tests

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "tv_evening.toml"


async def test_two_processes_leader_killed_in_the_ad_nobody_lost_nobody_rung_twice(db_url: str):
    settings = load_settings(env={"CTI_DATA_DIR": tempfile.mkdtemp(prefix="cti-cluster-e2e-")})
    reh = ClusterRehearsal(SCENARIO, db_url, settings, load_policy(), processes=2, size=0.2, after_ad_s=600,
                           speed=20.0, kill_leader_after_ad_s=180.0)  # fmt: skip
    s = await reh.run()
    # the first leader and its successor; a leader whose lock check stalls past its deadline on a
    # saturated machine steps down and is elected again (decision 0110), which must cost nothing below
    assert s["leader_killed"] and s["leader_elections"] >= 2, s
    assert s["failover_s"] is not None and s["failover_s"] < 5.0, s
    assert s["agents_double_booked"] == 0, s
    assert s["originates_sent_twice"] == 0 and s["numbers_with_two_open_callbacks"] == 0, s
    assert s["callbacks_created"] > 50, s  # the ad did overflow into callbacks: the dispatchers raced
    assert s["lost"] == 0 and s["callbacks_open"] == 0, s
    conn = await asyncpg.connect(db_url)
    try:
        # both processes dispatched callbacks (the claim was contended), and the survivor finished them
        workers = await conn.fetchval("SELECT count(DISTINCT claimed_by) FROM callback_attempts")
        assert workers == 2, workers
        assert await conn.fetchval("SELECT count(*) FROM agent_claims") == 0  # every claim released
    finally:
        await conn.close()

"""Issue 16 drills at CI size (cti.drill.runner SIZES["ci"]: a 15-minute slice around a smaller ad, at
30x, outages of 5 s): each fault is thrown at the whole CTI during the evening and what it survived is
measured from outside it. The full evening is `python -m bench.drills --json`.

Each drill runs on its own embedded PostgreSQL (restarting it must not touch the shared server)."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import pytest

from cti.db.embedded import EmbeddedPostgres
from cti.drill.runner import DRILLS, SIZES, Drill

SIZE = SIZES["ci"]


@pytest.fixture(scope="module")
def drill_pg() -> Any:
    # not under pytest's basetemp: every other pytest session started meanwhile (helpers, CI jobs)
    # resets /tmp/pytest-of-<user> to 0700, and `pg_ctl restart` (run as the server's own user) then
    # failed with "could not access directory ... Permission denied"
    with tempfile.TemporaryDirectory(prefix="cti-drill-pg-") as d:
        pg = EmbeddedPostgres(Path(d))
        url = pg.start()
        yield pg, url
        pg.stop()


async def run(name: str, drill_pg: Any) -> dict[str, Any]:
    pg, url = drill_pg
    # a drill that hangs is a finding, not a stalled CI job
    r = await asyncio.wait_for(DRILLS[name](Drill(name, SIZE, url, pg)), 300)
    assert r["lost_callers"] == 0, r
    assert r["originates_sent_twice"] == 0, r
    assert r["events_emitted"] > 5000, r  # the evening did run through the CTI
    assert r["callbacks_created"] > 20 and r["callbacks_open"] == 0, r
    for f in r["faults"]:
        assert f["routing_s"] is not None and f["dispatch_s"] is not None, f  # both came back
    return r


async def test_postgres_restart_and_blackhole_lose_nothing(drill_pg):
    r = await run("postgres", drill_pg)
    assert r["lost_events"] == 0, r  # AMI stayed up: every frame is in the table or the spool
    assert r["spool_segments_left"] == 0, r  # and the spool was drained back


async def test_ami_cut_and_half_open_lose_nothing_that_arrived(drill_pg):
    r = await run("ami", drill_pg)
    assert r["lost_events_delivered"] == 0, r  # all the CTI got is stored
    assert r["lost_events_undelivered"] > 0, r  # the link did drop frames, or the drill tested nothing
    assert r["ami_logins"] == 3, r  # it noticed both faults and logged in again


async def test_sigkill_and_restart_lose_only_unread_frames(drill_pg):
    r = await run("sigkill", drill_pg)
    assert r["lost_events_undelivered"] == 0, r  # nothing was emitted to a dead process
    assert r["cti_seen_offered"] < r["offered"], r  # calls came and went while no CTI was up


async def test_spool_disk_full_while_postgres_away_loses_nothing(drill_pg):
    r = await run("spool_full", drill_pg)
    assert r["lost_events"] == 0, r
    assert r["spool_disk_used_max"] > 0, r

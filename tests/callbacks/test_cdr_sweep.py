"""Callers who came and went while no CTI watched are found in Asterisk's CDRs and called back once.
The rows are the ones cdr_pgsql really wrote for our dialplan (captures 11-20)."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta

from cti.callbacks.cdr_sweep import sweep_cdr
from cti.callbacks.missed import MissedCallWatcher
from cti.clock import ManualClock
from cti.policy import load_policy
from cti.sim.cdr import COLUMNS
from tests.captures import CAPTURES
from tests.fakes import ListSink

POLICY = load_policy()
T0 = datetime(2026, 11, 29, 3, 30, tzinfo=UTC)
INTS = {"duration", "billsec", "amaflags", "sequence"}


def capture_cdr_rows() -> list[tuple]:
    rows = []
    for path in sorted(CAPTURES.glob("*/cdr-pgsql.csv")):
        with path.open(encoding="utf-8") as f:
            for r in csv.DictReader(f):
                r["calldate"] = datetime.fromisoformat(r["calldate"].replace("+00", "+00:00"))
                # the captures predate the cti_did column (db/046): it is empty there
                rows.append(tuple(int(r[c]) if c in INTS else r.get(c, "") for c in COLUMNS))
    return rows


async def test_unanswered_inbound_rows_of_the_captures_become_callbacks_once(pool, db):
    """Abandons in the queue (14, 16, 20) and night callers (15, 19) are missed; answered calls (11,
    12, 13 with its NO ANSWER row for the preferred agent, 17) and our callback rows (16, 18, 19: src =
    DID, channel = the agent) are not."""
    await db.copy_records_to_table("cdr", records=capture_cdr_rows(), columns=COLUMNS)
    w = MissedCallWatcher(pool, policy=POLICY, clock=ManualClock(T0), events=ListSink())
    later = T0 + timedelta(hours=1)
    async with pool.acquire() as conn:
        assert await sweep_cdr(conn, w, since=T0, settled_before=later) == 6
        assert await sweep_cdr(conn, w, since=T0, settled_before=later) == 0
    decided = {r["linkedid"] for r in await db.fetch("SELECT linkedid FROM missed_calls")}
    assert decided == {
        "1795923519.0",  # 14 abandon while the CTI was down
        "1795923548.0", "1795923563.1",  # 15 night callers
        "1795923981.0",  # 16 abandon in peak
        "1795923277.0",  # 19 JOINEMPTY -> night
        "1795923377.0",  # 20 abandon after the AGI proxy closed
    }  # fmt: skip
    rows = await db.fetch("SELECT number, did, kind FROM callbacks")
    got = {(r["number"], r["did"], r["kind"]) for r in rows}
    # `dst` is `s` and these rows have no cti_did: the dispatcher presents its default DID
    assert got == {("13812345678", None, "abandon"), ("13912345678", None, "abandon")}


async def test_the_did_dialled_comes_from_the_cti_did_column(pool, db):
    """`[from-trunk]` sets CDR(cti_did)=${EXTEN}: the callback presents the DID the caller dialled
    (R-OUT-CID), on every row of the call (13: NO ANSWER then queue)."""
    rows = []
    for r in capture_cdr_rows():
        if r[COLUMNS.index("uniqueid")] in ("1795923519.0", "1795923377.0"):
            r = list(r)
            r[COLUMNS.index("cti_did")] = "4008005678"
            rows.append(tuple(r))
    await db.copy_records_to_table("cdr", records=rows, columns=COLUMNS)
    w = MissedCallWatcher(pool, policy=POLICY, clock=ManualClock(T0), events=ListSink())
    async with pool.acquire() as conn:
        assert await sweep_cdr(conn, w, since=T0, settled_before=T0 + timedelta(hours=1)) == 2
    dids = {r["did"] for r in await db.fetch("SELECT did FROM callbacks")}
    assert dids == {"4008005678"}


async def test_a_renamed_trunk_is_configuration(pool, db):
    """Rows of a trunk endpoint named otherwise are found when the setting names it."""
    rows = [r for r in capture_cdr_rows() if r[COLUMNS.index("uniqueid")] == "1795923519.0"]
    row = list(rows[0])
    row[COLUMNS.index("channel")] = "PJSIP/carrier_a-0000002a"
    await db.copy_records_to_table("cdr", records=[tuple(row)], columns=COLUMNS)
    w = MissedCallWatcher(pool, policy=POLICY, clock=ManualClock(T0), events=ListSink())
    later = T0 + timedelta(hours=1)
    async with pool.acquire() as conn:
        assert await sweep_cdr(conn, w, since=T0, settled_before=later) == 0
        assert await sweep_cdr(conn, w, since=T0, settled_before=later, trunk_endpoints=["carrier_a"]) == 1


async def test_a_call_the_live_watcher_decided_is_not_decided_again(pool, db):
    rows = [r for r in capture_cdr_rows() if r[COLUMNS.index("uniqueid")] == "1795923519.0"]
    await db.copy_records_to_table("cdr", records=rows, columns=COLUMNS)
    await db.execute(
        "INSERT INTO missed_calls (linkedid, started_at, ended_at, reason) "
        "VALUES ('1795923519.0', $1, $1, 'callback')",
        T0,
    )
    w = MissedCallWatcher(pool, policy=POLICY, clock=ManualClock(T0), events=ListSink())
    async with pool.acquire() as conn:
        assert (
            await sweep_cdr(conn, w, since=T0 - timedelta(hours=1), settled_before=T0 + timedelta(hours=1))
            == 0
        )
    assert await db.fetchval("SELECT count(*) FROM callbacks") == 0

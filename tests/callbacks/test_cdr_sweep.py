"""Callers who came and went while no CTI watched are found in Asterisk's CDRs and called back once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cti.callbacks.cdr_sweep import sweep_cdr
from cti.callbacks.missed import MissedCallWatcher
from cti.clock import ManualClock
from cti.policy import load_policy
from cti.sim.cdr import COLUMNS, cdr_row
from tests.peak.fakes import ListSink

POLICY = load_policy()
T0 = datetime(2026, 11, 23, 10, 46, 36, tzinfo=UTC)


def rec(uid: str, number: str, *, agent: str = "", secs: float = 10) -> dict:
    return {
        "uniqueid": uid, "number": number, "did": "4008001234", "name": "张三", "started": T0.timestamp(),
        "ended": T0.timestamp() + secs, "channel": "PJSIP/trunk-00000000", "agent_channel": agent,
    }  # fmt: skip


async def test_unanswered_cdrs_become_callbacks_once(pool, db):
    rows = [
        cdr_row(rec("1795430750.0", "13812345678", agent="PJSIP/agent1-00000001")),  # answered by a person
        cdr_row(rec("1795430798.2", "13987654321")),  # ANSWERED by the IVR only: abandoned (capture 03)
        cdr_row(rec("cti-cb-7-1", "13600001111")),  # our own callback originate
    ]
    # capture 02/03: a ring-no-answer leg is NO ANSWER with the agent as dstchannel, then abandon
    rna = list(cdr_row(rec("1795430796.0", "13700002222", agent="PJSIP/agent1-00000001")))
    rna[COLUMNS.index("disposition")] = "NO ANSWER"
    rows.append(tuple(rna))
    await db.copy_records_to_table("cdr", records=rows, columns=COLUMNS)
    w = MissedCallWatcher(pool, policy=POLICY, clock=ManualClock(T0), events=ListSink())
    later = T0 + timedelta(minutes=5)
    async with pool.acquire() as conn:
        assert await sweep_cdr(conn, w, since=T0 - timedelta(hours=1), settled_before=later) == 2
        assert await sweep_cdr(conn, w, since=T0 - timedelta(hours=1), settled_before=later) == 0
    got = {
        r["number"]: (r["did"], r["kind"]) for r in await db.fetch("SELECT number, did, kind FROM callbacks")
    }
    assert got == {"13987654321": ("4008001234", "abandon"), "13700002222": ("4008001234", "abandon")}


async def test_a_call_the_live_watcher_decided_is_not_decided_again(pool, db):
    await db.copy_records_to_table(
        "cdr", records=[cdr_row(rec("1795430798.2", "13987654321"))], columns=COLUMNS
    )
    await db.execute(
        "INSERT INTO missed_calls (linkedid, started_at, ended_at, reason) "
        "VALUES ('1795430798.2', $1, $1, 'callback')",
        T0,
    )
    w = MissedCallWatcher(pool, policy=POLICY, clock=ManualClock(T0), events=ListSink())
    async with pool.acquire() as conn:
        assert (
            await sweep_cdr(conn, w, since=T0 - timedelta(hours=1), settled_before=T0 + timedelta(hours=1))
            == 0
        )
    assert await db.fetchval("SELECT count(*) FROM callbacks") == 0

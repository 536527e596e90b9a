"""Facts tables in PostgreSQL: rebuilt from the events log (`cti facts rebuild --since …`)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg
import orjson

from cti.facts.derive import CallFact, Deriver, Facts, Ring, RingCadence, RingNoAnswer, to_dt
from cti.policy import RingPolicy


def _num(v: float | None) -> Decimal | None:
    return None if v is None else Decimal(f"{v:.3f}")


async def ami_events(conn: asyncpg.Connection, since: datetime) -> AsyncIterator[tuple[datetime, str, Any]]:
    """The stored AMI events from `since` in arrival order (seq), streamed: (ts, type, payload).
    Call inside a transaction (a server-side cursor needs one)."""
    cur = conn.cursor(
        "SELECT ts, type, payload FROM events WHERE ts >= $1 AND source = 'ami' ORDER BY seq",
        since,
        prefetch=2000,
    )
    async for r in cur:
        p = r["payload"]
        yield r["ts"], r["type"], (orjson.loads(p) if isinstance(p, str) else p)


async def derive_since(conn: asyncpg.Connection, since: datetime, ring: RingCadence) -> Facts:
    """Stream the AMI events from `since` in arrival order (seq) through the deriver; memory holds
    the facts, not the events."""
    d = Deriver(ring)
    async with conn.transaction():
        async for ts, type_, payload in ami_events(conn, since):
            d.feed(ts.timestamp(), type_, payload)
    return d.facts


async def rebuild(
    conn: asyncpg.Connection, since: datetime, ring: RingPolicy, *, keep_ended: bool = False
) -> dict[str, int]:
    """Replace every fact derived from events at or after `since`. Calls that began before `since`
    keep their rows (their start is not in the window, so they cannot be derived from it).

    `keep_ended` (the live server's sweep): a call row that already has its end is kept, only
    missing or unfinished calls are written. The live writer derived those ended calls from the whole
    stream; a window starting after the agents logged in knows less (agents_logged_in), so
    replacing them would make them worse, not fresher."""
    facts = await derive_since(conn, since, ring)
    async with conn.transaction():
        await conn.execute(_LOCK)  # the live writer waits for this transaction (write_calls)
        if not keep_ended:
            await conn.execute(
                "DELETE FROM call_rings"
                " WHERE linkedid IN (SELECT linkedid FROM call_facts WHERE started_at >= $1)",
                since,
            )
            await conn.execute("DELETE FROM call_facts WHERE started_at >= $1", since)
            await conn.execute("DELETE FROM agent_ring_no_answer WHERE at >= $1", since)
        await conn.execute("DELETE FROM agent_sessions WHERE login_at >= $1", since)
        await conn.execute("DELETE FROM agent_pauses WHERE started_at >= $1", since)
        await _insert_calls(conn, facts.calls.values(), facts.rings, facts.ring_no_answer,
                            upsert=keep_ended, only_unended=keep_ended)  # fmt: skip
        await conn.executemany(
            """INSERT INTO agent_sessions (agent, queue, interface, login_at, logout_at)
               VALUES ($1,$2,$3,$4,$5) ON CONFLICT DO NOTHING""",
            [(s.agent, s.queue, s.interface, to_dt(s.login_at), to_dt(s.logout_at)) for s in facts.sessions],
        )
        await conn.executemany(
            """INSERT INTO agent_pauses (agent, queue, reason, started_at, ended_at, duration_s)
               VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT DO NOTHING""",
            [
                (p.agent, p.queue, p.reason, to_dt(p.started_at), to_dt(p.ended_at), _num(p.duration_s))
                for p in facts.pauses
            ],
        )
        await refresh_hourly(conn, ring, since, None)
    return {
        "calls": len(facts.calls),
        "rings": len(facts.rings),
        "sessions": len(facts.sessions),
        "pauses": len(facts.pauses),
        "ring_no_answer": len(facts.ring_no_answer),
    }


_CALL_COLUMNS = """linkedid, started_at, did, caller_num, caller_masked, queue, offered_at, answered_by,
    answered_at, time_to_answer_s, hold_s, rings_to_answer, talk_s, hung_up_first, abandoned, abandon_wait_s,
    abandon_position, agents_logged_in, recording_file, ended_at, gap, asterisk, outcome, left_queue_at"""
_UPSERT = ", ".join(
    f"{c.strip()} = EXCLUDED.{c.strip()}" for c in _CALL_COLUMNS.split(",") if c.strip() != "linkedid"
)


def _call_row(c: CallFact) -> tuple[object, ...]:
    return (
        c.linkedid, to_dt(c.started_at), c.did or None, c.caller_num or None, c.caller_masked or None,
        c.queue, to_dt(c.offered_at), c.answered_by, to_dt(c.answered_at), _num(c.time_to_answer_s),
        _num(c.hold_s), c.rings_to_answer, _num(c.talk_s), c.hung_up_first, c.abandoned,
        _num(c.abandon_wait_s), c.abandon_position, c.agents_logged_in, c.recording_file,
        to_dt(c.ended_at), c.gap, json.dumps(c.asterisk), c.outcome, to_dt(c.left_queue_at),
    )  # fmt: skip


async def _insert_calls(
    conn: asyncpg.Connection,
    calls: Iterable[CallFact],
    rings: Iterable[Ring],
    rnas: Iterable[RingNoAnswer],
    *,
    upsert: bool,
    only_unended: bool = False,
) -> None:
    """The rows of whole calls: call_facts, call_rings, agent_ring_no_answer. `upsert` replaces what a
    call already has (the incremental writer re-deriving a call); rebuild deleted its window first."""
    conflict = f"DO UPDATE SET {_UPSERT}" if upsert else "DO NOTHING"
    if upsert and only_unended:
        conflict += " WHERE call_facts.ended_at IS NULL"
    await conn.executemany(
        f"""INSERT INTO call_facts ({_CALL_COLUMNS})
            VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,
                    $22::jsonb,$23,$24)
            ON CONFLICT (linkedid) {conflict}""",
        [_call_row(c) for c in calls],
    )
    await conn.executemany(
        """INSERT INTO call_rings (linkedid, agent_uniqueid, agent, queue, started_at, ended_at, outcome)
           VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT DO NOTHING""",
        [(r.linkedid, r.agent_uniqueid, r.agent, r.queue, to_dt(r.started_at), to_dt(r.ended_at), r.outcome)
         for r in rings],
    )  # fmt: skip
    await conn.executemany(
        """INSERT INTO agent_ring_no_answer (linkedid, agent, queue, at, ring_ms)
           VALUES ($1,$2,$3,$4,$5) ON CONFLICT DO NOTHING""",
        [(r.linkedid, r.agent, r.queue, to_dt(r.at), r.ring_ms) for r in rnas],
    )


async def write_calls(
    conn: asyncpg.Connection,
    ring: RingPolicy,
    calls: list[CallFact],
    rings: list[Ring],
    rnas: list[RingNoAnswer],
) -> None:
    """Replace the facts of these (ended) calls and the hourly rollups they fall in, in ONE transaction:
    a reader sees a call and its hour's figures change together. Idempotent: the same call twice (a
    re-run, two processes listening to one PBX) leaves the same rows."""
    lids = [c.linkedid for c in calls]
    async with conn.transaction():
        # writers (two processes on one PBX, the sweep) take turns: no deadlock between their row locks
        await conn.execute(_LOCK)
        await conn.execute("DELETE FROM call_rings WHERE linkedid = ANY($1::text[])", lids)
        await conn.execute("DELETE FROM agent_ring_no_answer WHERE linkedid = ANY($1::text[])", lids)
        await _insert_calls(conn, calls, rings, rnas, upsert=True)
        hours = sorted({to_dt(c.started_at).replace(minute=0, second=0, microsecond=0) for c in calls})  # type: ignore[union-attr]
        await refresh_hourly(conn, ring, None, hours)


_LOCK = "SELECT pg_advisory_xact_lock(hashtext('facts_hourly'))"
_HOURLY = """
INSERT INTO facts_hourly (hour, queue, agent, did, calls, offered, answered, abandoned, timeout,
    abandon_wait_s, abandon_wait_n, in_sl, in_30, hold_s, hold_n, answered_talk_s, answered_talk_n, talk_s,
    sl_s, in_30_s)
SELECT date_trunc('hour', started_at, 'UTC'), coalesce(queue, '-'), coalesce(answered_by, '-'),
       coalesce(did, '-'), count(*), count(*) FILTER (WHERE outcome <> 'unqueued'),
       count(*) FILTER (WHERE outcome = 'answered'), count(*) FILTER (WHERE outcome = 'abandoned'),
       count(*) FILTER (WHERE outcome = 'timeout'),
       coalesce(sum(abandon_wait_s) FILTER (WHERE outcome = 'abandoned'), 0),
       count(abandon_wait_s) FILTER (WHERE outcome = 'abandoned'),
       count(*) FILTER (WHERE outcome = 'answered' AND hold_s < $2),
       count(*) FILTER (WHERE outcome = 'answered' AND time_to_answer_s <= $3),
       coalesce(sum(hold_s) FILTER (WHERE outcome = 'answered'), 0),
       count(hold_s) FILTER (WHERE outcome = 'answered'),
       coalesce(sum(talk_s) FILTER (WHERE outcome = 'answered'), 0),
       count(talk_s) FILTER (WHERE outcome = 'answered'),
       coalesce(sum(talk_s), 0), $2, $3
FROM call_facts WHERE {where}
GROUP BY 1, 2, 3, 4"""


def thresholds(ring: RingPolicy) -> tuple[float, float]:
    """(two rings in seconds, the 30-second rule) as the report figures define them."""
    return ring.max_rings * ring.cycle_s, ring.slow_response_s


async def refresh_hourly(
    conn: asyncpg.Connection, ring: RingPolicy, since: datetime | None, hours: list[datetime] | None
) -> None:
    """Recompute the rollup rows of the given UTC hours (or of every hour from `since`'s) from
    call_facts. Serialised by a transaction-scoped advisory lock: two writers recomputing one hour
    would otherwise both delete and then collide inserting."""
    await conn.execute(_LOCK)
    if hours is not None:
        await conn.execute("DELETE FROM facts_hourly WHERE hour = ANY($1::timestamptz[])", hours)
        # the range lets the started_at index find the hours; ANY keeps only those hours
        where = ("started_at >= ($1::timestamptz[])[1] AND started_at <"
                 " ($1::timestamptz[])[array_length($1::timestamptz[], 1)] + interval '1 hour'"
                 " AND date_trunc('hour', started_at, 'UTC') = ANY($1::timestamptz[])")  # fmt: skip
        await conn.execute(_HOURLY.format(where=where), hours, *thresholds(ring))
    else:
        first_hour = "date_trunc('hour', $1::timestamptz, 'UTC')"
        await conn.execute(f"DELETE FROM facts_hourly WHERE hour >= {first_hour}", since)
        where = f"started_at >= {first_hour}"
        await conn.execute(_HOURLY.format(where=where), since, *thresholds(ring))

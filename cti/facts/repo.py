"""Facts tables in PostgreSQL: rebuilt from the events log (`cti facts rebuild --since …`)."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

import asyncpg

from cti.facts.derive import Deriver, Facts, RingCadence, to_dt


def _num(v: float | None) -> Decimal | None:
    return None if v is None else Decimal(f"{v:.3f}")


async def derive_since(conn: asyncpg.Connection, since: datetime, ring: RingCadence) -> Facts:
    """Stream the AMI events from `since` in arrival order (seq) through the deriver; memory holds
    the facts, not the events."""
    d = Deriver(ring)
    async with conn.transaction():
        cur = conn.cursor(
            "SELECT ts, type, payload FROM events WHERE ts >= $1 AND source = 'ami' ORDER BY seq",
            since,
            prefetch=2000,
        )
        async for r in cur:
            p = r["payload"]
            d.feed(r["ts"].timestamp(), r["type"], json.loads(p) if isinstance(p, str) else p)
    return d.facts


async def rebuild(conn: asyncpg.Connection, since: datetime, ring: RingCadence) -> dict[str, int]:
    """Replace every fact derived from events at or after `since`. Calls that began before `since`
    keep their rows (their start is not in the window, so they cannot be derived from it)."""
    facts = await derive_since(conn, since, ring)
    async with conn.transaction():
        await conn.execute(
            "DELETE FROM call_rings"
            " WHERE linkedid IN (SELECT linkedid FROM call_facts WHERE started_at >= $1)",
            since,
        )
        await conn.execute("DELETE FROM call_facts WHERE started_at >= $1", since)
        await conn.execute("DELETE FROM agent_sessions WHERE login_at >= $1", since)
        await conn.execute("DELETE FROM agent_pauses WHERE started_at >= $1", since)
        await conn.execute("DELETE FROM agent_ring_no_answer WHERE at >= $1", since)
        calls = [
            (
                c.linkedid, to_dt(c.started_at), c.did or None, c.caller_num or None, c.caller_masked or None,
                c.queue, to_dt(c.offered_at), c.answered_by, to_dt(c.answered_at), _num(c.time_to_answer_s),
                _num(c.hold_s), c.rings_to_answer, _num(c.talk_s), c.hung_up_first, c.abandoned,
                _num(c.abandon_wait_s), c.abandon_position, c.agents_logged_in, c.recording_file,
                to_dt(c.ended_at), c.gap, json.dumps(c.asterisk), c.outcome, to_dt(c.left_queue_at),
            )
            for c in facts.calls.values()
        ]  # fmt: skip
        await conn.executemany(
            """INSERT INTO call_facts (linkedid, started_at, did, caller_num, caller_masked, queue,
               offered_at, answered_by, answered_at, time_to_answer_s, hold_s, rings_to_answer, talk_s,
               hung_up_first, abandoned, abandon_wait_s, abandon_position, agents_logged_in,
               recording_file, ended_at, gap, asterisk, outcome, left_queue_at)
               VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,
                       $22::jsonb,$23,$24)
               ON CONFLICT (linkedid) DO NOTHING""",
            calls,
        )
        await conn.executemany(
            """INSERT INTO call_rings (linkedid, agent_uniqueid, agent, queue, started_at, ended_at, outcome)
               VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT DO NOTHING""",
            [
                (
                    r.linkedid,
                    r.agent_uniqueid,
                    r.agent,
                    r.queue,
                    to_dt(r.started_at),
                    to_dt(r.ended_at),
                    r.outcome,
                )
                for r in facts.rings
            ],
        )
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
        await conn.executemany(
            """INSERT INTO agent_ring_no_answer (linkedid, agent, queue, at, ring_ms)
               VALUES ($1,$2,$3,$4,$5) ON CONFLICT DO NOTHING""",
            [(r.linkedid, r.agent, r.queue, to_dt(r.at), r.ring_ms) for r in facts.ring_no_answer],
        )
    return {
        "calls": len(facts.calls),
        "rings": len(facts.rings),
        "sessions": len(facts.sessions),
        "pauses": len(facts.pauses),
        "ring_no_answer": len(facts.ring_no_answer),
    }

"""R-CAPS / R-DNC: the one eligibility predicate, used twice — to list the next contacts for the
dialer, and again inside the claim transaction just before each Originate (decision 0800).

The predicate is one SQL text. `next_eligible` runs it for a page of contacts; `claim` runs it for
one contact under a per-number advisory lock (the same lock `cti.outbound.dnc` takes to add a
number), then inserts the dial row and the claim row in the same transaction: the claim's primary
key (number) and unique agent make two campaigns, two processes or two dials to one agent
impossible, whatever the interleaving."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
import orjson

from cti.cluster import claims
from cti.outbound.rules import RuleSet, quiet_until
from cti.routing.numbers import trunk_form

# $1 campaign id, $2 now, $3 site tz, $4 refusals that end a product, $5 same-product gap (days).
# The call windows are reduced first to two small arrays (segments with their own windows, segments
# open now), so the per-contact test is a lookup.
_WINDOWS = """
CROSS JOIN (SELECT coalesce(array_agg(DISTINCT w.segment), '{}') AS own,
                   coalesce(array_agg(DISTINCT w.segment) FILTER (
                       WHERE ($2 AT TIME ZONE $3)::time >= w.start_local
                         AND ($2 AT TIME ZONE $3)::time < w.end_local), '{}') AS open_now
            FROM campaign_windows w WHERE w.campaign_id = $1) win
"""

# THE predicate: every rule a contact must pass to be dialed now. Both queries below use this text.
_PREDICATE = """
  k.id = $1 AND k.status = 'running'
  AND cc.status = 'open' AND cc.next_attempt_at <= $2
  AND cc.attempts < k.max_attempts
  AND (c.quiet_until IS NULL OR c.quiet_until <= $2)
  AND (CASE WHEN c.segment = ANY (win.own) THEN c.segment ELSE 'default' END) = ANY (win.open_now)
  AND NOT EXISTS (SELECT 1 FROM dnc d WHERE d.number = c.number AND d.removed_at IS NULL)
  AND NOT EXISTS (SELECT 1 FROM contact_products p
                  WHERE p.number = c.number AND p.product = k.product
                    AND (p.refusals >= $4 OR p.last_dial_at > $2 - make_interval(days => $5)))
  AND NOT EXISTS (SELECT 1 FROM dial_claims x WHERE x.number = c.number)
"""

# The page walks the campaign's due index in order (the OFFSET 0 keeps the planner from turning it
# into "test every due contact, then sort") and stops at the LIMIT.
NEXT_ELIGIBLE_SQL = f"""
SELECT c.id AS contact_id, c.number, c.segment
FROM (SELECT * FROM campaign_contacts
      WHERE campaign_id = $1 AND status = 'open' AND next_attempt_at <= $2
      ORDER BY next_attempt_at, contact_id OFFSET 0) cc
JOIN campaigns k ON k.id = cc.campaign_id
JOIN contacts c ON c.id = cc.contact_id
{_WINDOWS}
WHERE {_PREDICATE}
ORDER BY cc.next_attempt_at, cc.contact_id
LIMIT $6
"""

_WALK_IN_ORDER = (
    "SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off; SET LOCAL enable_sort = off"
)

# $7 the cap horizon, $8 count answered calls only: the number's counted calls come back with the
# check, so the cap summary can be computed before the write (one round trip less)
_ONE_ELIGIBLE_SQL = f"""
SELECT c.id AS contact_id, c.number, c.segment, k.product, k.did, k.retry_backoff_s,
       ARRAY(SELECT h.dialed_at FROM dials h WHERE h.number = c.number AND h.dialed_at > $7
               AND ($8 = false OR h.answered_at IS NOT NULL)) AS counted
FROM campaign_contacts cc
JOIN campaigns k ON k.id = cc.campaign_id
JOIN contacts c ON c.id = cc.contact_id
{_WINDOWS}
WHERE cc.campaign_id = $1 AND cc.contact_id = $6 AND {_PREDICATE}
"""

# Housekeeping, not a check: contacts at the head of the due order that the predicate would skip
# get their next_attempt_at moved to when they could first pass (quiet_until, the end of the
# same-product gap), or a day on (DNC, product ended, no window now: looked at again then), so the
# eligibility scan does not re-read them on every tick. The predicate still decides every dial.
PARK_SQL = """
WITH head AS (
    SELECT cc.contact_id, c.number, c.quiet_until, k.product
    FROM campaign_contacts cc
    JOIN campaigns k ON k.id = cc.campaign_id
    JOIN contacts c ON c.id = cc.contact_id
    WHERE cc.campaign_id = $1 AND cc.status = 'open' AND cc.next_attempt_at <= $2
    ORDER BY cc.next_attempt_at, cc.contact_id
    LIMIT $5
), why AS (
    SELECT h.contact_id,
           EXISTS (SELECT 1 FROM dnc d WHERE d.number = h.number AND d.removed_at IS NULL)
             OR EXISTS (SELECT 1 FROM contact_products p WHERE p.number = h.number AND p.product = h.product
                        AND p.refusals >= $3) AS blocked,
           h.quiet_until,
           (SELECT p.last_dial_at + make_interval(days => $4) FROM contact_products p
             WHERE p.number = h.number AND p.product = h.product) AS gap_until
    FROM head h
)
UPDATE campaign_contacts cc
SET next_attempt_at = CASE WHEN why.blocked THEN $2::timestamptz + interval '1 day'
                           ELSE GREATEST(why.quiet_until, why.gap_until) END
FROM why
WHERE cc.campaign_id = $1 AND cc.contact_id = why.contact_id
  AND (why.blocked OR GREATEST(why.quiet_until, why.gap_until) > $2)
"""


@dataclass(frozen=True)
class Candidate:
    contact_id: int
    number: str
    segment: str


def _args(campaign_id: int, now: datetime, rules: RuleSet) -> tuple[object, ...]:
    return (campaign_id, now, rules.tz, rules.refusals_end_product, rules.product_gap_days)


async def next_eligible(
    conn: asyncpg.Connection, campaign_id: int, now: datetime, rules: RuleSet, limit: int = 1000
) -> list[Candidate]:
    async with conn.transaction():
        # The planner cannot know how many due contacts pass the predicate; it guesses few and
        # plans "test all, then sort" (82 ms at 20k contacts, seconds at 1M). Walking the due index
        # in order with nested loops stops after `limit` passes (bench/dialer.py measures it).
        await conn.execute(_WALK_IN_ORDER)
        rows = await conn.fetch(NEXT_ELIGIBLE_SQL, *_args(campaign_id, now, rules), limit)
    return [Candidate(r["contact_id"], r["number"], r["segment"]) for r in rows]


async def park_ineligible(
    conn: asyncpg.Connection, campaign_id: int, now: datetime, rules: RuleSet, batch: int = 50_000
) -> int:
    """Move skipped contacts off the head of the due order (PARK_SQL); returns how many moved."""
    total = 0
    while True:
        r = await conn.execute(
            PARK_SQL, campaign_id, now, rules.refusals_end_product, rules.product_gap_days, batch
        )
        n = int(r.split()[-1])
        total += n
        if n == 0:
            return total


async def rule_set_id(conn: asyncpg.Connection, rules: RuleSet) -> int:
    body = orjson.dumps(rules.body()).decode()
    row = await conn.fetchrow(
        """INSERT INTO outbound_rule_sets (hash, body) VALUES ($1, $2::jsonb)
           ON CONFLICT (hash) DO UPDATE SET hash = EXCLUDED.hash RETURNING id""",
        rules.hash(),
        body,
    )
    return int(row["id"])


def number_lock_key(number: str) -> str:
    """Text hashed by pg_advisory_xact_lock(hashtext(...)): the claim and a DNC add take the same."""
    return f"outbound-number:{number}"


@dataclass(frozen=True)
class Claim:
    dial_id: int
    number: str
    did: str
    channel_id: str
    agent: str | None


async def claim(
    conn: asyncpg.Connection,
    *,
    campaign_id: int,
    contact_id: int,
    now: datetime,
    rules: RuleSet,
    rule_set: int,
    process: str,
    agent: str | None = None,
) -> Claim | None:
    """Re-check one contact and claim it (and `agent`, if given) for a dial, atomically. None: not
    eligible any more, or another dial holds the number or the agent. The dial row is committed
    before the caller sends the Originate, so a dial is never sent unlogged.

    Four round trips without an agent (it was seven; each is a chance to be descheduled on a loaded
    machine, which is what the p99 measured, not the SQL: bench/dialer.py): BEGIN and the lock in one
    simple query; the re-check, returning the number's counted calls; one write statement (agent and
    number claims, dial, attempt, cap summary); COMMIT — or ROLLBACK when the number or the agent was
    taken (an agent claim may have gone in without its number claim)."""
    cid = int(contact_id)  # an integer in the SQL text: the simple query protocol takes no parameters
    if agent is None:
        # the lock first, in its own statement: the re-check after it takes a fresh snapshot, so it
        # sees a DNC entry committed by whoever held the lock before us
        await conn.execute(f"BEGIN; {_LOCK_SQL.format(contact_id=cid)}")
    else:
        await conn.execute("BEGIN")
    try:
        if agent is not None:  # a dead process's claim on the agent is dropped, ours kept alive
            await conn.execute(claims.RENEW_SQL, process, claims.LEASE_TTL_S)
            await conn.execute(claims.DROP_DEAD_SQL, agent)
            await conn.execute(_LOCK_SQL.format(contact_id=cid))
        horizon = now - max(rules.year, rules.month) - timedelta(days=1)
        answered_only = rules.count_at == "answer"
        row = await conn.fetchrow(
            _ONE_ELIGIBLE_SQL, *_args(campaign_id, now, rules), cid, horizon, answered_only
        )
        written = None
        if row is not None:
            number = row["number"]
            counted = list(row["counted"])
            if rules.count_at == "dial":
                counted.append(now)  # this dial, written by the same statement
            written = await conn.fetchrow(
                _WRITE_SQL,
                campaign_id,
                cid,
                number,
                row["product"],
                row["segment"],
                agent,
                row["did"],
                rule_set,
                process,
                now,
                float(row["retry_backoff_s"]),
                trunk_form(number),
                rules.count_at == "dial",
                quiet_until(counted, rules),
            )
        await conn.execute("ROLLBACK" if row is not None and written is None else "COMMIT")
    except BaseException:
        if conn.is_in_transaction():
            await conn.execute("ROLLBACK")
        raise
    if row is None or written is None:
        return None  # not eligible, or the number or the agent is held by another dial
    return Claim(written["id"], row["number"], written["did"], written["channel_id"], agent)


# number_lock_key(number), computed in SQL: the same lock text cti.outbound.dnc takes
_LOCK_SQL = """SELECT pg_advisory_xact_lock(hashtext('outbound-number:' || number))
               FROM contacts WHERE id = {contact_id}"""

# The agent claim, then the number claim (primary key on the number, unique agent); the dial row and
# the campaign's attempt count only if both went in. One statement: one round trip inside the lock.
# An agent claim whose number claim failed is rolled back by the caller. When calls count at dial
# ($13) the cap summary is written too ($14 = rules.quiet_until of the number's counted calls,
# this one included).
_WRITE_SQL = """
WITH s AS (
    SELECT nextval('dials_id_seq') AS id,
           coalesce((SELECT cb.did FROM callbacks cb WHERE cb.number IN ($3, $12) AND cb.did IS NOT NULL
                     ORDER BY cb.last_call_at DESC LIMIT 1), $7) AS did   -- R-OUT-CID
), a AS (   -- the agent claim shared with callbacks and the desk (cti.cluster.claims)
    INSERT INTO agent_claims (agent, kind, ref, process)
    SELECT $6, 'outbound', 'cti-ob-' || s.id, $9 FROM s WHERE $6::text IS NOT NULL
    ON CONFLICT DO NOTHING RETURNING agent
), c AS (
    INSERT INTO dial_claims (number, agent, dial_id, campaign_id, claimed_by, claimed_at)
    SELECT $3, $6, s.id, $1, $9, $10 FROM s WHERE $6::text IS NULL OR EXISTS (SELECT 1 FROM a)
    ON CONFLICT DO NOTHING RETURNING dial_id
), d AS (
    INSERT INTO dials (id, campaign_id, contact_id, number, product, segment, agent, did, rule_set_id,
                       claimed_by, channel_id, dialed_at)
    SELECT s.id, $1, $2, $3, $4, $5, $6, s.did, $8, $9, 'cti-ob-' || s.id, $10
    FROM s JOIN c ON c.dial_id = s.id
    RETURNING id, did, channel_id
), u AS (
    UPDATE campaign_contacts SET attempts = attempts + 1,
           next_attempt_at = $10::timestamptz + make_interval(secs => $11::double precision)
    WHERE campaign_id = $1 AND contact_id = $2 AND EXISTS (SELECT 1 FROM d)
), q AS (
    UPDATE contacts SET quiet_until = $14 WHERE number = $3 AND $13 AND EXISTS (SELECT 1 FROM d)
), p AS (
    INSERT INTO contact_products (number, product, last_dial_at)
    SELECT $3, $4, $10 FROM d WHERE $13
    ON CONFLICT (number, product) DO UPDATE
    SET last_dial_at = GREATEST(contact_products.last_dial_at, EXCLUDED.last_dial_at)
)
SELECT id, did, channel_id FROM d
"""


async def try_claim(conn: asyncpg.Connection, **kw: object) -> Claim | None:
    """`claim` (kept as the dialer's name for it)."""
    return await claim(conn, **kw)  # type: ignore[arg-type]


async def count_call(
    conn: asyncpg.Connection, number: str, product: str, at: datetime, rules: RuleSet
) -> None:
    """Bring the cap summary up to date after a counted call (at dial or at answer, per policy)."""
    answered_only = rules.count_at == "answer"
    horizon = at - max(rules.year, rules.month) - timedelta(days=1)
    times = [
        r["dialed_at"]
        for r in await conn.fetch(
            """SELECT dialed_at FROM dials WHERE number = $1 AND dialed_at > $2
                 AND ($3 = false OR answered_at IS NOT NULL)""",
            number,
            horizon,
            answered_only,
        )
    ]
    await conn.execute(
        """WITH q AS (UPDATE contacts SET quiet_until = $4 WHERE number = $1)
           INSERT INTO contact_products (number, product, last_dial_at) VALUES ($1, $2, $3)
           ON CONFLICT (number, product) DO UPDATE
           SET last_dial_at = GREATEST(contact_products.last_dial_at, EXCLUDED.last_dial_at)""",
        number,
        product,
        at,
        quiet_until(times, rules),
    )

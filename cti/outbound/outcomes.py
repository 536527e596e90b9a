"""Dial outcomes stored: the customer answered, the call ended (and how), and what the agent said
afterwards. Which AMI frames mean what is decided in cti.outbound.dialer."""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg

from cti.cluster import claims
from cti.outbound import dnc
from cti.outbound.eligibility import count_call
from cti.outbound.rules import RuleSet


async def record_answer(conn: asyncpg.Connection, dial_id: int, at: datetime, rules: RuleSet) -> None:
    async with conn.transaction():
        row = await conn.fetchrow(
            """UPDATE dials SET answered_at = $2 WHERE id = $1 AND answered_at IS NULL
               RETURNING number, product, dialed_at""",
            dial_id,
            at,
        )
        if row is not None and rules.count_at == "answer":
            await count_call(conn, row["number"], row["product"], row["dialed_at"], rules)


async def record_connect(conn: asyncpg.Connection, dial_id: int, at: datetime, agent: str | None) -> None:
    """An agent took the customer: stored at once, so the agent's panel may post the disposition
    while still talking (the route checks the call is theirs by `connected_agent`)."""
    await conn.execute(
        """UPDATE dials SET connected_at = $2, connected_agent = COALESCE($3, agent)
           WHERE id = $1 AND connected_at IS NULL""",
        dial_id,
        at,
        agent,
    )


async def record_end(
    conn: asyncpg.Connection,
    dial_id: int,
    outcome: str,
    at: datetime,
    *,
    connected_at: datetime | None = None,
    talk_s: int | None = None,
    connected_agent: str | None = None,
) -> None:
    """The call is over: store its outcome and release the number and the agent."""
    async with conn.transaction():
        await conn.execute(
            """UPDATE dials SET outcome = $2, ended_at = $3, connected_at = COALESCE($4, connected_at),
                      talk_s = COALESCE($5, talk_s),
                      connected_agent = COALESCE($6, connected_agent, agent) WHERE id = $1""",
            dial_id,
            outcome,
            at,
            connected_at,
            talk_s,
            connected_agent if connected_at is not None else None,
        )
        await conn.execute("DELETE FROM dial_claims WHERE dial_id = $1", dial_id)
        await claims.release(conn, f"cti-ob-{dial_id}")


DISPOSITIONS = ("sale", "refusal", "callback", "wrong_number", "never_call", "no_decision")


async def record_disposition(
    conn: asyncpg.Connection,
    dial_id: int,
    disposition: str,
    at: datetime,
    *,
    by: str,
    callback_at: datetime | None = None,
    hesitant_after: timedelta | None = None,
) -> None:
    """The agent's verdict. A refusal counts toward ending the product (3 by default); "never call"
    puts the number on the DNC list at once; a sale ends the contact in this campaign; a hesitant
    customer ("no_decision", 考虑/迟疑) is followed up `hesitant_after` later (R-FOLLOWUP, seed 001
    §34: 对表示考虑、迟疑的客户安排回访营销), keeping one attempt for it whatever the campaign's budget."""
    if disposition not in DISPOSITIONS:
        raise ValueError(f"unknown disposition {disposition!r} (one of: {', '.join(DISPOSITIONS)})")
    row = await conn.fetchrow(
        """UPDATE dials SET disposition = $2, disposition_by = $3, callback_at = $4 WHERE id = $1
           RETURNING number, product, campaign_id, contact_id""",
        dial_id,
        disposition,
        by,
        callback_at,
    )
    if row is None:
        raise LookupError(f"no dial {dial_id}")
    if disposition == "refusal":
        await conn.execute(
            """INSERT INTO contact_products (number, product, refusals) VALUES ($1, $2, 1)
               ON CONFLICT (number, product) DO UPDATE SET refusals = contact_products.refusals + 1""",
            row["number"],
            row["product"],
        )
    elif disposition == "never_call":
        await dnc.add(conn, row["number"], "refused_all", at=at, by=by, reason=f"dial {dial_id}")
    if disposition in ("sale", "wrong_number", "never_call"):
        await conn.execute(
            "UPDATE campaign_contacts SET status = 'done' WHERE campaign_id = $1 AND contact_id = $2",
            row["campaign_id"],
            row["contact_id"],
        )
    elif disposition == "no_decision" and hesitant_after is not None:
        await conn.execute(
            """UPDATE campaign_contacts cc SET next_attempt_at = $3,
                      attempts = LEAST(cc.attempts, k.max_attempts - 1)
               FROM campaigns k WHERE k.id = cc.campaign_id AND cc.campaign_id = $1 AND cc.contact_id = $2""",
            row["campaign_id"],
            row["contact_id"],
            at + hesitant_after,
        )
    elif disposition == "callback" and callback_at is not None:
        await conn.execute(
            "UPDATE campaign_contacts SET next_attempt_at = $3 WHERE campaign_id = $1 AND contact_id = $2",
            row["campaign_id"],
            row["contact_id"],
            callback_at,
        )


async def release_orphans(
    conn: asyncpg.Connection, process: str, now: datetime, older_than_s: float, grace_s: float = 180.0
) -> int:
    """Claims left by another process (crashed or restarted) whose dial never ended: closed as
    failed, so their numbers and agents are free again — once the claimer's lease (process_leases,
    renewed by every live CTI process) has lapsed and the claim is older than `grace_s` (ring time and
    a late OriginateResponse), or in any case after `older_than_s`. Dials of a process that still
    runs are not touched (its own Dialer ends them): a preview dial may come from any process."""
    rows = await conn.fetch(
        f"""SELECT x.dial_id FROM dial_claims x JOIN dials d ON d.id = x.dial_id
            WHERE x.claimed_by <> $1 AND d.ended_at IS NULL
              AND (x.claimed_at < $2::timestamptz - make_interval(secs => $3::double precision)
                   OR (x.claimed_at < $2::timestamptz - make_interval(secs => $4::double precision)
                       AND NOT {claims.lease_alive("x.claimed_by")}))""",
        process,
        now,
        older_than_s,
        grace_s,
    )
    for r in rows:
        await record_end(conn, r["dial_id"], "failed", now)
    return len(rows)

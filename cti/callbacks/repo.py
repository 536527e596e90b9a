"""Callback rows in PostgreSQL: nothing else writes `callbacks` or `callback_attempts`.

`create_or_join` is the one way a callback comes to exist. `PgCallbackRepo` is what the dispatcher
reads and writes (the `CallbackRepo` protocol; tests also run the dispatcher against an in-memory one,
tests/fakes.py). Several CTI processes may share the database: claiming uses `FOR UPDATE SKIP LOCKED`,
and resolving an attempt changes a row only while it is unresolved.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from cti.callbacks.outcomes import AGENT_SIDE, CUSTOMER_MISSES, NextStep, channel_id_for
from cti.cluster import claims
from cti.db.rows import from_row
from cti.routing.numbers import DIALABLE, compact_number

CallbackKind = Literal["peak", "night", "abandon", "manual"]


class InvalidCallbackNumber(ValueError):
    """The number cannot be called back (withheld, letters, too short); nothing was stored."""


@dataclass(frozen=True)
class CallbackRef:
    id: int
    created: bool  # False: the caller joined the callback already open for the number
    call_count: int


def normalise_number(raw: str | None) -> str:
    """Digits (and a leading +) only; raise InvalidCallbackNumber for anything uncallable."""
    if raw is None:
        raise InvalidCallbackNumber("no number (withheld)")
    s = compact_number(raw)
    if not DIALABLE.match(s):
        raise InvalidCallbackNumber("number is withheld or not a dialable number")
    return s


async def create_or_join(
    conn: Any,
    *,
    number: str,
    did: str | None,
    kind: CallbackKind,
    now: datetime,
    priority: int = 0,
    due_by: datetime | None = None,
    caller_name_file: str | None = None,
    source_linkedid: str | None = None,
    queue: str | None = None,
    preferred_agent: str | None = None,
) -> CallbackRef:
    """Open a callback for `number`, or join the one already open (count the attempt, keep the
    earliest first call time, the highest priority and the earliest due time)."""
    number = normalise_number(number)
    row = await conn.fetchrow(
        """
        INSERT INTO callbacks (number, did, kind, priority, first_call_at, last_call_at, due_by,
                               next_attempt_at, caller_name_file, source_linkedid, queue, preferred_agent)
        VALUES ($1, $2, $3, $4, $5, $5, $6, $5, $7, $8, $9, $10)
        ON CONFLICT (number) WHERE status IN ('open', 'dialing') DO UPDATE SET
            call_count    = callbacks.call_count + 1,
            first_call_at = LEAST(callbacks.first_call_at, EXCLUDED.first_call_at),
            last_call_at  = GREATEST(callbacks.last_call_at, EXCLUDED.last_call_at),
            priority      = GREATEST(callbacks.priority, EXCLUDED.priority),
            due_by        = LEAST(callbacks.due_by, EXCLUDED.due_by),
            did           = COALESCE(callbacks.did, EXCLUDED.did),
            caller_name_file = COALESCE(EXCLUDED.caller_name_file, callbacks.caller_name_file),
            updated_at    = now()
        RETURNING id, (xmax = 0) AS created, call_count
        """,
        number,
        did,
        kind,
        priority,
        now,
        due_by,
        caller_name_file,
        source_linkedid,
        queue,
        preferred_agent,
    )
    return CallbackRef(id=row["id"], created=row["created"], call_count=row["call_count"])


# ---- what the dispatcher reads and writes ---------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """A callback claimed for dialing, with the attempt row already recorded (committed)."""

    callback_id: int
    attempt: int
    channel_id: str
    number: str
    did: str  # presented to the customer: the callback's DID, else the default
    kind: str
    call_count: int
    first_call_at: datetime


@dataclass(frozen=True)
class Attempt:
    callback_id: int
    attempt: int
    channel_id: str
    agent: str
    interface: str
    state: str  # recorded, sent, agent_answered, resolved
    recorded_at: datetime
    action_id: str | None = None
    agent_dial_status: str | None = None
    number: str | None = None  # the customer's (only where the query joined callbacks)


@dataclass(frozen=True)
class Resolution:
    """An attempt just resolved, and what became of its callback (`step` None: the callback had
    already moved on, e.g. a later attempt owns it)."""

    attempt: Attempt
    first_call_at: datetime
    step: NextStep | None


# (customer misses, agent failures) so far, this attempt included -> the callback's next step
Planner = Callable[[int, int], NextStep]


@runtime_checkable
class CallbackRepo(Protocol):
    async def busy_agents(self) -> set[str]: ...

    async def claim_next(
        self, now: datetime, *, night_priority: int, repeat_caller_priority: int, worker_id: str,
        agent: str, interface: str, default_did: str,
    ) -> Claim | None: ...  # fmt: skip

    async def mark_sent(self, channel_id: str, action_id: str | None, now: datetime) -> None: ...

    async def attempt(self, channel_id: str) -> Attempt | None: ...

    async def mark_agent_answered(self, channel_id: str, now: datetime, reason: str | None) -> bool: ...

    async def set_agent_dial_status(self, channel_id: str, status: str | None) -> None: ...

    async def match_failure(
        self, action_id: str | None, interface: str | None, exten: str | None
    ) -> str | None: ...

    async def resolve(
        self, channel_id: str, outcome: str, *, now: datetime, dial_status: str | None,
        originate_reason: str | None, plan: Planner,
    ) -> Resolution | None: ...  # fmt: skip

    async def set_disposition(self, callback_id: int, outcome: str, *, by: str, now: datetime) -> bool: ...

    async def unresolved(
        self, stale_before: datetime, *, at_start: bool, worker_id: str
    ) -> list[Attempt]: ...

    async def stored_frames(
        self, att: Attempt, since: datetime, until: datetime
    ) -> list[Mapping[str, Any]]: ...


_CLAIM = """
WITH next AS (
    SELECT id FROM callbacks
    WHERE status = 'open' AND next_attempt_at <= $1
    ORDER BY GREATEST(priority,
                      CASE WHEN kind = 'night' OR due_by IS NOT NULL THEN $2 ELSE 0 END,
                      CASE WHEN call_count > 1 THEN $3 ELSE 0 END) DESC,
             first_call_at, id
    LIMIT 1
    FOR UPDATE SKIP LOCKED
)
UPDATE callbacks c
SET status = 'dialing', attempts = c.attempts + 1, claimed_by = $4, claimed_at = $1, updated_at = $1
FROM next WHERE c.id = next.id
RETURNING c.id, c.number, c.did, c.kind, c.priority, c.call_count, c.first_call_at, c.attempts
"""


def _attempt(r: Any) -> Attempt:
    return from_row(Attempt, r)


class PgCallbackRepo:
    """`CallbackRepo` on PostgreSQL (an asyncpg pool)."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    async def busy_agents(self) -> set[str]:
        """Agents with an unresolved callback attempt or any live claim (an outbound dial, a desk
        call, another process's attempt): a hint for choosing; the claim itself decides."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch("SELECT agent FROM callback_attempts WHERE state <> 'resolved'")
            return {r["agent"] for r in rows} | await claims.claimed_agents(conn)

    async def claim_next(
        self, now: datetime, *, night_priority: int, repeat_caller_priority: int, worker_id: str,
        agent: str, interface: str, default_did: str,
    ) -> Claim | None:  # fmt: skip
        """Claim the most urgent due callback, the agent and record its next attempt, in one
        transaction. Raises AgentTaken (and writes nothing) when a live claim holds the agent."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(_CLAIM, now, night_priority, repeat_caller_priority, worker_id)
            if row is None:
                return None
            attempt = row["attempts"]
            channel_id = channel_id_for(row["id"], attempt)
            if not await claims.claim_agent(conn, agent, kind="callback", ref=channel_id, process=worker_id):
                raise claims.AgentTaken(agent)  # rolls the callback claim back too
            did = row["did"] or default_did
            await conn.execute(
                """INSERT INTO callback_attempts (callback_id, attempt, channel_id, agent, interface, did,
                                                  claimed_by, recorded_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
                row["id"], attempt, channel_id, agent, interface, did, worker_id, now,
            )  # fmt: skip
        return Claim(row["id"], attempt, channel_id, row["number"], did, row["kind"], row["call_count"],
                     row["first_call_at"])  # fmt: skip

    async def mark_sent(self, channel_id: str, action_id: str | None, now: datetime) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(
                """UPDATE callback_attempts SET action_id = $2,
                       state = CASE WHEN state = 'recorded' THEN 'sent' ELSE state END,
                       sent_at = COALESCE(sent_at, $3)
                   WHERE channel_id = $1""",
                channel_id, action_id, now,
            )  # fmt: skip

    async def attempt(self, channel_id: str) -> Attempt | None:
        async with self.pool.acquire() as conn:
            r = await conn.fetchrow("SELECT * FROM callback_attempts WHERE channel_id = $1", channel_id)
        return None if r is None else _attempt(r)

    async def mark_agent_answered(self, channel_id: str, now: datetime, reason: str | None) -> bool:
        async with self.pool.acquire() as conn:
            changed = await conn.fetchval(
                """UPDATE callback_attempts SET state = 'agent_answered', agent_answered_at = $2,
                       originate_reason = $3
                   WHERE channel_id = $1 AND state IN ('recorded', 'sent') RETURNING true""",
                channel_id, now, reason,
            )  # fmt: skip
        return bool(changed)

    async def set_agent_dial_status(self, channel_id: str, status: str | None) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(
                "UPDATE callback_attempts SET agent_dial_status = $2 WHERE channel_id = $1",
                channel_id,
                status,
            )

    async def match_failure(
        self, action_id: str | None, interface: str | None, exten: str | None
    ) -> str | None:
        """The unresolved attempt a Failure OriginateResponse (no ChannelId) is about: by ActionID,
        else by agent interface and customer number when exactly one attempt fits."""
        async with self.pool.acquire() as conn:
            if action_id:
                cid = await conn.fetchval(
                    "SELECT channel_id FROM callback_attempts WHERE action_id = $1 AND state <> 'resolved'",
                    action_id,
                )
                if cid:
                    return str(cid)
            if interface and exten:
                rows = await conn.fetch(
                    """SELECT a.channel_id FROM callback_attempts a JOIN callbacks c ON c.id = a.callback_id
                       WHERE a.state IN ('recorded', 'sent') AND a.interface = $1 AND c.number = $2
                         AND (a.action_id IS NULL OR $3::text IS NULL OR a.action_id = $3)""",
                    interface, exten, action_id,
                )  # fmt: skip
                if len(rows) == 1:
                    return str(rows[0]["channel_id"])
        return None

    async def resolve(
        self, channel_id: str, outcome: str, *, now: datetime, dial_status: str | None,
        originate_reason: str | None, plan: Planner,
    ) -> Resolution | None:  # fmt: skip
        """Resolve the attempt (only the first call changes anything) and, when the callback is still
        this attempt's, move it on as `plan(misses, agent_failures)` says."""
        async with self.pool.acquire() as conn, conn.transaction():
            await claims.release(conn, channel_id)  # the agent is free for the next attempt
            att = await conn.fetchrow(
                """UPDATE callback_attempts SET state = 'resolved', outcome = $2, resolved_at = $3,
                       dial_status = COALESCE($4, dial_status),
                       originate_reason = COALESCE($5, originate_reason)
                   WHERE channel_id = $1 AND state <> 'resolved' RETURNING *""",
                channel_id, outcome, now, dial_status, originate_reason,
            )  # fmt: skip
            if att is None:
                return None
            cb = await conn.fetchrow("SELECT * FROM callbacks WHERE id = $1 FOR UPDATE", att["callback_id"])
            counts = await conn.fetchrow(
                """SELECT count(*) FILTER (WHERE outcome = ANY($2::text[])) AS misses,
                          count(*) FILTER (WHERE outcome = ANY($3::text[])) AS agent_failures
                   FROM callback_attempts WHERE callback_id = $1""",
                att["callback_id"], list(CUSTOMER_MISSES), list(AGENT_SIDE),
            )  # fmt: skip
            step = None
            if cb["status"] == "dialing" and cb["attempts"] == att["attempt"]:
                step = plan(counts["misses"], counts["agent_failures"])
                await conn.execute(
                    """UPDATE callbacks SET status = $2, outcome = $3,
                           next_attempt_at = COALESCE($4, next_attempt_at),
                           claimed_by = CASE WHEN $2 = 'open' THEN NULL ELSE claimed_by END,
                           updated_at = $5
                       WHERE id = $1""",
                    cb["id"], step.status, step.outcome, step.next_attempt_at, now,
                )  # fmt: skip
        return Resolution(_attempt(att), cb["first_call_at"], step)

    async def set_disposition(self, callback_id: int, outcome: str, *, by: str, now: datetime) -> bool:
        async with self.pool.acquire() as conn:
            ok = await conn.fetchval(
                """UPDATE callbacks SET outcome = $2, disposition_by = $3, updated_at = $4
                   WHERE id = $1 AND status = 'done'
                     AND outcome IN ('reached', 'done', 'wrong_number', 'declined')
                   RETURNING true""",
                callback_id, outcome, by, now,
            )  # fmt: skip
        return bool(ok)

    async def unresolved(self, stale_before: datetime, *, at_start: bool, worker_id: str) -> list[Attempt]:
        """Unresolved attempts recorded before `stale_before`, and (`at_start`) all of this worker's."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT a.*, c.number FROM callback_attempts a JOIN callbacks c ON c.id = a.callback_id
                   WHERE a.state <> 'resolved' AND (a.recorded_at <= $1 OR ($2 AND a.claimed_by = $3))
                   ORDER BY a.recorded_at""",
                stale_before, at_start, worker_id,
            )  # fmt: skip
        return [_attempt(r) for r in rows]

    async def stored_frames(self, att: Attempt, since: datetime, until: datetime) -> list[Mapping[str, Any]]:
        """The stored AMI events that can tell this attempt's outcome, in order."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT payload FROM events
                   WHERE ts >= $2 AND ts <= $3 AND source = 'ami'
                     AND type IN ('OriginateResponse', 'DialEnd', 'Hangup')
                     AND (uniqueid = $1 OR linkedid = $1 OR payload->>'Uniqueid' = $1
                          OR payload->>'DestUniqueid' = $1
                          OR ($4::text IS NOT NULL AND payload->>'ActionID' = $4)
                          OR (type = 'OriginateResponse' AND payload->>'Channel' = $5
                              AND payload->>'Exten' = $6))
                   ORDER BY ts, seq""",
                att.channel_id, since, until, att.action_id, att.interface, att.number,
            )  # fmt: skip
        out: list[Mapping[str, Any]] = []
        for r in rows:
            p = r["payload"]
            if not isinstance(p, Mapping):
                p = json.loads(p)
                p = p if isinstance(p, Mapping) else {}
            out.append(p)
        return out

"""The callback dispatcher: claims the next due callback, waits for a free agent and inbound-first,
records the attempt, and only then sends one agent-first Originate.

Never twice: the attempt row (with its ChannelId) is committed BEFORE the Originate is sent. If the
send fails in a way that leaves it unknown whether Asterisk got it (connection lost mid-send, AMI
reconnect, CTI killed), the attempt stays unresolved and is resolved from AMI events -- live, or from
the `events` table after a restart -- and, failing any trace, only after it could no longer be
running. It is never sent again; a retry is a new attempt with a new ChannelId.

Several CTI processes can share one database: claiming uses `FOR UPDATE SKIP LOCKED`, and resolving
an attempt is idempotent (the first process to see the outcome records it and emits the event).

Trunk down (capture 18, decision 0411): an attempt that ends `trunk_unavailable` costs the customer
nothing and pauses dispatch; a `trunk_alarm` event (state down) is raised and logged. After
`trunk_retry_s` (doubling up to `trunk_retry_max_s`) ONE attempt is let through as the probe; the first
attempt whose customer leg really got a channel clears the alarm (state up) and dispatch resumes.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Awaitable, Callable, Mapping, Set
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import structlog

from cti.awaitables import maybe_await
from cti.callbacks.originate import OriginateNotSent, OriginateRequest
from cti.callbacks.outcomes import (
    AGENT_SIDE,
    CUSTOMER_MISSES,
    DISPOSITIONS,
    Observation,
    channel_id_for,
    customer_outcome,
    hangup_outcome,
    inbound_first_allows,
    observe,
    originate_failure_outcome,
    plan_after,
)
from cti.clock import Clock
from cti.masking import mask_number
from cti.policy import Policy
from cti.store.events import Event
from cti.store.sink import EventSink, append_or_log

log = structlog.get_logger(__name__)

FreeAgent = Callable[[Set[str]], "str | Awaitable[str | None] | None"]
Originate = Callable[[OriginateRequest], Awaitable[Mapping[str, Any] | None]]
Count = Callable[[], "int | Awaitable[int]"]
ChannelAlive = Callable[[str], Awaitable[bool]]


@dataclass(frozen=True)
class DispatchResult:
    status: Literal[
        "dispatched",
        "no_agent",
        "inbound_first",
        "idle",
        "not_sent",
        "unknown",
        "rejected",
        "closed",
        "trunk_down",
    ]
    callback_id: int | None = None
    attempt: int | None = None
    agent: str | None = None
    channel_id: str | None = None


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


class Dispatcher:
    def __init__(
        self,
        pool: Any,
        *,
        policy: Policy,
        clock: Clock,
        events: EventSink,
        free_agent: FreeAgent,
        originate: Originate,
        waiting_inbound: Count,
        default_did: str,
        inbound_answered: Count | None = None,
        channel_alive: ChannelAlive | None = None,
        worker_id: str | None = None,
        context: str = "callback-did",
        interface_for: Callable[[str], str] = lambda agent: f"PJSIP/{agent}",
        not_sent_errors: tuple[type[BaseException], ...] = (OriginateNotSent,),
        poll_s: float = 1.0,
        resolve_after_s: float | None = None,
        max_agent_failures: int = 5,
        timezone: str = "Asia/Shanghai",
        extra_variables: Callable[[int, int, str], Mapping[str, str]] | None = None,
        trunk_retry_s: float = 60.0,
        trunk_retry_max_s: float = 600.0,
    ) -> None:
        self._pool = pool
        self._policy = policy
        self._clock = clock
        self._events = events
        self._free_agent = free_agent
        self._originate = originate
        self._waiting_inbound = waiting_inbound
        self._inbound_answered = inbound_answered
        self._channel_alive = channel_alive
        self._default_did = default_did
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self._context = context
        self._interface_for = interface_for
        self._not_sent_errors = not_sent_errors
        self._poll_s = poll_s
        ring, cb = policy.ring, policy.callbacks
        # An attempt with no trace after this long cannot still be ringing the agent or the customer.
        self._resolve_after_s = (
            resolve_after_s if resolve_after_s is not None else ring.agent_timeout_s + cb.customer_ring_s + 30
        )
        self._max_agent_failures = max_agent_failures
        self._tz = ZoneInfo(timezone)
        # (callback_id, attempt, customer number) -> more Originate variables, e.g. CTI_MASKED for the
        # agent's display and CTI_RECORD for MixMonitor; appended after CTI_DID and CTI_CALLBACK_ID
        self._extra_variables = extra_variables
        self._answered_mark: int | None = None
        self._early: dict[str, Observation] = {}  # Failure OriginateResponse seen before we knew its ActionID
        self._trunk_retry_first_s = trunk_retry_s
        self._trunk_retry_max_s = trunk_retry_max_s
        self._trunk_retry_s = trunk_retry_s  # the wait before the next probe (doubles while down)
        self._trunk_down_since: datetime | None = None
        self._trunk_probe_at: datetime | None = None  # no attempt before this while the trunk is down
        self._trunk_probe: str | None = None  # the ChannelId of the probe in flight

    @property
    def trunk_down(self) -> bool:
        return self._trunk_down_since is not None

    # ---- events -----------------------------------------------------------------------------
    async def _emit(self, type_: str, key: str, payload: dict[str, Any], agent: str | None = None) -> None:
        ev = Event(
            ts=self._clock.now(),
            source="cti",
            type=type_,
            payload=payload,
            key=f"{type_}:{key}",
            linkedid=payload.get("channel_id"),
            agent=agent,
        )
        # the database row is the truth; a lost event must not stop dispatch
        await append_or_log(self._events, ev, "callback_event_append_failed")

    # ---- dispatch ---------------------------------------------------------------------------
    async def _busy_agents(self, conn: Any) -> set[str]:
        rows = await conn.fetch("SELECT agent FROM callback_attempts WHERE state <> 'resolved'")
        return {r["agent"] for r in rows}

    async def dispatch_once(self) -> DispatchResult:
        """One dispatch decision. Sends at most one Originate."""
        if not self._policy.service_hours.is_open(self._clock.now().astimezone(self._tz).time()):
            return DispatchResult("closed")  # nobody is called back at night (R-NIGHT: due by 08:30)
        if self._trunk_down_since is not None and (
            self._trunk_probe is not None
            or (self._trunk_probe_at is not None and self._clock.now() < self._trunk_probe_at)
        ):
            return DispatchResult("trunk_down")
        async with self._pool.acquire() as conn:
            busy = await self._busy_agents(conn)
        agent = await maybe_await(self._free_agent(frozenset(busy)))
        if agent is None or agent in busy:
            return DispatchResult("no_agent")
        waiting = await maybe_await(self._waiting_inbound())
        answered = await maybe_await(self._inbound_answered()) if self._inbound_answered else None
        if answered is not None and (self._answered_mark is None or answered < self._answered_mark):
            self._answered_mark = answered  # first look, or live state restarted its count
        since = None if answered is None else answered - (self._answered_mark or 0)
        if not inbound_first_allows(
            waiting_inbound=waiting,
            inbound_answered_since_last_callback=since,
            ratio=self._policy.peak.inbound_to_callback_ratio,
        ):
            return DispatchResult("inbound_first", agent=agent)

        now = self._clock.now()
        cbp = self._policy.callbacks
        interface = self._interface_for(agent)
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                _CLAIM, now, cbp.night_priority, cbp.repeat_caller_priority, self.worker_id
            )
            if row is None:
                return DispatchResult("idle", agent=agent)
            attempt = row["attempts"]
            channel_id = channel_id_for(row["id"], attempt)
            did = row["did"] or self._default_did
            await conn.execute(
                """INSERT INTO callback_attempts (callback_id, attempt, channel_id, agent, interface, did,
                                                  claimed_by, recorded_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
                row["id"],
                attempt,
                channel_id,
                agent,
                interface,
                did,
                self.worker_id,
                now,
            )
        # committed: from here on this attempt exists even if we die before or while sending
        if answered is not None:
            self._answered_mark = answered
        wait_s = (now - row["first_call_at"]).total_seconds()
        await self._emit(
            "callback_attempt",
            channel_id,
            {
                "callback_id": row["id"],
                "attempt": attempt,
                "channel_id": channel_id,
                "agent": agent,
                "did": did,
                "number": mask_number(row["number"]),
                "kind": row["kind"],
                "call_count": row["call_count"],
                "first_call_at": row["first_call_at"].isoformat(),
                "waited_s": round(wait_s, 1),
            },
            agent=agent,
        )
        req = OriginateRequest(
            callback_id=row["id"],
            attempt=attempt,
            channel=interface,
            exten=row["number"],
            did=did,
            channel_id=channel_id,
            timeout_ms=int(self._policy.ring.agent_timeout_s * 1000),
            context=self._context,
            extra_variables=tuple(self._extra_variables(row["id"], attempt, row["number"]).items())
            if self._extra_variables
            else (),
            agent_display=f"回拨 {mask_number(row['number'])}",
        )
        if self._trunk_down_since is not None:
            self._trunk_probe = channel_id  # the one attempt that finds out whether the trunk is back
        return await self._send(req, agent)

    async def _send(self, req: OriginateRequest, agent: str) -> DispatchResult:
        cid = req.channel_id
        result = DispatchResult("dispatched", req.callback_id, req.attempt, agent, cid)
        try:
            reply = await self._originate(req)
        except self._not_sent_errors as e:
            log.warning("callback_originate_not_sent", channel_id=cid, error=str(e))
            await self._resolve(cid, "not_sent", {"error": str(e)})
            return DispatchResult("not_sent", req.callback_id, req.attempt, agent, cid)
        except Exception as e:
            # Sent or not: unknown. Never re-send; events (or the stale check) will tell.
            log.warning("callback_originate_unknown", channel_id=cid, error=str(e))
            await self._emit("callback_originate_unknown", cid, {"channel_id": cid, "error": str(e)}, agent)
            return DispatchResult("unknown", req.callback_id, req.attempt, agent, cid)
        reply = reply or {}
        action_id = reply.get("ActionID")
        response = reply.get("Response")
        async with self._pool.acquire() as conn:
            await conn.execute(
                """UPDATE callback_attempts SET action_id = $2,
                       state = CASE WHEN state = 'recorded' THEN 'sent' ELSE state END,
                       sent_at = COALESCE(sent_at, $3)
                   WHERE channel_id = $1""",
                cid,
                action_id,
                self._clock.now(),
            )
        await self._emit(
            "callback_originate_sent",
            cid,
            {
                "channel_id": cid,
                "action_id": action_id,
                "response": response,
                "message": reply.get("Message"),
            },
            agent,
        )
        if response == "Error":
            await self._resolve(cid, "originate_error", {"message": reply.get("Message")})
            return DispatchResult("rejected", req.callback_id, req.attempt, agent, cid)
        if action_id and action_id in self._early:
            await self.handle_ami_observation(self._early.pop(action_id))
        return result

    # ---- outcomes ---------------------------------------------------------------------------
    async def handle_ami(self, frame: Mapping[str, Any]) -> None:
        """Feed every AMI event here (OriginateResponse, DialEnd, Hangup are used)."""
        obs = observe(frame)
        if obs is not None:
            await self.handle_ami_observation(obs)

    async def handle_ami_observation(self, obs: Observation) -> None:
        cid = obs.channel_id
        if cid is None and obs.kind == "originate_failed":
            cid = await self._match_failure(obs)
            if cid is None:
                if obs.action_id:
                    self._early[obs.action_id] = obs
                    while len(self._early) > 1000:
                        self._early.pop(next(iter(self._early)))
                return
        if cid is None:
            return
        async with self._pool.acquire() as conn:
            att = await conn.fetchrow("SELECT * FROM callback_attempts WHERE channel_id = $1", cid)
        if att is None or att["state"] == "resolved":
            return
        if obs.kind == "agent_answered":
            async with self._pool.acquire() as conn:
                changed = await conn.fetchval(
                    """UPDATE callback_attempts SET state = 'agent_answered', agent_answered_at = $2,
                           originate_reason = $3
                       WHERE channel_id = $1 AND state IN ('recorded', 'sent') RETURNING true""",
                    cid,
                    self._clock.now(),
                    obs.reason,
                )
            if changed:
                await self._emit(
                    "callback_agent_answered",
                    cid,
                    {"channel_id": cid, "callback_id": att["callback_id"], "attempt": att["attempt"]},
                    att["agent"],
                )
        elif obs.kind == "agent_dial_status":
            async with self._pool.acquire() as conn:
                await conn.execute(
                    "UPDATE callback_attempts SET agent_dial_status = $2 WHERE channel_id = $1",
                    cid,
                    obs.dial_status,
                )
        elif obs.kind == "originate_failed":
            outcome = originate_failure_outcome(obs.reason, att["agent_dial_status"])
            await self._resolve(cid, outcome, {"originate_reason": obs.reason})
        elif obs.kind == "customer_result":
            await self._resolve(cid, customer_outcome(obs.dial_status), {"dial_status": obs.dial_status})
        elif obs.kind == "hangup" and att["state"] == "agent_answered":
            # the agent leg ended before any customer result: nothing reached the customer (Cause 3:
            # the trunk had no route, capture 18)
            cause = obs.detail.get("cause")
            await self._resolve(cid, hangup_outcome(cause), {"hangup_cause": cause})

    async def _match_failure(self, obs: Observation) -> str | None:
        """A Failure OriginateResponse has no ChannelId: match by ActionID, else by agent interface
        and customer number among unresolved attempts."""
        async with self._pool.acquire() as conn:
            if obs.action_id:
                cid = await conn.fetchval(
                    "SELECT channel_id FROM callback_attempts WHERE action_id = $1 AND state <> 'resolved'",
                    obs.action_id,
                )
                if cid:
                    return str(cid)
            if obs.interface and obs.exten:
                rows = await conn.fetch(
                    """SELECT a.channel_id FROM callback_attempts a JOIN callbacks c ON c.id = a.callback_id
                       WHERE a.state IN ('recorded', 'sent') AND a.interface = $1 AND c.number = $2
                         AND (a.action_id IS NULL OR $3::text IS NULL OR a.action_id = $3)""",
                    obs.interface,
                    obs.exten,
                    obs.action_id,
                )
                if len(rows) == 1:
                    return str(rows[0]["channel_id"])
        return None

    async def _resolve(self, channel_id: str, outcome: str, detail: dict[str, Any]) -> bool:
        """Record an attempt's outcome and move its callback on. Idempotent: only the first call
        for an attempt changes anything and emits events."""
        now = self._clock.now()
        cbp = self._policy.callbacks
        async with self._pool.acquire() as conn, conn.transaction():
            att = await conn.fetchrow(
                """UPDATE callback_attempts SET state = 'resolved', outcome = $2, resolved_at = $3,
                       dial_status = COALESCE($4, dial_status),
                       originate_reason = COALESCE($5, originate_reason)
                   WHERE channel_id = $1 AND state <> 'resolved' RETURNING *""",
                channel_id,
                outcome,
                now,
                detail.get("dial_status"),
                detail.get("originate_reason"),
            )
            if att is None:
                return False
            cb = await conn.fetchrow("SELECT * FROM callbacks WHERE id = $1 FOR UPDATE", att["callback_id"])
            counts = await conn.fetchrow(
                """SELECT count(*) FILTER (WHERE outcome = ANY($2::text[])) AS misses,
                          count(*) FILTER (WHERE outcome = ANY($3::text[])) AS agent_failures
                   FROM callback_attempts WHERE callback_id = $1""",
                att["callback_id"],
                list(CUSTOMER_MISSES),
                list(AGENT_SIDE),
            )
            step = None
            if cb["status"] == "dialing" and cb["attempts"] == att["attempt"]:
                step = plan_after(
                    outcome,
                    customer_misses=counts["misses"],
                    agent_failures=counts["agent_failures"],
                    now=now,
                    policy=cbp,
                    agent_retry_s=self._policy.ring.retry_s,
                    max_agent_failures=self._max_agent_failures,
                    trunk_retry_s=self._trunk_retry_s,
                )
                await conn.execute(
                    """UPDATE callbacks SET status = $2, outcome = $3,
                           next_attempt_at = COALESCE($4, next_attempt_at),
                           claimed_by = CASE WHEN $2 = 'open' THEN NULL ELSE claimed_by END,
                           updated_at = $5
                       WHERE id = $1""",
                    cb["id"],
                    step.status,
                    step.outcome,
                    step.next_attempt_at,
                    now,
                )
        base = {
            "callback_id": att["callback_id"],
            "attempt": att["attempt"],
            "channel_id": channel_id,
            "agent": att["agent"],
        }
        await self._emit(
            "callback_attempt_result", channel_id, {**base, "outcome": outcome, **detail}, att["agent"]
        )
        if step is not None:
            if step.status == "open":
                assert step.next_attempt_at is not None
                await self._emit(
                    "callback_retry",
                    channel_id,
                    {**base, "after": outcome, "next_attempt_at": step.next_attempt_at.isoformat()},
                )
            else:
                await self._emit(
                    "callback_closed",
                    f"{att['callback_id']}",
                    {
                        **base,
                        "status": step.status,
                        "outcome": step.outcome,
                        "attempts": att["attempt"],
                        "first_call_at": cb["first_call_at"].isoformat(),
                        "wait_s": round((now - cb["first_call_at"]).total_seconds(), 1),
                    },
                )
        log.info("callback_attempt_result", channel_id=channel_id, outcome=outcome)
        await self._trunk_after(channel_id, outcome, detail)
        return True

    async def _trunk_after(self, channel_id: str, outcome: str, detail: Mapping[str, Any]) -> None:
        """Follow the trunk's health from attempt outcomes: down on `trunk_unavailable`, up again when a
        customer leg got a channel (any other Dial status)."""
        if self._trunk_probe == channel_id:
            self._trunk_probe = None
        now = self._clock.now()
        if outcome == "trunk_unavailable":
            first = self._trunk_down_since is None
            if first:
                self._trunk_down_since = now
                self._trunk_retry_s = self._trunk_retry_first_s
            else:
                self._trunk_retry_s = min(self._trunk_retry_s * 2, self._trunk_retry_max_s)
            self._trunk_probe_at = now + timedelta(seconds=self._trunk_retry_s)
            assert self._trunk_down_since is not None
            payload = {"state": "down", "channel_id": channel_id, "since": self._trunk_down_since.isoformat(),
                       "probe_at": self._trunk_probe_at.isoformat(), "cause": detail.get("hangup_cause"),
                       "dial_status": detail.get("dial_status")}  # fmt: skip
            if first:
                log.error("trunk_unavailable", channel_id=channel_id, probe_in_s=self._trunk_retry_s)
                await self._emit("trunk_alarm", f"down:{now.isoformat()}", payload)
            else:
                log.warning("trunk_still_unavailable", channel_id=channel_id, probe_in_s=self._trunk_retry_s)
            return
        if self._trunk_down_since is not None and detail.get("dial_status") is not None:
            down_s = (now - self._trunk_down_since).total_seconds()
            self._trunk_down_since = self._trunk_probe_at = None
            self._trunk_retry_s = self._trunk_retry_first_s
            log.warning("trunk_available_again", channel_id=channel_id, down_s=round(down_s, 1))
            await self._emit(
                "trunk_alarm",
                f"up:{now.isoformat()}",
                {"state": "up", "channel_id": channel_id, "down_s": round(down_s, 1)},
            )

    async def set_disposition(self, callback_id: int, outcome: str, *, by: str) -> bool:
        """The agent's word after talking to the customer: done, wrong_number, declined (or reached)."""
        if outcome not in DISPOSITIONS:
            raise ValueError(f"disposition must be one of {sorted(DISPOSITIONS)}, got {outcome!r}")
        async with self._pool.acquire() as conn:
            ok = await conn.fetchval(
                """UPDATE callbacks SET outcome = $2, disposition_by = $3, updated_at = $4
                   WHERE id = $1 AND status = 'done'
                     AND outcome IN ('reached', 'done', 'wrong_number', 'declined')
                   RETURNING true""",
                callback_id,
                outcome,
                by,
                self._clock.now(),
            )
        if ok:
            await self._emit(
                "callback_disposition",
                f"{callback_id}:{outcome}",
                {"callback_id": callback_id, "outcome": outcome, "by": by},
                by,
            )
        return bool(ok)

    # ---- recovery ---------------------------------------------------------------------------
    async def recover(self, *, at_start: bool = True) -> int:
        """Resolve unresolved attempts from stored events; those with no trace that can no longer be
        live are closed as `not_sent` (the callback is retried as a NEW attempt). Returns how many
        attempts were resolved. Safe to call from every process.

        At start it looks at this worker's own attempts whatever their age (it was down: the live
        stream missed their events) and at everybody's stale ones; afterwards (`at_start=False`, the
        periodic sweep) only at stale ones, whose events the live stream should long have brought."""
        now = self._clock.now()
        stale_before = now - timedelta(seconds=self._resolve_after_s)
        async with self._pool.acquire() as conn:
            pending = await conn.fetch(
                """SELECT a.*, c.number FROM callback_attempts a JOIN callbacks c ON c.id = a.callback_id
                   WHERE a.state <> 'resolved' AND (a.recorded_at <= $1 OR ($2 AND a.claimed_by = $3))
                   ORDER BY a.recorded_at""",
                stale_before,
                at_start,
                self.worker_id,
            )
        resolved = 0
        for att in pending:
            cid = att["channel_id"]
            for frame in await self._stored_frames(att):
                await self.handle_ami(frame)
            async with self._pool.acquire() as conn:
                state = await conn.fetchval("SELECT state FROM callback_attempts WHERE channel_id = $1", cid)
            if state == "resolved":
                resolved += 1
                continue
            age = (now - att["recorded_at"]).total_seconds()
            if age < self._resolve_after_s:
                continue
            if self._channel_alive is not None:
                try:
                    if await self._channel_alive(cid):
                        continue
                except Exception as e:  # cannot ask Asterisk: do not guess, look again later
                    log.warning("callback_channel_check_failed", channel_id=cid, error=str(e))
                    continue
            # state 'agent_answered' without a customer result and no live channel: the agent leg
            # ended without reaching the customer (or its end was not seen): not counted as a miss.
            outcome = "agent_hangup" if state == "agent_answered" else "not_sent"
            if await self._resolve(cid, outcome, {"recovered": True, "age_s": round(age, 1)}):
                resolved += 1
        return resolved

    async def _stored_frames(self, att: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        lo: datetime = att["recorded_at"] - timedelta(minutes=1)
        hi: datetime = self._clock.now() + timedelta(minutes=1)
        async with self._pool.acquire() as conn:
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
                att["channel_id"],
                lo,
                hi,
                att["action_id"],
                att["interface"],
                att["number"],
            )
        out: list[Mapping[str, Any]] = []
        for r in rows:
            p = r["payload"]
            out.append(p if isinstance(p, Mapping) else _json(p))
        return out

    # ---- loop -------------------------------------------------------------------------------
    async def run(self) -> None:
        """Recover, then dispatch forever (cancel the task to stop)."""
        await self.recover()
        last_recover = self._clock.now()
        while True:
            try:
                r = await self.dispatch_once()
            except Exception:
                log.exception("callback_dispatch_failed")
                r = DispatchResult("idle")
            now = self._clock.now()
            if (now - last_recover).total_seconds() >= self._resolve_after_s / 2:
                try:
                    await self.recover(at_start=False)
                except Exception:
                    log.exception("callback_recover_failed")
                last_recover = now
            if r.status != "dispatched":
                await self._clock.sleep(self._poll_s)


def _json(text: str) -> Mapping[str, Any]:
    import json

    v = json.loads(text)
    return v if isinstance(v, Mapping) else {}

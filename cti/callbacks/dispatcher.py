"""The callback dispatcher: claims the next due callback, waits for a free agent and inbound-first,
records the attempt, and only then sends one agent-first Originate.

Never twice: the attempt row (with its ChannelId) is committed BEFORE the Originate is sent. If the
send fails in a way that leaves it unknown whether Asterisk got it (connection lost mid-send, AMI
reconnect, CTI killed), the attempt stays unresolved and is resolved from AMI events -- live, or from
the `events` table after a restart -- and, failing any trace, only after it could no longer be
running. It is never sent again; a retry is a new attempt with a new ChannelId.

Several CTI processes can share one database: claiming uses `FOR UPDATE SKIP LOCKED`, the agent is
claimed in the same transaction through `cti.cluster.claims` (one live claim per agent, shared with the
dialer and the desk: decision 0110), and resolving an attempt is idempotent (the first process to see
the outcome records it, releases the agent and emits the event).
All of that SQL is in `cti.callbacks.repo` (`CallbackRepo`); this module decides and acts.

Trunk down (capture 18, decision 0411): an attempt that ends `trunk_unavailable` costs the customer
nothing and pauses dispatch; a `trunk_alarm` event (state down) is raised and logged. After
`trunk_retry_s` (doubling up to `trunk_retry_max_s`) ONE attempt is let through as the probe; the first
attempt whose customer leg really got a channel clears the alarm (state up) and dispatch resumes.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Awaitable, Callable, Mapping, Set
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo

import structlog

from cti.awaitables import maybe_await
from cti.callbacks.originate import OriginateNotSent, OriginateRequest
from cti.callbacks.outcomes import (
    DISPOSITIONS,
    NextStep,
    Observation,
    customer_outcome,
    hangup_outcome,
    inbound_first_allows,
    observe,
    originate_failure_outcome,
    plan_after,
)
from cti.callbacks.repo import Attempt, CallbackRepo, PgCallbackRepo
from cti.clock import Clock
from cti.cluster.claims import AgentTaken
from cti.defaults import TIMEZONE
from cti.masking import mask_number
from cti.policy import Policy
from cti.store.events import Event
from cti.store.sink import EventSink, append_or_log

log = structlog.get_logger(__name__)

Originate = Callable[[OriginateRequest], Awaitable[Mapping[str, Any] | None]]
ChannelAlive = Callable[[str], Awaitable[bool]]


class LiveAgents(Protocol):
    """The dispatcher's one view of live state (cti.peak.live_adapter.QueueView is the real one).
    Each method may answer at once or return an awaitable."""

    def free_agent(self, busy: Set[str]) -> str | Awaitable[str | None] | None:
        """A free agent of the queue not in `busy` (agents with an unresolved attempt), or None."""

    def waiting_inbound(self) -> int | Awaitable[int]:
        """Inbound callers waiting in the queue now."""

    def inbound_answered(self) -> int | Awaitable[int | None] | None:
        """Inbound calls answered so far (a running count), or None when not known."""


@dataclass(frozen=True)
class DispatchTuning:
    """The dispatcher's knobs that are not policy: where the Originate goes and how often to look."""

    context: str = "callback-did"
    interface_for: Callable[[str], str] = lambda agent: f"PJSIP/{agent}"
    not_sent_errors: tuple[type[BaseException], ...] = field(default=(OriginateNotSent,))
    poll_s: float = 1.0
    # An attempt with no trace after this long cannot still be ringing (None: ring timeouts + 30 s).
    resolve_after_s: float | None = None
    max_agent_failures: int = 5
    trunk_retry_s: float = 60.0
    trunk_retry_max_s: float = 600.0


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


class Dispatcher:
    def __init__(
        self,
        repo: CallbackRepo | Any,  # an asyncpg pool is wrapped in PgCallbackRepo
        *,
        policy: Policy,
        clock: Clock,
        events: EventSink,
        live: LiveAgents,
        originate: Originate,
        default_did: str,
        channel_alive: ChannelAlive | None = None,
        worker_id: str | None = None,
        timezone: str = TIMEZONE,
        extra_variables: Callable[[int, int, str], Mapping[str, str]] | None = None,
        tuning: DispatchTuning = DispatchTuning(),
    ) -> None:
        self.repo: CallbackRepo = repo if isinstance(repo, CallbackRepo) else PgCallbackRepo(repo)
        self._policy = policy
        self._clock = clock
        self._events = events
        self._live = live
        self._originate = originate
        self._channel_alive = channel_alive
        self._default_did = default_did
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self._context = tuning.context
        self._interface_for = tuning.interface_for
        self._not_sent_errors = tuning.not_sent_errors
        self._poll_s = tuning.poll_s
        ring, cb = policy.ring, policy.callbacks
        # An attempt with no trace after this long cannot still be ringing the agent or the customer.
        self._resolve_after_s = (
            tuning.resolve_after_s
            if tuning.resolve_after_s is not None
            else ring.agent_timeout_s + cb.customer_ring_s + 30
        )
        self._max_agent_failures = tuning.max_agent_failures
        self._tz = ZoneInfo(timezone)
        # (callback_id, attempt, customer number) -> more Originate variables, e.g. CTI_MASKED for the
        # agent's display and CTI_RECORD for MixMonitor; appended after CTI_DID and CTI_CALLBACK_ID
        self._extra_variables = extra_variables
        self._answered_mark: int | None = None
        self._early: dict[str, Observation] = {}  # Failure OriginateResponse seen before we knew its ActionID
        self._trunk_retry_first_s = tuning.trunk_retry_s
        self._trunk_retry_max_s = tuning.trunk_retry_max_s
        self._trunk_retry_s = tuning.trunk_retry_s  # the wait before the next probe (doubles while down)
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
    async def dispatch_once(self) -> DispatchResult:
        """One dispatch decision. Sends at most one Originate."""
        if not self._policy.service_hours.is_open(self._clock.now().astimezone(self._tz).time()):
            return DispatchResult("closed")  # nobody is called back at night (R-NIGHT: due by 08:30)
        if self._trunk_down_since is not None and (
            self._trunk_probe is not None
            or (self._trunk_probe_at is not None and self._clock.now() < self._trunk_probe_at)
        ):
            return DispatchResult("trunk_down")
        busy = await self.repo.busy_agents()
        agent = await maybe_await(self._live.free_agent(frozenset(busy)))
        if agent is None or agent in busy:
            return DispatchResult("no_agent")
        waiting = await maybe_await(self._live.waiting_inbound())
        answered = await maybe_await(self._live.inbound_answered())
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
        try:
            claim = await self.repo.claim_next(
                now, night_priority=cbp.night_priority, repeat_caller_priority=cbp.repeat_caller_priority,
                worker_id=self.worker_id, agent=agent, interface=interface, default_did=self._default_did,
            )  # fmt: skip
        except AgentTaken:  # another process (or the dialer, or the desk) claimed the agent first
            return DispatchResult("no_agent", agent=agent)
        if claim is None:
            return DispatchResult("idle", agent=agent)
        channel_id, attempt, did = claim.channel_id, claim.attempt, claim.did
        # committed: from here on this attempt exists even if we die before or while sending
        if answered is not None:
            self._answered_mark = answered
        wait_s = (now - claim.first_call_at).total_seconds()
        await self._emit(
            "callback_attempt",
            channel_id,
            {
                "callback_id": claim.callback_id,
                "attempt": attempt,
                "channel_id": channel_id,
                "agent": agent,
                "did": did,
                "number": mask_number(claim.number),
                "kind": claim.kind,
                "call_count": claim.call_count,
                "first_call_at": claim.first_call_at.isoformat(),
                "waited_s": round(wait_s, 1),
            },
            agent=agent,
        )
        req = OriginateRequest(
            callback_id=claim.callback_id,
            attempt=attempt,
            channel=interface,
            exten=claim.number,
            did=did,
            channel_id=channel_id,
            timeout_ms=int(self._policy.ring.agent_timeout_s * 1000),
            context=self._context,
            extra_variables=tuple(self._extra_variables(claim.callback_id, attempt, claim.number).items())
            if self._extra_variables
            else (),
            agent_display=f"回拨 {mask_number(claim.number)}",
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
        await self.repo.mark_sent(cid, action_id, self._clock.now())
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
            cid = await self.repo.match_failure(obs.action_id, obs.interface, obs.exten)
            if cid is None:
                if obs.action_id:
                    self._early[obs.action_id] = obs
                    while len(self._early) > 1000:
                        self._early.pop(next(iter(self._early)))
                return
        if cid is None:
            return
        att = await self.repo.attempt(cid)
        if att is None or att.state == "resolved":
            return
        if obs.kind == "agent_answered":
            if await self.repo.mark_agent_answered(cid, self._clock.now(), obs.reason):
                await self._emit(
                    "callback_agent_answered",
                    cid,
                    {"channel_id": cid, "callback_id": att.callback_id, "attempt": att.attempt},
                    att.agent,
                )
        elif obs.kind == "agent_dial_status":
            await self.repo.set_agent_dial_status(cid, obs.dial_status)
        elif obs.kind == "originate_failed":
            outcome = originate_failure_outcome(obs.reason, att.agent_dial_status)
            await self._resolve(cid, outcome, {"originate_reason": obs.reason})
        elif obs.kind == "customer_result":
            await self._resolve(cid, customer_outcome(obs.dial_status), {"dial_status": obs.dial_status})
        elif obs.kind == "hangup" and att.state == "agent_answered":
            # the agent leg ended before any customer result: nothing reached the customer (Cause 3:
            # the trunk had no route, capture 18)
            cause = obs.detail.get("cause")
            await self._resolve(cid, hangup_outcome(cause), {"hangup_cause": cause})

    async def _resolve(self, channel_id: str, outcome: str, detail: dict[str, Any]) -> bool:
        """Record an attempt's outcome and move its callback on. Idempotent: only the first call
        for an attempt changes anything and emits events."""
        now = self._clock.now()
        cbp = self._policy.callbacks

        def plan(misses: int, agent_failures: int) -> NextStep:
            return plan_after(
                outcome,
                customer_misses=misses,
                agent_failures=agent_failures,
                now=now,
                policy=cbp,
                agent_retry_s=self._policy.ring.retry_s,
                max_agent_failures=self._max_agent_failures,
                trunk_retry_s=self._trunk_retry_s,
            )

        done = await self.repo.resolve(
            channel_id, outcome, now=now, dial_status=detail.get("dial_status"),
            originate_reason=detail.get("originate_reason"), plan=plan,
        )  # fmt: skip
        if done is None:
            return False
        att, step = done.attempt, done.step
        base = {"callback_id": att.callback_id, "attempt": att.attempt, "channel_id": channel_id,
                "agent": att.agent}  # fmt: skip
        await self._emit(
            "callback_attempt_result", channel_id, {**base, "outcome": outcome, **detail}, att.agent
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
                    f"{att.callback_id}",
                    {
                        **base,
                        "status": step.status,
                        "outcome": step.outcome,
                        "attempts": att.attempt,
                        "first_call_at": done.first_call_at.isoformat(),
                        "wait_s": round((now - done.first_call_at).total_seconds(), 1),
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
        ok = await self.repo.set_disposition(callback_id, outcome, by=by, now=self._clock.now())
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
        pending = await self.repo.unresolved(stale_before, at_start=at_start, worker_id=self.worker_id)
        resolved = 0
        for att in pending:
            cid = att.channel_id
            for frame in await self._stored_frames(att):
                await self.handle_ami(frame)
            now_att = await self.repo.attempt(cid)
            state = None if now_att is None else now_att.state
            if state == "resolved":
                resolved += 1
                continue
            age = (now - att.recorded_at).total_seconds()
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

    async def _stored_frames(self, att: Attempt) -> list[Mapping[str, Any]]:
        lo: datetime = att.recorded_at - timedelta(minutes=1)
        hi: datetime = self._clock.now() + timedelta(minutes=1)
        return await self.repo.stored_frames(att, lo, hi)

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

"""Test doubles shared by every test directory (one module, so a double is written once)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence, Set
from datetime import datetime
from typing import Any

from cti.callbacks.outcomes import AGENT_SIDE, CUSTOMER_MISSES, channel_id_for
from cti.callbacks.repo import Attempt, Claim, Planner, Resolution
from cti.cluster.claims import AgentTaken
from cti.store.sink import MemoryEvents

# Collects appended events (the EventStore interface: `async append(event)`); `of_type(name)`.
ListSink = MemoryEvents


class StaticLiveAgents:
    """The dispatcher's live view (`cti.callbacks.dispatcher.LiveAgents`) from plain functions: the
    first of `agents` not busy is free; `waiting()` callers wait; `answered()` (or None) were answered."""

    def __init__(
        self,
        agents: Sequence[str],
        *,
        waiting: Callable[[], int] = lambda: 0,
        answered: Callable[[], int | None] | None = None,
    ) -> None:
        self.agents = list(agents)
        self._waiting = waiting
        self._answered = answered

    def free_agent(self, busy: Set[str]) -> str | None:
        return next((a for a in self.agents if a not in busy), None)

    def waiting_inbound(self) -> int:
        return self._waiting()

    def inbound_answered(self) -> int | None:
        return None if self._answered is None else self._answered()


class MemoryCallbackRepo:
    """`cti.callbacks.repo.CallbackRepo` in memory: the dispatcher's flow without PostgreSQL. It keeps
    the rules the SQL keeps (claim order, one resolution per attempt, the callback moved on only by
    its latest attempt); `frames` plays the events table for recovery."""

    def __init__(self) -> None:
        self.callbacks: dict[int, dict[str, Any]] = {}
        self.attempts: dict[str, dict[str, Any]] = {}  # channel_id -> row
        self.frames: list[Mapping[str, Any]] = []
        self._ids = itertools.count(1)

    def add(
        self,
        number: str,
        *,
        at: datetime,
        did: str | None = None,
        kind: str = "peak",
        priority: int = 0,
        due_by: datetime | None = None,
        call_count: int = 1,
    ) -> int:
        cid = next(self._ids)
        self.callbacks[cid] = {
            "id": cid,
            "number": number,
            "did": did,
            "kind": kind,
            "priority": priority,
            "due_by": due_by,
            "call_count": call_count,
            "first_call_at": at,
            "next_attempt_at": at,
            "status": "open",
            "attempts": 0,
            "outcome": None,
            "claimed_by": None,
            "disposition_by": None,
        }
        return cid

    @staticmethod
    def _attempt(a: Mapping[str, Any], number: str | None = None) -> Attempt:
        return Attempt(
            a["callback_id"],
            a["attempt"],
            a["channel_id"],
            a["agent"],
            a["interface"],
            a["state"],
            a["recorded_at"],
            a["action_id"],
            a["agent_dial_status"],
            number,
        )

    async def busy_agents(self) -> set[str]:
        return {a["agent"] for a in self.attempts.values() if a["state"] != "resolved"}

    async def claim_next(
        self,
        now: datetime,
        *,
        night_priority: int,
        repeat_caller_priority: int,
        worker_id: str,
        agent: str,
        interface: str,
        default_did: str,
    ) -> Claim | None:
        def rank(c: Mapping[str, Any]) -> tuple[int, datetime, int]:
            urgent = night_priority if c["kind"] == "night" or c["due_by"] is not None else 0
            repeat = repeat_caller_priority if c["call_count"] > 1 else 0
            return (-max(c["priority"], urgent, repeat), c["first_call_at"], c["id"])

        due = [c for c in self.callbacks.values() if c["status"] == "open" and c["next_attempt_at"] <= now]
        if not due:
            return None
        if agent in await self.busy_agents():  # the agent claim (cti.cluster.claims): one live attempt
            raise AgentTaken(agent)
        c = min(due, key=rank)
        c.update(status="dialing", attempts=c["attempts"] + 1, claimed_by=worker_id)
        channel_id = channel_id_for(c["id"], c["attempts"])
        did = c["did"] or default_did
        self.attempts[channel_id] = {
            "callback_id": c["id"],
            "attempt": c["attempts"],
            "channel_id": channel_id,
            "agent": agent,
            "interface": interface,
            "did": did,
            "state": "recorded",
            "outcome": None,
            "action_id": None,
            "agent_dial_status": None,
            "dial_status": None,
            "originate_reason": None,
            "recorded_at": now,
            "claimed_by": worker_id,
            "sent_at": None,
        }
        return Claim(
            c["id"],
            c["attempts"],
            channel_id,
            c["number"],
            did,
            c["kind"],
            c["call_count"],
            c["first_call_at"],
        )

    async def mark_sent(self, channel_id: str, action_id: str | None, now: datetime) -> None:
        a = self.attempts.get(channel_id)
        if a is not None:
            a["action_id"] = action_id
            a["state"] = "sent" if a["state"] == "recorded" else a["state"]
            a["sent_at"] = a["sent_at"] or now

    async def attempt(self, channel_id: str) -> Attempt | None:
        a = self.attempts.get(channel_id)
        return None if a is None else self._attempt(a)

    async def mark_agent_answered(self, channel_id: str, now: datetime, reason: str | None) -> bool:
        a = self.attempts.get(channel_id)
        if a is None or a["state"] not in ("recorded", "sent"):
            return False
        a.update(state="agent_answered", originate_reason=reason)
        return True

    async def set_agent_dial_status(self, channel_id: str, status: str | None) -> None:
        if channel_id in self.attempts:
            self.attempts[channel_id]["agent_dial_status"] = status

    async def match_failure(
        self, action_id: str | None, interface: str | None, exten: str | None
    ) -> str | None:
        live = [a for a in self.attempts.values() if a["state"] != "resolved"]
        by_id = [a for a in live if action_id and a["action_id"] == action_id]
        if by_id:
            return str(by_id[0]["channel_id"])
        if interface and exten:
            fits = [
                a
                for a in live
                if a["state"] in ("recorded", "sent")
                and a["interface"] == interface
                and self.callbacks[a["callback_id"]]["number"] == exten
                and (a["action_id"] is None or action_id is None or a["action_id"] == action_id)
            ]
            if len(fits) == 1:
                return str(fits[0]["channel_id"])
        return None

    async def resolve(
        self,
        channel_id: str,
        outcome: str,
        *,
        now: datetime,
        dial_status: str | None,
        originate_reason: str | None,
        plan: Planner,
    ) -> Resolution | None:
        a = self.attempts.get(channel_id)
        if a is None or a["state"] == "resolved":
            return None
        a.update(
            state="resolved",
            outcome=outcome,
            dial_status=dial_status or a["dial_status"],
            originate_reason=originate_reason or a["originate_reason"],
        )
        c = self.callbacks[a["callback_id"]]
        mine = [x["outcome"] for x in self.attempts.values() if x["callback_id"] == c["id"]]
        step = None
        if c["status"] == "dialing" and c["attempts"] == a["attempt"]:
            step = plan(sum(o in CUSTOMER_MISSES for o in mine), sum(o in AGENT_SIDE for o in mine))
            c.update(status=step.status, outcome=step.outcome)
            if step.next_attempt_at is not None:
                c["next_attempt_at"] = step.next_attempt_at
            if step.status == "open":
                c["claimed_by"] = None
        return Resolution(self._attempt(a), c["first_call_at"], step)

    async def set_disposition(self, callback_id: int, outcome: str, *, by: str, now: datetime) -> bool:
        c = self.callbacks.get(callback_id)
        if (
            c is None
            or c["status"] != "done"
            or c["outcome"] not in ("reached", "done", "wrong_number", "declined")
        ):
            return False
        c.update(outcome=outcome, disposition_by=by)
        return True

    async def unresolved(self, stale_before: datetime, *, at_start: bool, worker_id: str) -> list[Attempt]:
        rows = [
            a
            for a in self.attempts.values()
            if a["state"] != "resolved"
            and (a["recorded_at"] <= stale_before or (at_start and a["claimed_by"] == worker_id))
        ]
        rows.sort(key=lambda a: a["recorded_at"])
        return [self._attempt(a, self.callbacks[a["callback_id"]]["number"]) for a in rows]

    async def stored_frames(self, att: Attempt, since: datetime, until: datetime) -> list[Mapping[str, Any]]:
        def about(f: Mapping[str, Any]) -> bool:
            cid = att.channel_id
            return f.get("Event") in ("OriginateResponse", "DialEnd", "Hangup") and (
                cid in (f.get("Uniqueid"), f.get("Linkedid"), f.get("DestUniqueid"))
                or (att.action_id is not None and f.get("ActionID") == att.action_id)
                or (
                    f.get("Event") == "OriginateResponse"
                    and f.get("Channel") == att.interface
                    and f.get("Exten") == att.number
                )
            )

        return [f for f in self.frames if about(f)]

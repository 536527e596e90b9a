"""Nobody who calls is lost: an inbound caller whose call ends without a person answering (hung up in
the IVR, abandoned in the queue, timed out) is given an `abandon` callback, or joins the one already
open for the number. In peak or not: SPEC R-PEAK's "every caller is either answered or holds a
callback row" is not a peak-only promise.

`missed_call_decision` is pure; `MissedCallWatcher` follows inbound caller channels on AMI
(Newchannel → AgentConnect / DialEnd ANSWER → Hangup) and applies it. A call that already got a
callback while it lasted (night capture, accepted callback offer) is left alone. The `missed_calls`
row (db/033) makes the decision once per call even when several CTI processes watch one Asterisk.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import structlog

from cti.ami.events import event_ts
from cti.callbacks.offer import callable_number, open_callback
from cti.clock import Clock
from cti.db.later import retry_later
from cti.masking import mask_number
from cti.policy import Policy
from cti.state.model import State
from cti.store.events import CONNECTION_ERRORS, Event
from cti.store.sink import EventSink, append_or_log

log = structlog.get_logger(__name__)

Reason = Literal["callback", "withheld", "too_short", "answered"]


@dataclass(slots=True)
class WatchedCall:
    uniqueid: str
    started: float  # epoch seconds
    number: str | None  # callable number, or None when withheld / not dialable
    did: str | None
    answered: bool = False
    queue: str | None = None


@dataclass(frozen=True)
class MissedDecision:
    create: bool
    reason: Reason
    waited_s: float


def is_inbound_caller(frame: Mapping[str, Any]) -> bool:
    """The first channel of a call that came in from outside: its own Linkedid, not a Local leg, not
    one of our Originates (their ChannelId, hence Linkedid, starts with cti-)."""
    uid, linked, channel = frame.get("Uniqueid"), frame.get("Linkedid"), str(frame.get("Channel") or "")
    return (
        bool(uid) and uid == linked and not channel.startswith("Local/") and not str(uid).startswith("cti-")
    )


def missed_call_decision(call: WatchedCall, ended: float, *, min_wait_s: float) -> MissedDecision:
    waited = max(0.0, ended - call.started)
    if call.answered:
        return MissedDecision(False, "answered", waited)
    if call.number is None:
        return MissedDecision(False, "withheld", waited)
    if waited < min_wait_s:
        return MissedDecision(False, "too_short", waited)
    return MissedDecision(True, "callback", waited)


# A callback this very call already got (night capture, accepted offer) was touched since it started.
_HELD = "SELECT id FROM callbacks WHERE number = $1 AND last_call_at >= $2 ORDER BY id DESC LIMIT 1"


_RECOVER = """
SELECT payload FROM events
WHERE ts >= $1 AND source = 'ami' AND uniqueid = linkedid
  AND type IN ('Newchannel', 'QueueCallerJoin', 'AgentConnect', 'DialEnd', 'Hangup')
ORDER BY seq"""


def _ts(frame: Mapping[str, Any], clock: Clock) -> float:
    t = event_ts(frame)
    return clock.time() if t is None else t


class MissedCallWatcher:
    def __init__(
        self, pool: Any, *, policy: Policy, clock: Clock, events: EventSink, max_tracked: int = 100_000
    ) -> None:
        self._pool = pool
        self.policy = policy
        self._clock = clock
        self._events = events
        self._max = max_tracked
        self.calls: dict[str, WatchedCall] = {}

    async def handle_ami(self, frame: Mapping[str, Any]) -> MissedDecision | None:
        ev = frame.get("Event")
        uid = frame.get("Uniqueid")
        if ev == "Newchannel":
            if is_inbound_caller(frame) and len(self.calls) < self._max:
                self.calls[str(uid)] = WatchedCall(
                    str(uid), _ts(frame, self._clock), callable_number(frame.get("CallerIDNum")),
                    str(frame.get("Exten") or "") or None,
                )  # fmt: skip
            return None
        call = self.calls.get(str(uid)) if uid else None
        if call is None:
            return None
        if ev == "AgentConnect" or (ev == "DialEnd" and frame.get("DialStatus") == "ANSWER"):
            call.answered = True
        elif ev == "QueueCallerJoin":
            call.queue = str(frame.get("Queue") or "") or None
        elif ev == "Hangup":
            del self.calls[call.uniqueid]
            ended = _ts(frame, self._clock)
            d = missed_call_decision(call, ended, min_wait_s=self.policy.peak.abandon_callback_after_s)
            if d.reason != "answered":
                await self.apply_or_retry(call, ended, d)
            return d
        return None

    async def recover(self, conn: Any, since: datetime) -> int:
        """At start-up: follow again the calls an earlier CTI process was following, from the event log
        (replayed through the same logic; calls it already decided are skipped by `missed_calls`).
        The first resync then decides those that ended while no process was watching."""
        rows = await conn.fetch(_RECOVER, since)
        for r in rows:
            p = r["payload"]
            await self.handle_ami(json.loads(p) if isinstance(p, str) else p)
        return len(rows)

    async def reconcile(self, state: State, now: float) -> int:
        """After a resync (AMI reconnect, CTI restart): calls we followed that are gone ended while we
        were blind, so decide them now (answered or not we cannot know for sure: a callback too many
        beats a caller lost); inbound calls we did not know are adopted from the snapshot.
        Returns how many calls were decided."""
        decided = 0
        for uid in [u for u in self.calls if u not in state.channels]:
            call = self.calls.pop(uid)
            d = missed_call_decision(call, now, min_wait_s=self.policy.peak.abandon_callback_after_s)
            if d.reason != "answered":
                await self.apply_or_retry(call, now, d)
                decided += 1
        for uid, ch in state.channels.items():
            if uid in self.calls or not is_inbound_caller(
                {"Uniqueid": uid, "Linkedid": ch.linkedid, "Channel": ch.name}
            ):
                continue
            known = state.calls.get(uid)
            answered = ch.bridge is not None or bool(known and known.answered_by)
            self.calls[uid] = WatchedCall(
                uid, ch.created, callable_number(ch.caller_num), None, answered=answered
            )
        return decided

    async def apply_or_retry(self, call: WatchedCall, ended: float, d: MissedDecision) -> None:
        """Apply now; if the database is away, keep retrying in the background (cti.db.later): the
        decision exists nowhere else, and raising here lost the caller (issue 16's drill). The
        missed_calls row makes a retry idempotent; a process that stops meanwhile leaves the call to
        the next one's `recover` (the event log)."""
        try:
            await self.apply(call, ended, d)
        except CONNECTION_ERRORS:
            retry_later(lambda: self.apply(call, ended, d), "missed_call", linkedid=call.uniqueid)

    async def apply(self, call: WatchedCall, ended: float, d: MissedDecision) -> None:
        start, end = datetime.fromtimestamp(call.started, UTC), datetime.fromtimestamp(ended, UTC)
        reason: str = d.reason
        callback_id: int | None = None
        async with self._pool.acquire() as conn, conn.transaction():
            mine = await conn.fetchval(
                """INSERT INTO missed_calls (linkedid, started_at, ended_at, reason) VALUES ($1, $2, $3, $4)
                   ON CONFLICT (linkedid) DO NOTHING RETURNING true""",
                call.uniqueid, start, end, reason,
            )  # fmt: skip
            if not mine:
                return  # another CTI process decided this call
            if d.create and call.number is not None:
                held = await conn.fetchval(_HELD, call.number, start)
                if held is not None:
                    reason, callback_id = "already_holding", held
                else:
                    ref = await open_callback(
                        conn, number=call.number, did=call.did, kind="abandon", now=start,
                        policy=self.policy.callbacks, linkedid=call.uniqueid, queue=call.queue,
                    )  # fmt: skip
                    callback_id = ref.id
                await conn.execute(
                    "UPDATE missed_calls SET reason = $2, callback_id = $3 WHERE linkedid = $1",
                    call.uniqueid, reason, callback_id,
                )  # fmt: skip
        payload = {"reason": reason, "callback_id": callback_id, "waited_s": round(d.waited_s, 3),
                   "number": mask_number(call.number), "did": call.did, "queue": call.queue}  # fmt: skip
        ev = Event(ts=end, source="cti", type="missed_call", payload=payload,
                   key=f"missed_call:{call.uniqueid}", uniqueid=call.uniqueid, linkedid=call.uniqueid,
                   queue=call.queue)  # fmt: skip
        await append_or_log(self._events, ev, "missed_call_event_failed", linkedid=call.uniqueid)

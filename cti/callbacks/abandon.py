"""Abandon protection, applied: a QueueCallerAbandon from AMI -> `abandon_decision` -> an `abandon`
callback (joining the number's open one) and a `callback_abandon` event.

A caller counts as protected while the center is in peak, or when they declined the callback offer
(`note_declined(uniqueid)`, called by the callback_offer AGI path) even if peak ended meanwhile.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any

import structlog

from cti.callbacks.offer import AbandonDecision, abandon_decision, open_callback
from cti.clock import Clock
from cti.masking import mask_number
from cti.policy import Policy
from cti.store.events import Event

log = structlog.get_logger(__name__)


class AbandonWatcher:
    def __init__(
        self,
        pool: Any,
        *,
        policy: Policy,
        clock: Clock,
        events: Any,  # EventStore-like: async append(Event)
        in_peak: Callable[[], bool | Awaitable[bool]],
        max_remembered: int = 50_000,
    ) -> None:
        self._pool = pool
        self._policy = policy
        self._clock = clock
        self._events = events
        self._in_peak = in_peak
        self._declined: dict[str, None] = {}  # insertion-ordered set of caller Uniqueids
        self._max = max_remembered

    def note_declined(self, uniqueid: str) -> None:
        self._declined[uniqueid] = None
        while len(self._declined) > self._max:
            self._declined.pop(next(iter(self._declined)))

    async def handle_ami(self, frame: Mapping[str, Any]) -> AbandonDecision | None:
        if frame.get("Event") != "QueueCallerAbandon":
            return None
        uniqueid = frame.get("Uniqueid")
        declined = isinstance(uniqueid, str) and uniqueid in self._declined
        in_peak = await self._in_peak() if inspect.iscoroutinefunction(self._in_peak) else self._in_peak()
        d = abandon_decision(frame, policy=self._policy.peak, in_peak=bool(in_peak), declined_offer=declined)
        if isinstance(uniqueid, str):
            self._declined.pop(uniqueid, None)
        if not d.create or d.number is None:
            return d
        now = self._clock.now()
        async with self._pool.acquire() as conn:
            ref = await open_callback(
                conn,
                number=d.number,
                did=d.did,
                kind="abandon",
                now=now - timedelta(seconds=d.hold_time_s),  # they first called when they joined the queue
                policy=self._policy.callbacks,
                linkedid=d.linkedid,
                queue=d.queue,
            )
        payload = {
            "callback_id": ref.id,
            "created": ref.created,
            "call_count": ref.call_count,
            "number": mask_number(d.number),
            "did": d.did,
            "queue": d.queue,
            "hold_time_s": d.hold_time_s,
            "declined_offer": declined,
        }
        try:
            await self._events.append(
                Event(
                    ts=now,
                    source="cti",
                    type="callback_abandon",
                    payload=payload,
                    key=f"callback_abandon:{d.linkedid or ref.id}:{uniqueid}",
                    linkedid=d.linkedid,
                    uniqueid=uniqueid if isinstance(uniqueid, str) else None,
                    queue=d.queue,
                )
            )
        except Exception:
            log.exception("callback_abandon_event_failed", callback_id=ref.id)
        return d

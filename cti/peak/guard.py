"""No pause, no log-off during peak (R-PEAK: 不许私自封线).

- `refuse_pause(in_peak)`: a pause / log-off asked through CTI is refused before it reaches AMI.
- `guard_decision(frame, ...)`: a QueueMemberPause (Paused 1) or QueueMemberRemoved seen on AMI while
  in peak -- taken at the phone or by anything else -- is undone (QueuePause Paused false / QueueAdd
  with the member's own Penalty, MemberName, StateInterface, field names as in capture 07) and
  recorded as a violation. Asterisk's own `Auto-Pause` (ring no answer, capture 02) is not the
  agent's choice and is left to the ring policy; CTI's own pause reasons can be exempted.
- `PeakPauseGuard`: applies the decisions: one `peak_violations` row per pause (unique on agent,
  queue, kind, event time, so with several CTI processes exactly one undoes it), the undo through an
  injected AMI action callable, and a `peak_violation` event.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import structlog

from cti.ami.headers import event_time, first_or_none
from cti.awaitables import maybe_await
from cti.clock import Clock
from cti.db.later import retry_later
from cti.peak import repo
from cti.policy import Policy
from cti.store.events import CONNECTION_ERRORS, Event
from cti.store.sink import EventSink, append_or_log

log = structlog.get_logger(__name__)

AUTO_PAUSE = "Auto-Pause"
REFUSAL = "peak mode: pauses and log-offs are not allowed while a TV ad peak is on (R-PEAK)"

AmiAction = Callable[[str, Mapping[str, str]], Awaitable[Mapping[str, Any] | None]]


def refuse_pause(in_peak: bool) -> str | None:
    """The refusal message for a pause/log-off request made through CTI, or None when allowed."""
    return REFUSAL if in_peak else None


@dataclass(frozen=True)
class GuardDecision:
    action: Literal["ignore", "undo_pause", "undo_logoff"]
    reason: str
    agent: str | None = None
    interface: str | None = None
    queue: str | None = None
    paused_reason: str | None = None
    occurred_at: datetime | None = None
    undo: tuple[str, dict[str, str]] | None = None  # (AMI action, headers)
    extra: dict[str, Any] = field(default_factory=dict)


def guard_decision(
    frame: Mapping[str, Any], *, in_peak: bool, now: datetime, exempt_reasons: frozenset[str] = frozenset()
) -> GuardDecision:
    ev = first_or_none(frame, "Event")
    if ev not in ("QueueMemberPause", "QueueMemberRemoved"):
        return GuardDecision("ignore", "not_a_pause")
    if not in_peak:
        return GuardDecision("ignore", "not_peak")
    interface, queue = first_or_none(frame, "Interface"), first_or_none(frame, "Queue")
    agent = first_or_none(frame, "MemberName") or interface
    if not interface or not queue:
        return GuardDecision("ignore", "incomplete_frame")
    reason = first_or_none(frame, "PausedReason") or None
    common: dict[str, Any] = {
        "agent": agent,
        "interface": interface,
        "queue": queue,
        "paused_reason": reason,
        "occurred_at": event_time(frame, now),
    }
    if ev == "QueueMemberPause":
        if first_or_none(frame, "Paused") != "1":
            return GuardDecision("ignore", "unpause")
        if reason == AUTO_PAUSE:
            return GuardDecision("ignore", "auto_pause")
        if reason in exempt_reasons:
            return GuardDecision("ignore", "exempt_reason")
        undo = ("QueuePause", {"Queue": queue, "Interface": interface, "Paused": "false"})
        return GuardDecision("undo_pause", "paused_in_peak", undo=undo, **common)
    if first_or_none(frame, "Membership") == "static":
        return GuardDecision("ignore", "static_member")
    headers = {"Queue": queue, "Interface": interface, "Penalty": first_or_none(frame, "Penalty") or "0"}
    if agent:
        headers["MemberName"] = agent
    state_interface = first_or_none(frame, "StateInterface")
    if state_interface:
        headers["StateInterface"] = state_interface
    return GuardDecision("undo_logoff", "logged_off_in_peak", undo=("QueueAdd", headers), **common)


class PeakPauseGuard:
    def __init__(
        self,
        pool: Any,
        *,
        policy: Policy,
        clock: Clock,
        events: EventSink,
        in_peak: Callable[[datetime], bool | Awaitable[bool]],
        ami_action: AmiAction,
        peak_cause: Callable[[datetime], str | None] = lambda at: None,
        exempt_reasons: frozenset[str] = frozenset(),
    ) -> None:
        self._pool = pool
        self._policy = policy
        self._clock = clock
        self._events = events
        self._in_peak = in_peak
        self._ami_action = ami_action
        self._peak_cause = peak_cause
        self._exempt = exempt_reasons

    async def handle_ami(self, frame: Mapping[str, Any]) -> GuardDecision:
        ev = first_or_none(frame, "Event")
        if ev not in ("QueueMemberPause", "QueueMemberRemoved"):
            return GuardDecision("ignore", "not_a_pause")
        now = self._clock.now()
        # judged when the pause happened (the frame's Timestamp), not when we read it: a frame read
        # late, after peak ended or began, must not be fined or forgiven (PeakMonitor.was_in_peak)
        at = event_time(frame, now)
        d = guard_decision(
            frame, in_peak=bool(await maybe_await(self._in_peak(at))), now=now, exempt_reasons=self._exempt
        )
        if d.action == "ignore" or d.undo is None:
            return d
        kind = "pause" if d.action == "undo_pause" else "logoff"
        fine = self._policy.fines["peak_pause"].agent if "peak_pause" in self._policy.fines else 0
        row = dict(agent=d.agent, interface=d.interface, queue=d.queue, kind=kind, occurred_at=d.occurred_at,
                   reason=d.paused_reason, peak_cause=self._peak_cause(at), fine_agent=fine,
                   recorded_at=now)  # fmt: skip
        try:
            async with self._pool.acquire() as conn:
                vid = await repo.record_violation(conn, **row)
        except CONNECTION_ERRORS:
            # The database is away: the agent goes back on the phones now (R-PEAK), the violation is
            # recorded when it returns (issue 16's drill: the pause stood and nothing was recorded).
            # Two processes may both undo it meanwhile: unpausing twice is harmless.
            status, error = await self._undo(d)
            retry_later(lambda: self._record_late(row, d, status, error), "peak_violation", agent=d.agent)
            return d
        if vid is None:  # another CTI process saw the same event first and handles it
            return GuardDecision("ignore", "already_recorded")
        status, error = await self._undo(d)
        await self._recorded(vid, d, kind, fine, status, error, now)
        return d

    async def _undo(self, d: GuardDecision) -> tuple[str, str | None]:
        assert d.undo is not None
        try:
            reply = await self._ami_action(*d.undo)
            if reply is not None and first_or_none(reply, "Response") == "Error":
                return "failed", first_or_none(reply, "Message") or "AMI error"
        except Exception as e:
            return "failed", str(e)
        return "undone", None

    async def _record_late(
        self, row: dict[str, Any], d: GuardDecision, status: str, error: str | None
    ) -> None:
        async with self._pool.acquire() as conn:
            vid = await repo.record_violation(conn, **row)
        if vid is not None:
            await self._recorded(vid, d, row["kind"], row["fine_agent"], status, error, row["recorded_at"])

    async def _recorded(self, vid: int, d: GuardDecision, kind: str, fine: Any, status: str,
                        error: str | None, now: datetime) -> None:  # fmt: skip
        async with self._pool.acquire() as conn:
            await repo.set_violation_undo(conn, vid, status, error)
        payload = {
            "violation_id": vid,
            "agent": d.agent,
            "queue": d.queue,
            "kind": kind,
            "reason": d.paused_reason,
            "undo": status,
            "undo_error": error,
            "fine_rule": "peak_pause",
            "fine_agent": str(fine),
        }
        ev = Event(ts=now, source="cti", type="peak_violation", payload=payload,
                   key=f"peak_violation:{vid}", agent=d.agent, queue=d.queue)  # fmt: skip
        await append_or_log(self._events, ev, "peak_violation_event_failed", violation_id=vid)
        log.warning("peak_violation", agent=d.agent, kind=kind, undo=status)

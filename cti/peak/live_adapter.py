"""The one place peak mode and the callback dispatcher read live state (cti.state.live.LiveState):
queue figures for the peak monitor, the two-ring prediction for the `route` AGI, and the Dispatcher's
one view of live agents (`cti.callbacks.dispatcher.LiveAgents`: free agent, waiting and answered
inbound).

Recent ring-to-answer and talk times come from AgentConnect `RingTime` and AgentComplete `TalkTime`
(both SECONDS, see asterisk-captures/INDEX.md), fed through `observe(frame)`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Set
from datetime import datetime
from typing import Any

from cti import defaults
from cti.ami.headers import first
from cti.peak.machine import LiveFigures
from cti.peak.predict import Prediction, QueueSnapshot, estimate_wait, live_figures
from cti.policy import Policy
from cti.state.live import LiveState
from cti.state.model import INUSE, RINGING, RINGINUSE
from cti.state.reducer import member_is_free


def _num(frame: Mapping[str, Any], key: str) -> float | None:
    try:
        return float(first(frame, key))
    except ValueError:  # absent ("") or not a number
        return None


class QueueView:
    def __init__(
        self, live: LiveState, policy: Policy, *, queue: str = defaults.QUEUE, window: int = 50
    ) -> None:
        self.live = live
        self.policy = policy
        self.queue = queue
        self._answer_s: deque[float] = deque(maxlen=window)
        self._handle_s: deque[float] = deque(maxlen=window)
        self.inbound_answered_total = 0  # AgentConnect count: the Dispatcher's inbound-first ratio

    def observe(self, frame: Mapping[str, Any]) -> None:
        """Feed every AMI event (only AgentConnect / AgentComplete of our queue are used)."""
        ev = frame.get("Event")
        if ev not in ("AgentConnect", "AgentComplete") or frame.get("Queue") != self.queue:
            return
        if ev == "AgentConnect":
            self.inbound_answered_total += 1
            ring = _num(frame, "RingTime")
            if ring is not None:
                self._answer_s.append(ring)
        else:
            talk = _num(frame, "TalkTime")
            if talk is not None:
                self._handle_s.append(talk)

    def snapshot(self, now: float | None = None) -> QueueSnapshot:
        st = self.live.state
        now = st.last_ts if now is None else now
        free = busy = 0
        for m in self.live.members(self.queue):
            if member_is_free(m, now):
                free += 1
            elif not m.paused and (m.in_call or m.ringing or m.status in (INUSE, RINGING, RINGINUSE)):
                busy += 1
        return QueueSnapshot(
            free_agents=free,
            busy_agents=busy,
            callers_ahead=len(self.live.callers_waiting(self.queue)),
            recent_answer_s=tuple(self._answer_s),
            recent_handle_s=tuple(self._handle_s),
        )

    def _default_handle_s(self) -> float:
        return self.policy.handling_targets_s.inquiry

    def predict(self, now: float | None = None) -> Prediction:
        return estimate_wait(self.snapshot(now), self.policy.ring, default_handle_s=self._default_handle_s())

    def figures(self) -> LiveFigures:
        """`figures` for PeakMonitor."""
        return live_figures(self.snapshot(), self.policy.ring, default_handle_s=self._default_handle_s())

    def callback_advisor(self, in_peak: Callable[[], bool]) -> Callable[[Any, datetime], bool]:
        """`callback_advisor(routing_snapshot, now)` for cti.agi (offer a callback: in peak and not
        answerable within two rings)."""

        def advise(_routing_snapshot: Any, now: datetime) -> bool:
            return bool(in_peak()) and not self.predict(now.timestamp()).within_two_rings

        return advise

    # ---- the Dispatcher's LiveAgents view -----------------------------------------------------
    def free_agent(self, busy: Set[str]) -> str | None:
        return next((a for a in self.live.free_agents(self.queue) if a not in busy), None)

    def waiting_inbound(self) -> int:
        return len(self.live.callers_waiting(self.queue))

    def inbound_answered(self) -> int:
        return self.inbound_answered_total

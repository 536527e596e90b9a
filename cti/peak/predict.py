"""Can this caller be answered within two rings? A pure function of a live-state snapshot.

The `route` AGI asks this in peak mode: if the answer is no, the caller is offered a callback at once
(CTI_ROUTE=callback_offer) instead of waiting. The estimate is deliberately cautious: it uses a high
percentile of recent ring-to-answer times, because a wrong "yes" costs a caller, a wrong "no" only
costs a callback.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from cti.peak.machine import LiveFigures
from cti.policy import RingPolicy

ANSWER_PERCENTILE = 0.8


@dataclass(frozen=True)
class QueueSnapshot:
    """What live state knows when a call arrives (the queue the caller would join)."""

    free_agents: int  # logged in, not paused, idle (not ringing, not on a call)
    busy_agents: int  # on a call or ringing: will become free again
    callers_ahead: int  # already waiting in the queue
    recent_answer_s: Sequence[float] = ()  # ring-to-answer seconds of recent answered calls
    recent_handle_s: Sequence[float] = ()  # talk (+ wrap-up) seconds of recent calls

    def __post_init__(self) -> None:
        if min(self.free_agents, self.busy_agents, self.callers_ahead) < 0:
            raise ValueError("agent and caller counts cannot be negative")


@dataclass(frozen=True)
class Prediction:
    within_two_rings: bool
    estimated_wait_s: float  # until an agent answers; math.inf when no agent is logged in
    reason: str  # free_agent | wait_for_agent | no_agents


def percentile(values: Sequence[float], q: float) -> float:
    s = sorted(values)
    if not s:
        raise ValueError("percentile of no values")
    i = min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))
    return s[i]


def estimate_wait(snapshot: QueueSnapshot, ring: RingPolicy, *, default_handle_s: float) -> Prediction:
    """Seconds until an agent answers a caller joining behind `callers_ahead` callers."""
    answer_s = (
        percentile(snapshot.recent_answer_s, ANSWER_PERCENTILE)
        if snapshot.recent_answer_s
        else ring.cycle_s  # no history: assume the first ring cycle passes unanswered
    )
    limit = ring.max_rings * ring.cycle_s
    agents = snapshot.free_agents + snapshot.busy_agents
    if agents == 0:
        return Prediction(False, math.inf, "no_agents")
    if snapshot.free_agents > snapshot.callers_ahead:
        wait = answer_s
        reason = "free_agent"
    else:
        handle_s = (
            sum(snapshot.recent_handle_s) / len(snapshot.recent_handle_s)
            if snapshot.recent_handle_s
            else default_handle_s
        )
        # callers that must be served before an agent is ours; each agent serves one per handle time
        needed = snapshot.callers_ahead - snapshot.free_agents + 1
        wait = needed * handle_s / agents + answer_s
        reason = "wait_for_agent"
    return Prediction(wait < limit, wait, reason)


def live_figures(snapshot: QueueSnapshot, ring: RingPolicy, *, default_handle_s: float) -> LiveFigures:
    """The peak monitor's inputs from the same snapshot: callers waiting, and the estimated wait of
    the last of them (0 when nobody waits, so an empty center at night is not a peak)."""
    waiting = snapshot.callers_ahead
    if waiting == 0:
        return LiveFigures(waiting_callers=0, estimated_wait_s=0.0)
    last = QueueSnapshot(
        free_agents=snapshot.free_agents,
        busy_agents=snapshot.busy_agents,
        callers_ahead=waiting - 1,
        recent_answer_s=snapshot.recent_answer_s,
        recent_handle_s=snapshot.recent_handle_s,
    )
    return LiveFigures(waiting, estimate_wait(last, ring, default_handle_s=default_handle_s).estimated_wait_s)

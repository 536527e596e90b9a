"""What the monitor shows, as one JSON-able dict: a pure function of the live state and `now`.
Numbers are masked here (R-MASK); full numbers only through the audited reveal endpoint."""

from __future__ import annotations

from typing import Any

from cti.masking import mask_number
from cti.state.model import State
from cti.state.reducer import member_is_free


def member_status(m: Any, now: float) -> str:
    if m.in_call is not None:
        return "in_call"
    if m.ringing:
        return "ringing"
    if m.paused:
        return "paused"
    if m.wrapup_until is not None and now < m.wrapup_until:
        return "wrapup"
    if member_is_free(m, now):
        return "free"
    return "unavailable"


def build_snapshot(
    state: State, now: float, *, peak: dict[str, Any] | None = None, callbacks: dict[str, Any] | None = None
) -> dict[str, Any]:
    queues: dict[str, dict[str, Any]] = {}

    def q(name: str) -> dict[str, Any]:
        return queues.setdefault(
            name,
            {"name": name, "callers": [], "members": [],
             "counts": {"waiting": 0, "free": 0, "ringing": 0, "in_call": 0, "paused": 0, "wrapup": 0,
                        "unavailable": 0}},
        )  # fmt: skip

    for c in sorted(state.callers.values(), key=lambda c: (c.queue, c.position)):
        entry = q(c.queue)
        entry["callers"].append(
            {"position": c.position, "number": mask_number(c.caller_num) or "—", "uniqueid": c.uniqueid,
             "wait_s": round(max(0.0, now - c.joined))}
        )  # fmt: skip
        entry["counts"]["waiting"] += 1
    for m in sorted(state.members.values(), key=lambda m: (m.queue, m.name)):
        entry = q(m.queue)
        status = member_status(m, now)
        entry["members"].append(
            {"agent": m.name, "interface": m.interface, "status": status, "paused_reason": m.paused_reason,
             "paused_s": round(now - m.paused_since) if m.paused and m.paused_since else None,
             "calls_taken": m.calls_taken}
        )  # fmt: skip
        entry["counts"][status] += 1
    for entry in queues.values():
        waits = [c["wait_s"] for c in entry["callers"]]
        entry["counts"]["longest_wait_s"] = max(waits) if waits else 0
    return {
        "ts": now,
        "queues": [queues[k] for k in sorted(queues)],
        "calls": len(state.calls),
        "peak": peak or {},
        "callbacks": callbacks or {},
    }

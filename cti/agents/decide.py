"""Whether an agent's request is granted: pure functions of the agent's session, the policy, peak
mode and the time (injected), so every rule is testable without a PBX or a database.

Rules: R-LOGIN (only known, active agents; a second login re-applies membership without a new
session), R-PEAK (no pause and no log-off while peak mode is on: the same refusal the peak guard
uses), R-BREAK (at most `max_concurrent_per_group` agents of a group paused at once, each for at
most `max_minutes`; the refusal names who is out and until when; reasons come from the policy).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from cti.peak.guard import refuse_pause
from cti.policy import BreakPolicy

Op = Literal["login", "logout", "pause", "unpause"]
DEFAULT_REASON = "break"


@dataclass(frozen=True, slots=True)
class AgentInfo:
    id: str
    name: str
    interface: str  # PJSIP/agent1: queue member Interface and StateInterface
    group: str
    active: bool = True

    @property
    def endpoint(self) -> str:
        """The PJSIP endpoint name, for PJSIPQualify (`Endpoint: agent1`, capture 17)."""
        return self.interface.partition("/")[2] or self.id


@dataclass(frozen=True, slots=True)
class Session:
    id: int
    agent: str
    group: str
    queues: tuple[str, ...]
    penalty: int
    login_at: datetime
    paused: bool = False
    pause_reason: str | None = None
    paused_at: datetime | None = None
    pause_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    op: Op
    allowed: bool
    code: str  # a key of cti.agents.prompts.PROMPTS
    message: str
    reason: str | None = None
    pause_until: datetime | None = None
    out: tuple[dict[str, str], ...] = field(default=())  # break_limit: who is out, until when


def reason_for_code(code: str, reasons: Sequence[str]) -> str | None:
    """The pause reason for a phone's `*13N` (N 1-based in the policy list); `*13` alone: break."""
    code = code.strip()
    if not code:
        return DEFAULT_REASON if DEFAULT_REASON in reasons else (reasons[0] if reasons else None)
    if not code.isdigit() or not 1 <= int(code) <= len(reasons):
        return None
    return reasons[int(code) - 1]


def decide_login(agent: AgentInfo | None, session: Session | None, agent_id: str) -> Decision:
    if agent is None or not agent.active:
        return Decision("login", False, "unknown_agent", f"{agent_id}: not an active agent")
    if session is not None:  # membership is re-applied (Asterisk may have lost it), no new session
        return Decision("login", True, "already_logged_in", f"{agent_id}: already logged in")
    return Decision("login", True, "logged_in", f"{agent_id}: logged in")


def decide_logout(session: Session | None, agent_id: str, *, in_peak: bool) -> Decision:
    if session is None:
        return Decision("logout", False, "not_logged_in", f"{agent_id}: not logged in")
    refusal = refuse_pause(in_peak)
    if refusal:
        return Decision("logout", False, "peak_mode", refusal)
    return Decision("logout", True, "logged_out", f"{agent_id}: logged out")


def _hm(t: datetime | None, tz: ZoneInfo) -> str:
    return t.astimezone(tz).strftime("%H:%M") if t is not None else "?"


def decide_pause(
    session: Session | None,
    agent_id: str,
    reason: str | None,
    *,
    group_sessions: Sequence[Session],
    policy: BreakPolicy,
    in_peak: bool,
    now: datetime,
    tz: ZoneInfo,
) -> Decision:
    """`group_sessions`: the open sessions of the agent's group (the agent's own may be among them)."""
    if session is None:
        return Decision("pause", False, "not_logged_in", f"{agent_id}: not logged in")
    if reason is None or reason not in policy.pause_reasons:
        valid = ", ".join(policy.pause_reasons)
        return Decision("pause", False, "unknown_reason", f"pause reason {reason!r} unknown; one of: {valid}")
    if session.paused:
        return Decision(
            "pause",
            False,
            "already_paused",
            f"{agent_id}: already paused ({session.pause_reason})",
            reason=session.pause_reason,
        )
    refusal = refuse_pause(in_peak)
    if refusal:
        return Decision("pause", False, "peak_mode", refusal, reason=reason)
    out = sorted(
        (s for s in group_sessions if s.paused and s.agent != session.agent),
        key=lambda s: (s.pause_until or now, s.agent),
    )
    if len(out) >= policy.max_concurrent_per_group:
        who = tuple(
            {"agent": s.agent, "reason": s.pause_reason or "", "until": _hm(s.pause_until, tz)} for s in out
        )
        names = ", ".join(f"{w['agent']} ({w['reason']}, until {w['until']})" for w in who)
        return Decision(
            "pause",
            False,
            "break_limit",
            f"R-BREAK: {len(out)} of group {session.group!r} already out "
            f"(at most {policy.max_concurrent_per_group}): {names}",
            reason=reason,
            out=who,
        )
    until = now + timedelta(minutes=policy.max_minutes)
    return Decision(
        "pause",
        True,
        "paused",
        f"{agent_id}: paused ({reason}) until {_hm(until, tz)}",
        reason=reason,
        pause_until=until,
    )


def decide_unpause(session: Session | None, agent_id: str) -> Decision:
    if session is None:
        return Decision("unpause", False, "not_logged_in", f"{agent_id}: not logged in")
    if not session.paused:
        return Decision("unpause", False, "not_paused", f"{agent_id}: not paused")
    return Decision(
        "unpause",
        True,
        "unpaused",
        f"{agent_id}: back from {session.pause_reason}",
        reason=session.pause_reason,
    )


def overrun(sessions: Sequence[Session], now: datetime) -> list[Session]:
    """Paused sessions past their `pause_until` (R-BREAK: an overrun raises an alarm)."""
    return [s for s in sessions if s.paused and s.pause_until is not None and s.pause_until < now]

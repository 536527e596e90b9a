"""Today's contact-center figures, live: a pure fold of the AMI stream (no clock, no I/O), seeded at
start from `call_facts` for the part of the day this process did not see.

Offered = QueueCallerJoin; answered = AgentConnect; abandoned = QueueCallerAbandon; two-ring service
level = answered with the answering agent's RingTime inside `max_rings` cadence cycles (R-RING2);
ASA = mean HoldTime of answered calls; AHT = mean TalkTime (AgentComplete). Field names and units are
Asterisk's (seconds in AgentConnect/AgentComplete, capture 01).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cti.ami.headers import first
from cti.policy import RingPolicy

_NUM = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple[Any, ...]:
    """agent2 before agent10: digit runs compare as numbers."""
    return tuple(int(p) if p.isdigit() else p.lower() for p in _NUM.split(name))


def _f(ev: Mapping[str, Any], key: str) -> float:
    try:
        return float(first(ev, key))
    except ValueError:
        return 0.0


@dataclass(slots=True)
class AgentDay:
    calls: int = 0
    in_sl: int = 0
    talk_s: float = 0.0
    completed: int = 0


@dataclass
class DayFigures:
    ring: RingPolicy
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    in_sl: int = 0
    hold_s: float = 0.0
    talk_s: float = 0.0
    completed: int = 0
    per_agent: dict[str, AgentDay] = field(default_factory=dict)

    def within_two_rings(self, ring_s: float) -> bool:
        return self.ring.rings_at(ring_s) <= self.ring.max_rings and ring_s <= self.ring.agent_timeout_s

    def apply(self, ev: Mapping[str, Any]) -> bool:
        """Fold one AMI event; True when a figure changed."""
        name = ev.get("Event")
        if name == "QueueCallerJoin":
            self.offered += 1
        elif name == "QueueCallerAbandon":
            self.abandoned += 1
        elif name == "AgentConnect":
            a = self.per_agent.setdefault(str(ev.get("MemberName", "")), AgentDay())
            self.answered += 1
            a.calls += 1
            self.hold_s += _f(ev, "HoldTime")
            if self.within_two_rings(_f(ev, "RingTime")):
                self.in_sl += 1
                a.in_sl += 1
        elif name == "AgentComplete":
            a = self.per_agent.setdefault(str(ev.get("MemberName", "")), AgentDay())
            talk = _f(ev, "TalkTime")
            self.talk_s += talk
            self.completed += 1
            a.talk_s += talk
            a.completed += 1
        else:
            return False
        return True

    def seed(self, rows: list[Mapping[str, Any]]) -> None:
        """Add `call_facts` rows of today seen before this process started."""
        for r in rows:
            if r["offered_at"] is not None:
                self.offered += 1
            if r["abandoned"]:
                self.abandoned += 1
            agent = r["answered_by"]
            if agent and r["answered_at"] is not None:
                a = self.per_agent.setdefault(agent, AgentDay())
                self.answered += 1
                a.calls += 1
                self.hold_s += float(r["hold_s"] or 0)
                rings = r["rings_to_answer"]
                if rings is not None and rings <= self.ring.max_rings:
                    self.in_sl += 1
                    a.in_sl += 1
                if r["talk_s"] is not None:
                    self.talk_s += float(r["talk_s"])
                    self.completed += 1
                    a.talk_s += float(r["talk_s"])
                    a.completed += 1

    def summary(self) -> dict[str, Any]:
        def ratio(n: float, d: float) -> float | None:
            return round(n / d, 3) if d else None

        return {
            "offered": self.offered,
            "answered": self.answered,
            "abandoned": self.abandoned,
            "service_level": ratio(self.in_sl, self.answered),
            "abandon_rate": ratio(self.abandoned, self.offered),
            "asa_s": round(self.hold_s / self.answered, 1) if self.answered else None,
            "aht_s": round(self.talk_s / self.completed, 1) if self.completed else None,
        }

    def agent_summary(self, agent: str) -> dict[str, Any]:
        a = self.per_agent.get(agent, AgentDay())
        return {
            "calls": a.calls,
            "service_level": round(a.in_sl / a.calls, 3) if a.calls else None,
            "aht_s": round(a.talk_s / a.completed, 1) if a.completed else None,
        }


SEED_SQL = """SELECT offered_at, abandoned, answered_by, answered_at, hold_s, rings_to_answer, talk_s
              FROM call_facts WHERE started_at >= $1 AND started_at < $2"""

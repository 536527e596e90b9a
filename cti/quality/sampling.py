"""Which recorded calls are reviewed in a period (pure): a plan from policy `[qa]`, drawn with a
seed made of the period and the plan, so drawing twice gives the same calls and anyone can check
a draw was not picked by hand. Each agent is drawn with their own seed: an agent who joins, or a
call of another agent that arrives late, does not change an agent's draw.

Per agent: `calls_per_agent` (+ `extra_calls` for agents with low scores or complaints), of them
at least `min_callbacks` callbacks and `min_outbound` outbound calls where the agent has any."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from cti.policy import QaPolicy

KINDS = ("inbound", "callback", "outbound")


@dataclass(frozen=True, slots=True)
class Candidate:
    linkedid: str
    agent: str
    kind: str  # inbound | callback | outbound
    started_at: datetime
    recording_id: int


@dataclass(frozen=True, slots=True)
class Plan:
    period: str
    period_start: date
    calls_per_agent: int
    min_callbacks: int
    min_outbound: int
    extra_calls: int
    extra_agents: frozenset[str] = field(default_factory=frozenset)  # low scores or complaints

    @classmethod
    def from_policy(cls, policy: QaPolicy, period_start: date, extra_agents: Iterable[str] = ()) -> Plan:
        return cls(policy.period, period_start, policy.calls_per_agent, policy.min_callbacks,
                   policy.min_outbound, policy.extra_calls, frozenset(extra_agents))  # fmt: skip

    def digest(self) -> str:
        """The seed: everything that decides the draw, nothing else (not the clock, not who drew)."""
        raw = {
            "period": self.period,
            "start": self.period_start.isoformat(),
            "n": self.calls_per_agent,
            "cb": self.min_callbacks,
            "out": self.min_outbound,
            "extra": self.extra_calls,
            "extra_agents": sorted(self.extra_agents),
        }
        return hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()[:16]

    def quota(self, agent: str) -> int:
        return self.calls_per_agent + (self.extra_calls if agent in self.extra_agents else 0)


@dataclass(frozen=True, slots=True)
class Pick:
    call: Candidate
    reason: str  # callback | outbound (a minimum) | drawn | extra


def draw(candidates: Iterable[Candidate], plan: Plan) -> list[Pick]:
    by_agent: dict[str, list[Candidate]] = {}
    for c in candidates:
        by_agent.setdefault(c.agent, []).append(c)
    picks: list[Pick] = []
    seed = plan.digest()
    for agent in sorted(by_agent):
        # a stable order first: the database returns rows in no promised order
        pool = sorted(by_agent[agent], key=lambda c: (c.started_at, c.linkedid))
        rng = random.Random(f"{seed}:{agent}")
        quota = plan.quota(agent)
        chosen: list[Pick] = []
        for kind, minimum in (("callback", plan.min_callbacks), ("outbound", plan.min_outbound)):
            of_kind = [c for c in pool if c.kind == kind]
            for c in rng.sample(of_kind, min(minimum, len(of_kind), quota - len(chosen))):
                chosen.append(Pick(c, kind))
        taken = {p.call.linkedid for p in chosen}
        rest = [c for c in pool if c.linkedid not in taken]
        base = plan.calls_per_agent
        for c in rng.sample(rest, min(quota - len(chosen), len(rest))):
            chosen.append(Pick(c, "drawn" if len(chosen) < base else "extra"))
        picks += sorted(chosen, key=lambda p: (p.call.started_at, p.call.linkedid))
    return picks

"""The people at the ends of the lines, which Asterisk does not decide: when (and whether) an agent
answers a ringing phone, when an auto-paused agent unpauses, when they take a break, and how a dialled
customer reacts. Profiles come from the scenario (cti.sim.scenario.AgentProfile); tests override them
per agent (`Simulator.set_answer`, `set_customer`). All draws come from the core's random stream, in
the order the calls happen, so a seed replays the same evening. No capture applies: the captures'
phones were sipp scripts; what they show (ring timeouts, auto-pause) is app_queue's, in cti.sim.app_queue."""

from __future__ import annotations

import math

from cti.sim.core import Core
from cti.sim.model import RingLeg
from cti.sim.scenario import AgentProfile

CustomerOutcome = tuple[str, float, float | None]  # ('answer'|'noanswer'|'busy'|'congestion', s, talk s)


class People:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.profiles: dict[str, AgentProfile] = {}
        for a in core.scenario.agents:
            self.profiles[a.id] = core.scenario.agent_profiles.get(a.profile, AgentProfile())
        # test control: agent id -> answer mode ('auto' | 'never' | 'manual') and fixed delays
        self.answer_mode: dict[str, str] = {}
        self.answer_delay_override: dict[str, float] = {}
        # customers dialled by callbacks: number -> outcome
        self.customer_outcomes: dict[str, CustomerOutcome] = {}
        self.default_customer: CustomerOutcome = ("answer", 3.0, 20.0)

    def profile(self, ep_id: str) -> AgentProfile:
        sc = self.core.scenario
        return self.profiles.get(ep_id) or sc.agent_profiles.get("default") or AgentProfile()

    def on_their_own(self, ep_id: str) -> bool:
        """The agent acts by their profile (not held by a test's 'never' / 'manual')."""
        return self.answer_mode.get(ep_id, "auto") == "auto"

    def ring(self, leg: RingLeg, timeout: float) -> None:
        """The agent's phone rings: schedule their answer (if they will) and the ring timeout."""
        core = self.core
        ep_id = leg.endpoint.id
        core.ring(leg)
        prof = self.profile(ep_id)
        mode = self.answer_mode.get(ep_id, "auto")
        if mode == "auto":
            if ep_id in self.answer_delay_override:
                delay = self.answer_delay_override[ep_id]
            elif core.rng.random() < prof.no_answer_chance:
                delay = math.inf
            else:
                delay = prof.answer_delay.sample(core.rng)
            if delay < timeout:
                leg.timers.append(core.after(delay, core.answer_leg, leg))
        leg.timers.append(core.after(timeout, core.time_out_leg, leg))

    def unpause_after_autopause(self, ep_id: str) -> float | None:
        """Seconds after which an auto-paused agent unpauses at the phone, or None (they stay paused)."""
        delay = self.profile(ep_id).unpause_after_autopause
        return delay if delay > 0 and self.on_their_own(ep_id) else None

    def break_after_call(self, ep_id: str) -> tuple[float, str] | None:
        """(duration, reason) when the agent takes a break after this call."""
        prof = self.profile(ep_id)
        if prof.break_chance and self.on_their_own(ep_id) and self.core.rng.random() < prof.break_chance:
            return prof.break_duration.sample(self.core.rng), prof.break_reason
        return None

    def customer(self, number: str) -> CustomerOutcome:
        return self.customer_outcomes.get(number, self.default_customer)

    def customer_talk(self, talk: float | None) -> float:
        return talk if talk is not None else (self.default_customer[2] or 20.0)

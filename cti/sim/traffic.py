"""A scenario's traffic, planned on the virtual timeline: callers arriving (a Poisson process whose
rate follows the scenario's curve, e.g. the TV ad's peak) and agents' phones registering when their
shift starts and unregistering when it ends. Not Asterisk: what the world does to it (no capture; what
a registration looks like on AMI is cti.sim.core's, captures 10, 17, 19)."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime

from cti.sim.core import Core
from cti.sim.model import CallSpec
from cti.sim.numbers import caller_name, caller_number
from cti.sim.pbx import Pbx
from cti.sim.scenario import AgentConfig, Scenario


class Traffic:
    def __init__(
        self,
        pbx: Pbx,
        scenario: Scenario,
        arrival_rng: random.Random,
        end_time: float,
        on_shift: list[Callable[[AgentConfig, bool], None]],
    ) -> None:
        self.pbx = pbx
        self.core: Core = pbx.core
        self.scenario = scenario
        # who calls and when is a plan fixed by the seed, on its own stream
        self.arrival_rng = arrival_rng
        self.end_time = end_time
        self.on_shift = on_shift
        self._planned = pbx.core.now  # virtual time of the last planned arrival

    def start(self) -> None:
        self.core.after(0, self._shift_tick)
        self.core.after(0, self._arrival)

    def _arrival(self) -> None:
        """Plan the next arrival on the virtual timeline (planned time + gap), not from when this
        timer fired: under load a scaled-clock timer fires late, and drawing from `now` would thin
        the Poisson process (a TV-ad peak lost 17% of its calls that way)."""
        e = self.core
        t = max(self._planned, self.scenario.start.timestamp())
        while t < self.end_time:
            rate = self.scenario.arrival_rate(t - self.scenario.start.timestamp())
            step = 10.0
            gap = self.arrival_rng.expovariate(rate) if rate > 0 else float("inf")
            if gap > step:  # memoryless: re-draw at the next step with the new rate
                t += step
                continue
            self._planned = t + gap
            e.at(self._planned, self._one_arrival)
            return

    def _one_arrival(self) -> None:
        e = self.core
        if e.now < self.end_time:
            prof = self.scenario.caller
            number = caller_number(self.arrival_rng, prof.landline_chance)
            name = caller_name(self.arrival_rng, prof.name_chance, prof.hostile_name_chance)
            did = self.arrival_rng.choice(self.scenario.dids)
            spec = CallSpec(
                caller=number,
                did=did,
                name=name,
                patience=prof.patience.sample(self.arrival_rng),
                dtmf=list(prof.dtmf),
                message_s=prof.message_s,
                ivr_hangup_after=self.arrival_rng.randint(1, 3)
                if self.arrival_rng.random() < prof.ivr_hangup_chance
                else None,
            )
            self.pbx.place_call(spec)
        self._arrival()

    def _shift_tick(self) -> None:
        """Phones register when their shift starts and unregister when it ends. Nobody joins a queue
        here: like Asterisk, the simulator only adds a member on QueueAdd (the CTI's login service,
        called from `on_shift` listeners or by the agent's *11)."""
        e = self.core
        local = datetime.fromtimestamp(e.now, UTC).astimezone(self.scenario.tz)
        for a in self.scenario.agents:
            on = (not a.shift) or self.scenario.shifts[a.shift].active(local)
            ep = e.endpoints[a.id]
            if on != ep.registered:
                e.register(a.id, on)
                for fn in list(self.on_shift):
                    fn(a, on)
        if e.now < self.end_time:
            e.after(60.0, self._shift_tick)

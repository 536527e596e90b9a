"""The in-process face of the simulator: owns the PBX (cti.sim.pbx), the AMI server, the FastAGI client tasks
and the time driver.

Time modes:
- manual (no clock, or a ManualClock): time moves only with `await sim.advance(seconds)`; deterministic.
- fast (`speed="max"`): virtual time jumps to the next event at once; same seed -> same events.
- scaled / real time (a ScaledClock or SystemClock, or `speed=N`): events fire at wall time / N.
In manual and fast mode virtual time stands still while a FastAGI session is in progress.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog

from cti.clock import Clock, ManualClock, ScaledClock, SystemClock
from cti.sim import agi as agi_mod
from cti.sim.ami import AmiServer, event_bytes
from cti.sim.core import Core
from cti.sim.inbound import InboundFlow
from cti.sim.model import CallSpec, Channel
from cti.sim.model import PbxEvent as Event
from cti.sim.pbx import Pbx
from cti.sim.scenario import AgentConfig, AgentProfile, Scenario
from cti.sim.traffic import Traffic

log = structlog.get_logger(__name__)


class Simulator:
    def __init__(
        self,
        scenario: Scenario | None = None,
        *,
        clock: Clock | None = None,
        speed: float | str | None = None,
        ami_host: str = "127.0.0.1",
        ami_port: int = 0,
        agi_url: str = "agi://127.0.0.1:4573",
        seed: int | None = None,
        auth_fail_delay: float = 1.0,
        arrivals: bool = False,
        ring_cycle_s: float | None = None,
        record_events: bool = False,
        write_audio: bool = True,
    ) -> None:
        self.scenario = scenario or Scenario()
        if speed == "max":
            self.mode = "fast"
        elif isinstance(speed, int | float):
            self.mode = "scaled"
            clock = ScaledClock(clock.now() if clock else self.scenario.start, float(speed))
        elif isinstance(clock, ScaledClock | SystemClock):
            self.mode = "scaled"
        else:
            self.mode = "manual"
        self.clock = clock
        start = clock.time() if clock is not None else self.scenario.start.timestamp()
        if ring_cycle_s is None:  # one ring = the policy's cadence (China: 1 s on + 4 s off)
            try:
                from cti.policy import load_policy

                ring_cycle_s = load_policy().ring.cycle_s
            except Exception:  # a broken policy file must not stop the PBX; Asterisk's cn cadence
                ring_cycle_s = 5.0
        # the simulated Asterisk: core, app_queue, MixMonitor, the people on the phones, the flows
        core = Core(self.scenario, start=start, seed=seed, agi_url=agi_url, ring_cycle_s=ring_cycle_s)
        self.pbx = Pbx(core, write_audio=write_audio)
        self.core = self.pbx.core  # channels, endpoints, the virtual clock, the ledger
        self.engine = self.core  # its name before the split (issue 11), used by rehearsal and bench
        self.core.sinks.append(self._sink)
        self.pbx.on_agi_request = self._start_agi
        self.ami = AmiServer(
            self, self.scenario.ami_users, self.scenario.ami_excludes, auth_fail_delay=auth_fail_delay
        )
        self.ami_host, self.ami_port = ami_host, ami_port
        self.arrivals = arrivals
        base = seed if seed is not None else self.scenario.seed
        # Separate streams: who calls and when is a plan fixed by the seed; what happens in a call
        # (AGI choices, injected calls) draws from its own stream at moments that depend on timing.
        # One shared stream let the count of calls in the ad's hour vary with machine load.
        self.arrival_rng = random.Random(base + 7)
        self.rng = random.Random(base + 11)
        self._held: list[Event] | None = None
        self._listeners: list[Callable[[Event], None]] = []
        self.events: list[Event] = []
        self._record = record_events
        self._agi_busy = 0
        self._agi_tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._target = self.core.now
        self._driver: asyncio.Task[None] | None = None
        self._stopping = False
        self.end_time = start + self.scenario.duration_s
        self.finished = asyncio.Event()
        # called (agent config, on shift?) when a scenario agent's phone registers / unregisters
        self.on_shift: list[Callable[[AgentConfig, bool], None]] = []
        self.traffic = Traffic(self.pbx, self.scenario, self.arrival_rng, self.end_time, self.on_shift)
        self.pbx.own_dids = set(self.scenario.dids) | {a.did for a in self.scenario.agents if a.did}
        for a in self.scenario.agents:
            if not a.shift:
                self.core.endpoints[a.id].registered = True
                self.core.endpoints[a.id].last_state = "NOT_INUSE"

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        self.ami_port = await self.ami.start(self.ami_host, self.ami_port)
        if self.arrivals:
            self.traffic.start()
        self._driver = asyncio.create_task(self._drive(), name="sim-driver")

    async def close(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._driver is not None:
            self._driver.cancel()
            try:
                await self._driver
            except asyncio.CancelledError:
                pass
        tasks = list(self._agi_tasks)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await self.ami.close()

    @property
    def now(self) -> float:
        return self.core.now

    def now_dt(self) -> datetime:
        return datetime.fromtimestamp(self.core.now, UTC)

    # ------------------------------------------------------------------ events
    def _sink(self, ev: Event) -> None:
        if self._held is not None:
            self._held.append(ev)
        else:
            self.deliver(ev)

    def deliver(self, ev: Event) -> None:
        if self._record:
            self.events.append(ev)
        if self.ami.sessions:
            self.ami.broadcast(ev)
        for fn in self._listeners:
            fn(ev)

    def hold_events(self, into: list[Event] | None) -> None:
        self._held = into

    def subscribe(self, fn: Callable[[Event], None]) -> None:
        """In-process listener for every event (name, cls, ts, pairs)."""
        self._listeners.append(fn)

    @staticmethod
    def encode(ev: Event) -> bytes:
        return event_bytes(ev)

    # ------------------------------------------------------------------ the driver
    def sync_clock(self) -> None:
        if self.mode == "scaled" and self.clock is not None:
            self.core.now = max(self.core.now, self.clock.time())

    def kick(self) -> None:
        self._wake.set()

    def _limit(self) -> float:
        if self.mode == "manual":
            return self._target
        if self.mode == "fast":
            return float("inf")
        assert self.clock is not None
        return self.clock.time()

    async def _drive(self) -> None:
        e = self.core
        n = 0
        manual_clock = self.clock if isinstance(self.clock, ManualClock) else None
        while not self._stopping:
            if self._agi_busy and self.mode != "scaled":
                self._wake.clear()
                await self._wake.wait()
                continue
            t = e.next_time()
            if t != float("inf") and t <= self._limit():
                try:
                    e.run_next()
                except Exception:  # a bug in one call's flow must not stop the whole PBX
                    log.exception("sim.event_failed", now=e.now)
                if manual_clock is not None and e.now > manual_clock.time():
                    manual_clock.advance(e.now - manual_clock.time())
                n += 1
                if n % 256 == 0:
                    await asyncio.sleep(0)
                    if self.ami.buffered() > 1 << 20:
                        await self.ami.drain()
                continue
            if self.mode == "manual" and self._target > e.now:
                self._advance_clock(self._target)
            if self.mode == "fast" and self.arrivals and e.now >= self.end_time and e.calls_active == 0:
                self.finished.set()
            self._idle.set()
            self._wake.clear()
            if self.mode == "scaled" and t != float("inf"):
                assert isinstance(self.clock, ScaledClock | SystemClock)
                speed = self.clock.speed if isinstance(self.clock, ScaledClock) else 1.0
                wait = max(0.0, (t - self.clock.time()) / speed)
                try:
                    await asyncio.wait_for(self._wake.wait(), min(wait, 1.0))
                except TimeoutError:
                    pass
                self.sync_clock()
            else:
                await self._wake.wait()
            self._idle.clear()

    def _advance_clock(self, t: float) -> None:
        self.core.now = t
        if isinstance(self.clock, ManualClock) and t > self.clock.time():
            self.clock.advance(t - self.clock.time())

    async def advance(self, seconds: float = 0.0) -> None:
        """Manual mode: run everything due in the next `seconds` of virtual time (AGI sessions included)."""
        if self.mode != "manual":
            await asyncio.sleep(0)
            return
        self._target = max(self._target, self.core.now) + max(0.0, seconds)
        while True:
            self._idle.clear()
            self._wake.set()
            await self._idle.wait()
            if not self._agi_busy and self.core.next_time() > self._target:
                break
        for _ in range(3):
            await asyncio.sleep(0)

    async def settle(self) -> None:
        await self.advance(0)

    async def run_until_finished(self, timeout: float | None = None) -> None:
        """Fast / scaled mode with arrivals: until the scenario's end and every call is over."""
        await asyncio.wait_for(self.finished.wait(), timeout)

    # ------------------------------------------------------------------ FastAGI
    def _start_agi(self) -> None:
        while self.pbx.agi_requests:
            call, script = self.pbx.agi_requests.pop(0)
            self._agi_busy += 1
            task = asyncio.get_running_loop().create_task(self._run_agi(call, script))
            self._agi_tasks.add(task)
            task.add_done_callback(self._agi_tasks.discard)

    async def _run_agi(self, call: InboundFlow, script: str) -> None:
        try:
            status, hungup = await agi_mod.run_session(self.core, call, script, self.rng)
        except Exception:  # an AGI server bug must not kill the PBX
            status, hungup = "FAILURE", False
        finally:
            self._agi_busy -= 1
        self.sync_clock()
        try:
            call.agi_finished(status, hungup)
        except Exception:
            log.exception("sim.agi_continue_failed", channel=call.caller.name)
        self._wake.set()

    # ------------------------------------------------------------------ test / demo control
    def add_agent(
        self,
        agent_id: str,
        name: str | None = None,
        *,
        registered: bool = True,
        profile: AgentProfile | None = None,
    ) -> None:
        ep = self.core.add_endpoint(agent_id, name or agent_id, registered=registered)
        ep.last_state = "NOT_INUSE" if registered else "UNAVAILABLE"
        if profile is not None:
            self.pbx.people.profiles[agent_id] = profile

    async def load_agents(self, conn: Any) -> int:
        """Take the agents' phones from the center's own tables, as Asterisk's realtime driver does
        (decision 0306): every active agent with a `ps_endpoints` row gets a phone here; a phone whose
        row is gone (a disabled agent) is unregistered, because Asterisk would refuse its REGISTER.
        Their DIDs loop back in on a line test. Returns how many phones the table gives."""
        rows = await conn.fetch(
            """SELECT a.id, a.name, a.did FROM agents a JOIN ps_endpoints e ON e.id = a.id
               WHERE a.active ORDER BY a.id"""
        )
        known = {r["id"] for r in rows}
        for r in rows:
            if r["id"] not in self.core.endpoints:
                self.add_agent(r["id"], r["name"])
            if r["did"]:
                self.pbx.own_dids.add(r["did"])
        for ep_id, ep in list(self.core.endpoints.items()):
            if ep_id not in ("trunk", "pstn") and ep_id not in known and ep.registered:
                self.core.register(ep_id, False)
        self.kick()
        return len(rows)

    def register(self, agent_id: str, registered: bool = True) -> None:
        self.core.register(agent_id, registered)
        self.kick()

    def login(
        self, agent_id: str, queue: str = "sales", penalty: int = 0, paused: bool = False, reason: str = ""
    ) -> str | None:
        """Test helper: the QueueAdd a CTI would send (capture 17's headers), applied directly, for
        tests of the PBX side that have no CTI attached. The simulator never calls it by itself."""
        err = self.pbx.app_queue.add(
            queue,
            f"PJSIP/{agent_id}",
            penalty=penalty,
            paused=paused,
            reason=reason,
            member_name=agent_id,
            state_interface=f"PJSIP/{agent_id}",
        )
        self.kick()
        return err

    def logout(self, agent_id: str, queue: str = "sales") -> str | None:
        """Test helper: the QueueRemove a CTI would send, applied directly (see `login`)."""
        err = self.pbx.app_queue.remove(queue, f"PJSIP/{agent_id}")
        self.kick()
        return err

    def pause_at_phone(self, agent_id: str, paused: bool, reason: str = "") -> str | None:
        err = self.pbx.app_queue.pause(None, f"PJSIP/{agent_id}", paused, reason)
        self.kick()
        return err

    def set_answer(self, agent_id: str, mode: str = "auto", delay: float | None = None) -> None:
        """mode: auto (profile or fixed `delay`), never (rings out), manual (call `answer()`)."""
        if mode not in ("auto", "never", "manual"):
            raise ValueError(f"answer mode must be auto, never or manual, not {mode!r}")
        people = self.pbx.people
        people.answer_mode[agent_id] = mode
        if delay is None:
            people.answer_delay_override.pop(agent_id, None)
        else:
            people.answer_delay_override[agent_id] = delay

    def answer(self, agent_id: str) -> bool:
        legs = self.core.ringing_legs(agent_id)
        if not legs:
            return False
        self.core.answer_leg(legs[0])
        self.kick()
        return True

    def agent_presses(self, agent_id: str, digits: str) -> bool:
        """The agent keys `digits` on the phone during an answered inbound call: the transfer-to-survey
        key (`*0`, features.conf) ends the agent's leg and sends the caller to [cti-survey], marked as
        sent by the key (cti.sim.inbound.InboundFlow.agent_key; no capture exists, it follows the
        Asterisk 22 Custom Dynamic Features docs). True when the key did that; False when the agent is
        on no such call or keyed anything else (those keys reach the customer and change nothing)."""
        ep = self.core.endpoints.get(agent_id)
        if ep is None:
            raise ValueError(f"unknown agent {agent_id!r}")
        self.sync_clock()
        for ch in list(ep.channels):
            flow = ch.call
            if isinstance(flow, InboundFlow) and flow.agent_ch is ch and flow.agent_key(digits):
                self.kick()
                return True
        return False

    def set_trunk(self, up: bool) -> None:
        """Take the carrier trunk down (its contact Unreachable, capture 18) or bring it back: while
        down, a callback's Dial to the customer ends CHANUNAVAIL without a customer channel."""
        self.core.endpoints["pstn"].registered = up

    def set_carrier_loop(self, mode: str = "ok") -> None:
        """How the carrier treats a line test's call to one of our DIDs (cti/sim/carrier_loop.py): "ok"
        delivers it back in through [from-trunk], "congestion" refuses it, "lost" answers it and never
        delivers it. No capture exists of this loop."""
        if mode not in ("ok", "congestion", "lost"):
            raise ValueError(f"unknown carrier loop mode {mode!r}")
        self.pbx.carrier_loop = mode

    def set_customer(
        self, number: str, outcome: str = "answer", delay: float = 3.0, talk_time: float | None = None
    ) -> None:
        """How a dialled customer reacts: answer | noanswer | busy | congestion after `delay` s; an
        answering customer hangs up after `talk_time` s."""
        if outcome not in ("answer", "noanswer", "busy", "congestion"):
            raise ValueError(f"unknown customer outcome {outcome!r}")
        self.pbx.people.customer_outcomes[number] = (outcome, delay, talk_time)

    def place_call(
        self,
        caller: str,
        did: str,
        name: str = "",
        behaviour: dict[str, Any] | None = None,
        at: float | None = None,
    ) -> CallSpec:
        """Inject one inbound call now (or `at` seconds from now). behaviour keys: patience, dtmf,
        talk_time, hangup_first ('caller'|'agent'), message_s, ivr_hangup_after, ivr_hangup_script."""
        b = dict(behaviour or {})
        prof = self.scenario.caller
        spec = CallSpec(
            caller=caller,
            did=did,
            name=name,
            patience=float(b.pop("patience", prof.patience.sample(self.rng))),
            dtmf=list(b.pop("dtmf", prof.dtmf)),
            talk_time=b.pop("talk_time", None),
            hangup_first=b.pop("hangup_first", None),
            ivr_hangup_after=b.pop("ivr_hangup_after", None),
            ivr_hangup_script=b.pop("ivr_hangup_script", None),
            message_s=float(b.pop("message_s", prof.message_s)),
        )
        if b:
            raise ValueError(f"unknown behaviour keys: {sorted(b)}")
        self.sync_clock()
        self.core.after(at or 0.0, self.pbx.place_call, spec)
        self.kick()
        return spec

    def hangup_channel(self, ch: Channel, cause: int = 16) -> None:
        self.pbx.hangup(ch, cause)
        self.kick()

    # ------------------------------------------------------------------ truth for tests
    def channels(self) -> list[dict[str, Any]]:
        return [
            {
                "channel": c.name,
                "uniqueid": c.uniqueid,
                "linkedid": c.linkedid,
                "state": c.state,
                "caller_id_num": c.cid_num,
                "caller_id_name": c.cid_name,
                "connected_num": c.conn_num,
                "bridge": c.bridge.uniqueid if c.bridge else None,
            }
            for c in self.core.channels.values()
        ]

    def queue_members(self, queue: str = "sales") -> list[dict[str, Any]]:
        app_queue = self.pbx.app_queue
        q = app_queue.queues[queue]
        return [
            {
                "name": m.name,
                "interface": m.interface,
                "penalty": m.penalty,
                "paused": m.paused,
                "paused_reason": m.paused_reason,
                "status": app_queue.member_status(m),
                "in_call": m.in_call,
                "calls_taken": m.calls_taken,
            }
            for m in q.members.values()
        ]

    def queue_callers(self, queue: str = "sales") -> list[str]:
        return [en.call.caller.name for en in self.pbx.app_queue.queues[queue].entries]

    @property
    def agents(self) -> list[dict[str, Any]]:
        return self.scenario.agents_table()

    @property
    def stats(self) -> Any:
        return self.core.stats

    def summary(self) -> dict[str, Any]:
        s = self.core.stats
        return {
            "offered": s.offered,
            "answered": s.answered,
            "answered_within_two_rings": s.answered_two_rings,
            "abandoned": s.abandoned,
            "queue_timeouts": s.timed_out,
            "queue_joinempty": s.joinempty,
            "ivr_hangups": s.ivr_hangups,
            "answered_pct": round(100.0 * s.answered / s.offered, 1) if s.offered else 0.0,
            "two_ring_pct": round(100.0 * s.answered_two_rings / s.answered, 1) if s.answered else 0.0,
            "avg_wait_s": round(s.wait_total / s.answered, 1) if s.answered else 0.0,
            "max_wait_s": round(s.max_wait, 1),
            "night": s.night,
            "callback_offer": s.callback_offer,
            "max_concurrent_calls": s.max_concurrent_calls,
            "events": s.events,
        }

    # ------------------------------------------------------------------ Asterisk restart
    def restart_asterisk(self, modules_s: float = 0.6) -> None:
        """`core restart now` (capture 17): every channel is hung up (Cause 16), then `Event: Shutdown`
        (Shutdown: Cleanly, Restart: True) and EOF on every AMI session without a Goodbye. Asterisk
        comes back with no queue members and zeroed queue stats; for `modules_s` (virtual time) AMI
        logins work but app_queue's actions answer `Invalid/unknown command` (capture 17: ~0.6 s).
        PJSIP contacts persist and are re-qualified by the timer (Status 5 until then)."""
        e = self.core
        for ch in sorted(e.channels.values(), key=lambda c: c.name):
            if not ch.hungup:
                self.hangup_channel(ch, 16)
        while e.next_time() <= e.now:  # the hang-ups' own consequences, before the PBX goes away
            e.run_next()
        e.emit("Shutdown", "system", [("Shutdown", "Cleanly"), ("Restart", "True")])
        self.ami.drop_all()
        self.pbx.restart()
        self.ami.booting_until = e.now + modules_s
        self.kick()

"""The evening with several CTI processes (issue 18): the simulated PBX in this process, N CTI
processes as subprocesses (cti.cluster.child) on one database and one virtual time, all on the
simulator's AMI, FastAGI served by process 0 (the others' FastAGI listens but no call is sent there).
The drill SIGKILLs the leader a few minutes into the ad and measures how long the site had no leader.

Used by `cti demo --processes N`, `python -m bench.scale` and tests/cluster. Figures are those of
`cti.rehearsal.summarise` (lost against the simulator's ledger) plus `agents_double_booked` and
`failover_s`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import structlog
from pydantic import SecretStr

from cti.agents.service import AgentService
from cti.ami.client import AMIClient
from cti.callbacks.ami_adapter import ami_action
from cti.clock import ScaledClock
from cti.config import Settings
from cti.facts.repo import rebuild
from cti.policy import Policy
from cti.rehearsal import Rehearsal, free_port, load_phones, summarise
from cti.sim.cdr import CdrWriter
from cti.sim.scenario import Scenario, parse_scenario
from cti.sim.simulator import Simulator
from cti.store.events import EventStore

log = structlog.get_logger(__name__)

# Two live attempts to one agent overlapping by more than this (sim seconds) are a double booking. The
# margin absorbs the two processes' clock reads around one release/claim (a few ms of wall time); a
# real double booking overlaps by a whole ring (the issue saw pairs within 2 s, each ringing ~15 s).
OVERLAP_S = 2.0

DOUBLE_BOOKED = """
WITH live AS (
    SELECT agent, recorded_at AS s, coalesce(resolved_at, 'infinity') AS e, channel_id AS ref
    FROM callback_attempts WHERE recorded_at >= $1
    UNION ALL
    SELECT agent, dialed_at, coalesce(ended_at, 'infinity'), channel_id
    FROM dials WHERE agent IS NOT NULL AND dialed_at >= $1)
SELECT count(*) FROM live a JOIN live b ON a.agent = b.agent AND a.ref < b.ref
 AND LEAST(a.e, b.e) - GREATEST(a.s, b.s) > make_interval(secs => $2)
"""


def scenario_for(path: Path, size: float = 1.0, after_ad_s: float = 1500.0) -> Scenario:
    """The scenario at `size` (1: as shipped). Smaller: fewer agents and calls in the same proportion,
    and the ad five minutes in with the evening ending `after_ad_s` after it (tests, a quick bench)."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    if size < 1.0:
        sim, arr = data["sim"], data["arrivals"]
        sim["agent_count"] = max(4, round(int(sim["agent_count"]) * size))
        arr["hourly"] = [h * size for h in arr["hourly"]]
        for ad in arr.get("ads", []):
            ad["peak_per_min"] = ad["peak_per_min"] * size
            ad["at_s"] = 300
        sim["duration_s"] = 300 + after_ad_s
    return parse_scenario(data, name=path.stem)


@dataclass
class Child:
    index: int
    proc: asyncio.subprocess.Process
    process: str = ""  # host:pid, as it names itself in leases and leader_terms
    killed: bool = False
    log: Any = None  # its stderr, when kept


@dataclass
class ClusterRehearsal:
    scenario_path: Path
    dsn: str
    settings: Settings
    policy: Policy
    processes: int = 2
    size: float = 1.0
    after_ad_s: float = 1500.0  # with size < 1: how long the evening goes on after the ad
    speed: float = 20.0
    kill_leader_after_ad_s: float | None = None  # the drill: SIGKILL the leader this long into the ad
    drain_s: float = 3 * 3600.0
    sample_every_s: float = 60.0
    progress: Callable[[dict[str, Any]], None] | None = None
    log_dir: Path | None = None
    web_port: int = 0  # >0: process 0 serves the monitor there (cti demo)
    children: list[Child] = field(default_factory=list)
    failover_s: float | None = None
    max_backlog: int = 0
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> dict[str, Any]:
        scenario = scenario_for(self.scenario_path, self.size, self.after_ad_s)
        base = Rehearsal(scenario, self.dsn, self.settings, self.policy, speed=self.speed)
        await base.prepare()
        clock = ScaledClock(scenario.start, self.speed)
        ami_port, agi_port = free_port(), free_port()
        wall0 = time.monotonic()
        sim = Simulator(scenario, clock=clock, ami_port=ami_port, agi_url=f"agi://127.0.0.1:{agi_port}",
                        arrivals=True, write_audio=False)  # fmt: skip
        await load_phones(sim, self.dsn)
        cdr = CdrWriter(self.dsn)
        sim.engine.on_call_record = cdr.record
        await cdr.start()
        await sim.start()
        logins: _Logins | None = None
        try:
            # the non-FastAGI processes first: the first of them becomes leader, so the drill's SIGKILL
            # tests leadership, not FastAGI (a dead FastAGI server sends calls to the queue, 08b)
            for i in [*range(1, self.processes), 0]:
                port = agi_port if i == 0 else free_port()
                self.children.append(await self._spawn(i, scenario, clock, ami_port, port))
                if i == (1 if self.processes > 1 else 0):
                    await self._wait_leader()
            logins = _Logins(self.dsn, self.settings, self.policy, scenario, clock, ami_port)
            await logins.start(sim)
            await self._watch(scenario, clock, sim)
        finally:
            if logins is not None:
                await logins.close()
            await self._stop_children()
            await sim.close()
            await cdr.close()
        wall = time.monotonic() - wall0
        sim_s = (clock.now() - scenario.start).total_seconds()
        conn = await asyncpg.connect(self.dsn)
        try:
            t0 = scenario.start - timedelta(minutes=1)
            await rebuild(conn, t0, self.policy.ring)
            out = await summarise(conn, scenario, self.policy, wall_s=wall, sim_s=sim_s,
                                  max_backlog=self.max_backlog, ledger=sim.engine.ledger)  # fmt: skip
            double = await conn.fetchval(DOUBLE_BOOKED, t0, OVERLAP_S)
            leaders = await conn.fetchval("SELECT token FROM leader_terms WHERE name = 'site'")
        finally:
            await conn.close()
        # every process resyncs once when it connects: only resyncs beyond those are reconnects
        out["ami_reconnects"] = max(0, out["ami_reconnects"] + 1 - self.processes)
        return {"processes": self.processes, "size": self.size, "speed": self.speed,
                "agents_double_booked": int(double), "leader_elections": leaders,
                "leader_killed": any(c.killed for c in self.children), "failover_s": self.failover_s,
                **out}  # fmt: skip

    async def _spawn(
        self, i: int, scenario: Scenario, clock: ScaledClock, ami_port: int, agi_port: int
    ) -> Child:
        data_dir = tempfile.mkdtemp(prefix=f"cti-cluster-{i}-")
        err: Any = asyncio.subprocess.DEVNULL
        if self.log_dir is not None:
            err = await asyncio.to_thread(open, self.log_dir / f"cti-{i}.log", "wb")  # the child's stderr
        args = {"dsn": self.dsn, "scenario": str(self.scenario_path), "size": self.size,
                "after-ad-s": self.after_ad_s, "data-dir": data_dir,
                "start": scenario.start.isoformat(), "speed": self.speed, "anchor": clock.anchor,
                "ami-port": ami_port, "agi-port": agi_port}  # fmt: skip
        if i == 0 and self.web_port:
            args["web-port"] = self.web_port
        argv = [x for k, v in args.items() for x in (f"--{k}", repr(v) if isinstance(v, float) else str(v))]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cti.cluster.child", *argv,
            stdout=asyncio.subprocess.PIPE, stderr=err, env={**os.environ},
        )  # fmt: skip
        child = Child(i, proc, log=None if err is asyncio.subprocess.DEVNULL else err)
        assert proc.stdout is not None
        while True:  # listening, then connected (the simulator is up)
            line = (await asyncio.wait_for(proc.stdout.readline(), 120)).decode()
            if not line:
                raise RuntimeError(f"CTI process {i} exited while starting (exit {await proc.wait()})")
            word, _, name = line.strip().partition(" ")
            child.process = name or child.process
            if word == "connected":
                return child

    async def _leader(self) -> tuple[int, str] | None:
        conn = await asyncpg.connect(self.dsn)
        try:
            r = await conn.fetchrow("SELECT token, holder FROM leader_terms WHERE name = 'site'")
        finally:
            await conn.close()
        return None if r is None else (int(r["token"]), str(r["holder"]))

    async def _wait_leader(self, *, after: int = 0, timeout: float = 30.0) -> tuple[int, str]:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            got = await self._leader()
            if got is not None and got[0] > after:
                return got
            await asyncio.sleep(0.05)
        raise RuntimeError("no CTI process became leader")

    async def _drill(self) -> None:
        """SIGKILL the leader; failover = wall seconds until another process holds a new term."""
        got = await self._leader()
        assert got is not None
        token, holder = got
        victim = next(c for c in self.children if c.process == holder)
        log.warning("drill_sigkill_leader", process=holder, token=token)
        t0 = time.monotonic()
        victim.proc.send_signal(signal.SIGKILL)
        victim.killed = True
        if self.processes > 1:
            await self._wait_leader(after=token)
            self.failover_s = round(time.monotonic() - t0, 2)

    async def _watch(self, scenario: Scenario, clock: ScaledClock, sim: Simulator) -> None:
        end = scenario.start + timedelta(seconds=scenario.duration_s)
        give_up = end + timedelta(seconds=self.drain_s)
        kill_at = None
        if self.kill_leader_after_ad_s is not None and scenario.ads:
            kill_at = scenario.start + timedelta(seconds=scenario.ads[0].at_s + self.kill_leader_after_ad_s)
        drill: asyncio.Task[None] | None = None
        conn = await asyncpg.connect(self.dsn)
        try:
            while not self._stop.is_set():
                step = self.sample_every_s
                if drill is None and kill_at is not None:
                    step = min(step, max(1.0, (kill_at - clock.now()).total_seconds()))
                await clock.sleep(step)
                now = clock.now()
                if drill is None and kill_at is not None and now >= kill_at:
                    drill = asyncio.create_task(self._drill(), name="drill")
                backlog = int(await conn.fetchval(
                    "SELECT count(*) FROM callbacks WHERE status IN ('open', 'dialing')"))  # fmt: skip
                self.max_backlog = max(self.max_backlog, backlog)
                if self.progress:
                    self.progress({"sim_time": now, "callbacks_open": backlog, **sim.summary()})
                over = now >= end and sim.engine.calls_active == 0
                if (over and backlog == 0 and (drill is None or drill.done())) or now >= give_up:
                    break
        finally:
            await conn.close()
            if drill is not None:
                await drill

    async def _stop_children(self) -> None:
        for c in self.children:
            if c.proc.returncode is None:
                c.proc.send_signal(signal.SIGTERM)
        for c in self.children:
            try:
                await asyncio.wait_for(c.proc.wait(), 30)
            except TimeoutError:
                c.proc.kill()
                await c.proc.wait()
            if c.log is not None:
                c.log.close()


class _Logins:
    """The agents' *11 / shift-end logouts through the CTI's login service (R-LOGIN), as Rehearsal
    does in-process; here its own AMI session and store, beside the CTI processes."""

    def __init__(self, dsn: str, settings: Settings, policy: Policy, scenario: Scenario, clock: ScaledClock,
                 ami_port: int) -> None:  # fmt: skip
        self.dsn, self.policy, self.scenario, self.clock = dsn, policy, scenario, clock
        secret = scenario.ami_users.get("cti", ("cti", "all"))[0]
        self.ami_settings = settings.ami.model_copy(update={
            "host": "127.0.0.1", "port": ami_port, "username": "cti", "secret": SecretStr(secret),
            "ping_interval_s": 10.0})  # fmt: skip
        self.spool = Path(tempfile.mkdtemp(prefix="cti-cluster-logins-"))
        self.tz = settings.tz
        self.tasks: set[asyncio.Task[Any]] = set()

    async def start(self, sim: Simulator) -> None:
        self.pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=3)
        self.store = EventStore(self.dsn, self.spool, clock=self.clock)
        await self.store.start()
        self.ami = AMIClient.from_settings(self.ami_settings)
        await self.ami.start(retry=True)
        pool = self.pool

        async def in_peak() -> bool:  # the leader's persisted state: a logout in peak is refused
            return bool(await pool.fetchval("SELECT in_peak FROM peak_state"))

        self.svc = AgentService(self.pool, policy=self.policy, clock=self.clock, events=self.store,
                                ami_action=ami_action(self.ami), in_peak=in_peak, tz=self.tz)  # fmt: skip
        by_id = {a.id: a for a in self.scenario.agents}

        async def change(agent_id: str, on: bool) -> None:
            a = by_id[agent_id]
            d = await (
                self.svc.login(a.id, queues=a.queues, penalty=a.penalty) if on else self.svc.logout(a.id)
            )
            if not d.allowed:
                log.info("rehearsal_agent_request_refused", agent=a.id, code=d.code)

        def on_shift(a: Any, on: bool) -> None:
            task = asyncio.create_task(change(a.id, on), name=f"cluster-login-{a.id}")
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

        sim.on_shift.append(on_shift)
        for a in self.scenario.agents:
            if sim.engine.endpoints[a.id].registered:
                await change(a.id, True)

    async def close(self) -> None:
        for t in list(self.tasks):
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.ami.close()
        await self.store.close()
        await self.pool.close()

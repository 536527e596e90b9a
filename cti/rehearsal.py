"""A rehearsal: the simulated PBX runs a scenario (a TV-ad evening) against the whole CTI server, on
one shared clock, and the result is read back from PostgreSQL: offered, answered within two rings,
callbacks, time to callback, backlog, and lost callers (who were neither answered nor given a callback).

Used by `cti demo` (at a speed a person can watch), `python -m bench.peak` (as fast as the CTI keeps
up with) and the end-to-end tests. The simulator and the CTI share a ScaledClock: both see the same
virtual time, so ring cadences, hold times and callback backoff keep their meaning at any speed.
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import asyncpg
import structlog
from pydantic import SecretStr

from cti import outbound_rehearsal
from cti.app import CtiServer
from cti.callbacks.offer import callable_number
from cti.clock import ScaledClock
from cti.config import Settings
from cti.drill.proxy import TcpProxy
from cti.facts.repo import rebuild
from cti.outbound import campaigns as outbound_campaigns
from cti.peak import repo as peak_repo
from cti.policy import Policy
from cti.sim.cdr import CdrWriter
from cti.sim.scenario import Scenario, seed_agents
from cti.sim.simulator import Simulator

log = structlog.get_logger(__name__)

AD_LENGTH_S = 60  # a TV spot; the peak tail (policy) follows it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def load_phones(sim: Simulator, dsn: str) -> None:
    """The phones Asterisk would accept: the provisioned ones (also for cti.cluster.rehearsal)."""
    conn = await asyncpg.connect(dsn)
    try:
        await sim.load_agents(conn)
    finally:
        await conn.close()


@dataclass
class Rehearsal:
    scenario: Scenario
    dsn: str
    settings: Settings
    policy: Policy
    speed: float = 20.0
    drain_s: float = 3 * 3600.0  # sim seconds after the last arrival to let callbacks finish
    web: bool = False
    restart_at_s: float | None = None  # restart the CTI this many sim seconds in (tests, drills)
    progress: Callable[[dict[str, Any]], None] | None = None
    on_facts_written: Callable[[list[Any], float], None] | None = None  # each batch of call facts written
    # drills (bench.drills): the CTI's own DSN (a proxy in front of PostgreSQL), a proxy the CTI's AMI
    # link goes through, one in front of its FastAGI port, and a script run alongside the evening
    cti_dsn: str | None = None
    ami_proxy: TcpProxy | None = None
    agi_proxy: TcpProxy | None = None
    script: Callable[[Rehearsal], Awaitable[None]] | None = None
    clock: ScaledClock | None = None
    sample_every_s: float = 60.0
    max_backlog: int = 0
    restarts: int = 0
    cdr_dropped: int = 0  # CDR rows the simulated cdr_pgsql lost while PostgreSQL was away
    cti: CtiServer | None = None
    sim: Simulator | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _login_tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    # an outbound day (scenario [outbound]): the campaign, the agents' panels posting dispositions
    campaign_id: int | None = None
    panels: outbound_rehearsal.AgentPanels | None = None
    _agent_passwords: dict[str, str] = field(default_factory=dict)
    _campaign_stopped: bool = False

    def stop(self) -> None:
        self._stop.set()

    async def _prepare(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            await seed_agents(conn, self.scenario)
            if self.scenario.outbound is not None:
                prepared = await outbound_rehearsal.prepare(conn, self.scenario)
                self.campaign_id, self._agent_passwords = prepared
            for i, ad in enumerate(self.scenario.ads):
                start = self.scenario.start + timedelta(seconds=ad.at_s)
                exists = await conn.fetchval(
                    "SELECT 1 FROM media_airings WHERE starts_at = $1 AND program = $2",
                    start, f"{self.scenario.name} #{i + 1}",
                )  # fmt: skip
                if not exists:
                    await peak_repo.add_airing(
                        conn, channel="TV", program=f"{self.scenario.name} #{i + 1}", starts_at=start,
                        duration_s=AD_LENGTH_S, expected_calls=int(ad.peak_per_min * ad.decay_min),
                        by="rehearsal",
                    )  # fmt: skip
        finally:
            await conn.close()

    async def prepare(self) -> None:
        """The scenario's agents and airings in the database (also for cti.cluster.rehearsal)."""
        await self._prepare()

    def cti_server(self, clock: ScaledClock, ami_port: int, agi_port: int) -> CtiServer:
        """The CTI process as the rehearsal runs it (also in the subprocesses of cti.cluster.rehearsal)."""
        return self._cti(clock, ami_port, agi_port)

    def _cti(self, clock: ScaledClock, ami_port: int, agi_port: int) -> CtiServer:
        secret = self.scenario.ami_users.get("cti", ("cti", "all"))[0]
        ami = self.settings.ami.model_copy(update={
            "host": "127.0.0.1", "port": ami_port, "username": "cti", "secret": SecretStr(secret),
            "ping_interval_s": 10.0,  # sim and CTI share one process: a busy loop is not a dead peer
        })  # fmt: skip
        agi = self.settings.agi.model_copy(update={"host": "127.0.0.1", "port": agi_port})
        update: dict[str, Any] = {"ami": ami, "agi": agi}
        outbound = self.scenario.outbound is not None
        if outbound and not self.web:  # the agents' panels post dispositions over HTTP: any free port
            update["web"] = self.settings.web.model_copy(update={"host": "127.0.0.1", "port": 0})
        s = self.settings.model_copy(update=update)
        dsn = self.cti_dsn or self.dsn
        return CtiServer(s, self.policy, dsn, clock=clock, web_enabled=self.web or outbound,
                         default_did=self.scenario.dids[0], facts_interval_s=1800.0,
                         facts_window_s=3600.0, on_facts_written=self.on_facts_written)  # fmt: skip

    async def run(self) -> dict[str, Any]:
        await self._prepare()
        clock = self.clock = ScaledClock(self.scenario.start, self.speed)
        ami_port, agi_port = free_port(), free_port()
        wall0 = time.monotonic()
        cti_ami_port, sim_agi_port = await self._fronts(ami_port, agi_port)
        self.cti = self._cti(clock, cti_ami_port, agi_port)
        await self.cti.start(connect=False)  # FastAGI listening before the first call arrives
        self.sim = Simulator(
            self.scenario, clock=clock, ami_port=ami_port, agi_url=f"agi://127.0.0.1:{sim_agi_port}",
            arrivals=True, write_audio=False,
        )  # fmt: skip
        await load_phones(self.sim, self.dsn)
        cdr = CdrWriter(self.dsn)  # the simulated Asterisk's cdr_pgsql
        self.sim.engine.on_call_record = cdr.record
        await cdr.start()
        await self.sim.start()
        try:
            await self.cti.connect()
            await self._log_agents_in()
            if self.scenario.outbound is not None:
                self.panels = outbound_rehearsal.AgentPanels(self._web_url(), self._agent_passwords)
                await self.panels.start()
                self.sim.pbx.outbound.on_verdict.append(self.panels.tell)
            await self._watch(clock, cti_ami_port, agi_port)
        finally:
            await self.sim.close()
            if self.panels is not None:
                await self.panels.close()  # the last dispositions, while the CTI still answers
            await self.cti.close()
            await cdr.close()
            self.cdr_dropped = cdr.dropped
        wall = time.monotonic() - wall0
        sim_s = (clock.now() - self.scenario.start).total_seconds()
        return await self.summary(wall, sim_s)

    def _web_url(self) -> str:
        assert self.cti is not None
        return f"http://127.0.0.1:{self.cti.web_port}"

    async def _stop_campaign(self) -> None:
        """The supervisor stops the campaign at the end of the day; calls under way finish."""
        conn = await asyncpg.connect(self.dsn)
        try:
            if self.campaign_id is not None:
                await outbound_campaigns.set_status(conn, self.campaign_id, "stopped", by="rehearsal")
        finally:
            await conn.close()
        self._campaign_stopped = True

    async def _fronts(self, ami_port: int, agi_port: int) -> tuple[int, int]:
        """The ports the CTI dials for AMI and the simulator dials for FastAGI: the proxies', if any."""
        if self.ami_proxy is not None:
            self.ami_proxy.target_port = ami_port
            ami_port = self.ami_proxy.port or await self.ami_proxy.start()
        if self.agi_proxy is not None:
            self.agi_proxy.target_port = agi_port
            agi_port = self.agi_proxy.port or await self.agi_proxy.start()
        return ami_port, agi_port

    async def _log_agents_in(self) -> None:
        """Agents join the queue the way the product lets them (R-LOGIN): through the CTI's login
        service, when their phone is up (at start, or when their shift registers it), as if each had
        dialed *11; they log out when the shift ends (refused during peak, as for a person). The
        simulator, like Asterisk, adds nobody by itself."""
        assert self.sim is not None
        pending: set[asyncio.Task[Any]] = set()
        by_id = {a.id: a for a in self.scenario.agents}

        async def change(agent_id: str, on: bool) -> None:
            svc = self.cti.agents if self.cti is not None else None
            if svc is None:
                return
            a = by_id[agent_id]
            d = await (svc.login(a.id, queues=a.queues, penalty=a.penalty) if on else svc.logout(a.id))
            if not d.allowed:
                log.info("rehearsal_agent_request_refused", agent=a.id, code=d.code)

        def on_shift(a: Any, on: bool) -> None:
            task = asyncio.create_task(change(a.id, on), name=f"rehearsal-login-{a.id}")
            pending.add(task)
            task.add_done_callback(pending.discard)

        self.sim.on_shift.append(on_shift)
        self._login_tasks = pending
        for a in self.scenario.agents:
            if self.sim.engine.endpoints[a.id].registered:
                await change(a.id, True)

    async def _open_callbacks(self) -> int:
        conn = await asyncpg.connect(self.dsn, timeout=5)
        try:
            return int(
                await conn.fetchval("SELECT count(*) FROM callbacks WHERE status IN ('open', 'dialing')")
            )
        finally:
            await conn.close()

    async def _watch(self, clock: ScaledClock, ami_port: int, agi_port: int) -> None:
        assert self.sim is not None
        end = self.scenario.start + timedelta(seconds=self.scenario.duration_s)
        give_up = end + timedelta(seconds=self.drain_s)
        script = asyncio.create_task(self.script(self), name="rehearsal-script") if self.script else None
        while not self._stop.is_set():
            await clock.sleep(self.sample_every_s)
            now = clock.now()
            try:
                backlog = await self._open_callbacks()
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
                # a drill restarted PostgreSQL under us: the evening goes on, the next sample counts
                log.warning("rehearsal_backlog_unknown", error=type(e).__name__)
                continue
            self.max_backlog = max(self.max_backlog, backlog)
            elapsed = (now - self.scenario.start).total_seconds()
            if self.restart_at_s is not None and not self.restarts and elapsed >= self.restart_at_s:
                await self._restart(clock, ami_port, agi_port)
            if self.campaign_id is not None and now >= end and not self._campaign_stopped:
                await self._stop_campaign()
            if self.progress:
                extra = {"outbound": outbound_rehearsal.progress(self.sim.pbx.outbound.ledger)}
                self.progress({"sim_time": now, "callbacks_open": backlog, **self.sim.summary(), **extra})
            arrivals_over = now >= end and self.sim.engine.calls_active == 0
            if script is not None and script.done():
                script.result()  # a drill that failed says so
            elif script is not None and now < give_up:
                continue  # a drill script still running holds the evening open
            if (arrivals_over and backlog == 0) or now >= give_up:
                break
        if script is not None and not script.done():
            script.cancel()

    async def _restart(self, clock: ScaledClock, ami_port: int, agi_port: int) -> None:
        """Kill the CTI mid-run and start a new one: nothing may be lost, nobody dialed twice."""
        assert self.cti is not None
        log.warning("rehearsal_restarting_cti")
        await self.cti.close()
        self.cti = self._cti(clock, ami_port, agi_port)
        await self.cti.start()
        if self.panels is not None:
            self.panels.base_url = self._web_url()
        self.restarts += 1

    async def summary(self, wall_s: float, sim_s: float) -> dict[str, Any]:
        conn = await asyncpg.connect(self.dsn)
        try:
            await rebuild(conn, self.scenario.start - timedelta(minutes=1), self.policy.ring)
            ledger = self.sim.engine.ledger if self.sim is not None else []
            out = await summarise(
                conn, self.scenario, self.policy, wall_s=wall_s, sim_s=sim_s, max_backlog=self.max_backlog,
                restarts=self.restarts, ledger=ledger,
            )  # fmt: skip
            if self.campaign_id is not None and self.sim is not None:
                out["outbound"] = await outbound_rehearsal.summarise(
                    conn, self.scenario, self.policy, self.campaign_id, self.sim.pbx.outbound.ledger,
                    self.panels,
                )  # fmt: skip
            return out
        finally:
            await conn.close()


_INBOUND = "linkedid NOT LIKE 'cti-cb-%' AND linkedid NOT LIKE 'cti-ob-%' AND started_at >= $1"


async def summarise(
    conn: asyncpg.Connection, scenario: Scenario, policy: Policy, *, wall_s: float, sim_s: float,
    max_backlog: int = 0, restarts: int = 0, ledger: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Figures from PostgreSQL; with the simulator's ledger (every call it placed, answered by a person
    or not), `offered` and `lost` are the truth, including calls the CTI never saw."""
    t0 = scenario.start - timedelta(minutes=1)
    calls = await conn.fetch(
        f"SELECT linkedid, caller_num, outcome, rings_to_answer, started_at FROM call_facts WHERE {_INBOUND}",
        t0,
    )
    answered = [c for c in calls if c["outcome"] == "answered"]
    within = [
        c
        for c in answered
        if c["rings_to_answer"] is not None and c["rings_to_answer"] <= policy.ring.max_rings
    ]
    cbs = await conn.fetch(
        """SELECT c.id, c.number, c.status, c.outcome, c.first_call_at, c.call_count,
                  (SELECT min(a.agent_answered_at) FROM callback_attempts a
                    WHERE a.callback_id = c.id AND a.outcome = 'reached') AS reached_at
           FROM callbacks c WHERE c.first_call_at >= $1""",
        t0,
    )
    numbers_with_callback = {c["number"] for c in cbs}
    unanswered = [c for c in calls if c["outcome"] != "answered"]
    lost = [c for c in unanswered if (c["caller_num"] or "") not in numbers_with_callback]
    truth: dict[str, Any] = {}
    if ledger is not None:
        missed = [callable_number(c["number"]) for c in ledger if not c["answered"]]
        withheld = sum(1 for n in missed if n is None)
        lost_callable = sum(1 for n in missed if n is not None and n not in numbers_with_callback)
        truth = {
            "offered": len(ledger), "answered": len(ledger) - len(missed), "unanswered_withheld": withheld,
            "lost": lost_callable + withheld, "lost_callable": lost_callable,
        }  # fmt: skip
    waits = sorted((c["reached_at"] - c["first_call_at"]).total_seconds() for c in cbs if c["reached_at"])
    final = [c for c in cbs if c["status"] not in ("open", "dialing")]
    twice = await conn.fetchval(
        """SELECT count(*) FROM (SELECT callback_id, attempt FROM callback_attempts
                                 GROUP BY callback_id, attempt HAVING count(*) > 1) d"""
    )
    double_open = await conn.fetchval(
        """SELECT count(*) FROM (SELECT number FROM callbacks WHERE status IN ('open','dialing')
                                 GROUP BY number HAVING count(*) > 1) d"""
    )

    resyncs = await conn.fetchval(
        "SELECT count(*) FROM events WHERE source = 'ami' AND type = 'resync' AND ts >= $1", t0
    )
    # R-OUT-CID: the customer's leg of a reached callback showed the DID the customer had dialed
    did_not_presented = await conn.fetchval(
        """SELECT count(*) FROM callback_attempts a
           LEFT JOIN (SELECT DISTINCT linkedid, payload->>'ConnectedLineNum' AS shown FROM events
                      WHERE ts >= $1 AND type = 'NewConnectedLine' AND linkedid LIKE 'cti-cb-%'
                        AND payload->>'Channel' LIKE 'PJSIP/pstn-%') e
             ON e.linkedid = a.channel_id AND e.shown = a.did
           WHERE a.outcome = 'reached' AND e.linkedid IS NULL""",
        t0,
    )
    wrong_did = await conn.fetchval(
        """SELECT count(*) FROM callbacks c JOIN call_facts f ON f.linkedid = c.source_linkedid
           WHERE c.first_call_at >= $1 AND f.did IS NOT NULL AND c.did IS DISTINCT FROM f.did""",
        t0,
    )
    # R-PEAK: a pause an agent took during peak (not the queue's own Auto-Pause) has a violation row
    # R-REC / R-MASK on callbacks: every reached callback was recorded, and no frame on the agent's
    # leg (PJSIP/agentN) carried the customer's full number
    unrecorded_callbacks = await conn.fetchval(
        """SELECT count(*) FROM callback_attempts a WHERE a.outcome = 'reached' AND NOT EXISTS (
               SELECT 1 FROM events e WHERE e.ts >= $1 AND e.type = 'MixMonitorStart'
                 AND e.linkedid = a.channel_id)""",
        t0,
    )
    unmasked_on_agent = await conn.fetchval(
        """SELECT count(*) FROM events e JOIN callback_attempts a ON a.channel_id = e.linkedid
           JOIN callbacks c ON c.id = a.callback_id
           WHERE e.ts >= $1 AND e.payload->>'Channel' LIKE 'PJSIP/agent%'
             AND (e.payload->>'ConnectedLineNum' = c.number OR e.payload->>'CallerIDNum' = c.number)""",
        t0,
    )
    unrecorded_pauses = await conn.fetchval(
        """WITH flips AS (
               SELECT ts, (payload->>'in_peak')::boolean AS on_,
                      lead(ts) OVER (ORDER BY ts) AS until FROM events
               WHERE source = 'cti' AND type = 'peak_mode' AND ts >= $1),
           peaks AS (SELECT ts AS since, coalesce(until, 'infinity') AS until FROM flips WHERE on_)
           SELECT count(*) FROM agent_pauses p
           JOIN peaks k ON p.started_at >= k.since AND p.started_at < k.until
           WHERE p.reason <> 'Auto-Pause' AND NOT EXISTS (
               SELECT 1 FROM peak_violations v WHERE v.agent = p.agent
                 AND v.occurred_at BETWEEN p.started_at - interval '5 s'
                                       AND p.started_at + interval '5 s')""",
        t0,
    )

    def pct(xs: list[float], q: float) -> float | None:
        if not xs:
            return None
        return round(xs[min(len(xs) - 1, int(q * len(xs)))], 1)

    out = {
        "scenario": scenario.name,
        "offered": len(calls),
        "answered": len(answered),
        "answered_within_two_rings": len(within),
        "service_level_two_rings": round(len(within) / len(calls), 3) if calls else None,
        "abandoned_or_unanswered": len(unanswered),
        "callbacks_created": len(cbs),
        "callbacks_completed": sum(1 for c in final if c["reached_at"] is not None),
        "callbacks_final": len(final),
        "callbacks_open": len(cbs) - len(final),
        "callback_wait_p50_s": round(statistics.median(waits), 1) if waits else None,
        "callback_wait_p95_s": pct(waits, 0.95),
        "max_backlog": max_backlog,
        "lost": len(lost),
        "originates_sent_twice": int(twice),
        "numbers_with_two_open_callbacks": int(double_open),
        "cti_restarts": restarts,
        "ami_reconnects": max(0, int(resyncs) - 1 - restarts),
        "callbacks_did_not_presented": int(did_not_presented),
        "callbacks_wrong_did": int(wrong_did),
        "peak_pauses_without_violation": int(unrecorded_pauses),
        "callbacks_not_recorded": int(unrecorded_callbacks),
        "callback_agent_frames_unmasked": int(unmasked_on_agent),
        "sim_seconds": round(sim_s),
        "wall_seconds": round(wall_s, 1),
        "wall_s_per_sim_hour": round(wall_s / (sim_s / 3600.0), 1) if sim_s > 0 else None,
    }
    if truth:  # the CTI's own view stays, prefixed, so a gap between the two shows
        out.update({"cti_seen_offered": out["offered"], "cti_seen_answered": out["answered"],
                    "cti_seen_lost": out["lost"], **truth})  # fmt: skip
    return out

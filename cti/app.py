"""The CTI process (`cti serve`, and the CTI half of `cti demo`): every part built once, wired, started
in dependency order and stopped in reverse. Each part is small and owns its own loop; this file only
connects them. Each part registers its own close on one exit stack as it starts, so stop is the exact
reverse of start (also when start fails half-way) and the two cannot drift apart.

    store (events) ← AMI listener → live state → routing (FastAGI), peak monitor, dispatcher, web

Several processes may share one database (decision 0110): every process runs what follows its PBX
and what a constraint makes safe twice (FastAGI, the AMI listener, the dispatcher, missed-call
watching, the web); the run-once parts (peak transitions, facts, the CDR sweep, report schedules, the
dialer's pacing loop) run only while this process is the leader (`cti.cluster.leader`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import structlog
from aiohttp import web

from cti.agents.service import AgentService
from cti.agi.app import AgiService, start_agi
from cti.agi.handlers.route import recording_path
from cti.agi.recordings import RecordingTracker
from cti.agi.server import FastAgiServer
from cti.ami.client import AMIClient
from cti.ami.listener import AMIListener
from cti.callbacks import queries as callback_queries
from cti.callbacks.ami_adapter import ami_action, ami_originate
from cti.callbacks.cdr_sweep import sweep_cdr
from cti.callbacks.dispatcher import Dispatcher
from cti.callbacks.missed import MissedCallWatcher
from cti.callbacks.outcomes import channel_id_for
from cti.clock import Clock, SystemClock
from cti.cluster import claims
from cti.cluster.leader import Deposed, Leadership, fence
from cti.cluster.pbx import AgentPbx, PbxFloor, PbxRouter
from cti.config import ConfigError, Settings
from cti.db.connect import bounded
from cti.desk.wiring import DeskService, desk_service
from cti.facts.live import LiveFacts
from cti.facts.updater import FactsUpdater
from cti.fines import refresh as fines_refresh
from cti.linetest.runner import LineTestScheduler, line_test_scheduler
from cti.masking import mask_number
from cti.metrics import CtiCollector
from cti.outbound.runner import OutboundRunner
from cti.peak.guard import PeakPauseGuard
from cti.peak.live_adapter import QueueView
from cti.peak.monitor import PeakMonitor
from cti.peak.service import PeakService
from cti.policy import Policy
from cti.recording_files import fixed_dir
from cti.recording_retention import purge
from cti.reports.schedule import ReportScheduler
from cti.routing.live_adapter import live_snapshot_source
from cti.state.live import LiveState
from cti.store.events import EventStore
from cti.tasks import stop_tasks
from cti.web import metrics as web_metrics
from cti.web import quality as quality_web
from cti.web.app import Services, make_app
from cti.web.security import WebSecurity

log = structlog.get_logger(__name__)

# How far back a new process looks for calls an earlier one was following (longer than any call).
RECOVER_WINDOW = timedelta(hours=3)

# The CDR sweep leaves a just-ended call to the live watcher for this long, and runs this often.
CDR_SETTLE = timedelta(seconds=30)
CDR_SWEEP_EVERY = timedelta(seconds=60)
RETENTION_EVERY = timedelta(hours=1)  # recordings older than recording.retention_days go (leader only)

# Pause reasons the CTI itself sets: the peak guard must not undo them as violations.
CTI_PAUSE_REASONS = frozenset({"ring-no-answer"})


@dataclass
class CtiServer:
    settings: Settings
    policy: Policy
    dsn: str
    clock: Clock = field(default_factory=SystemClock)
    queue: str | None = None  # None: settings.queue
    default_did: str | None = None  # None: settings.default_did (the rehearsal presents its own DIDs)
    web_enabled: bool = True
    # The slow sweep (leader only): facts are written as each call ends (LiveFacts); the sweep writes
    # agent sessions and pauses and catches a call whose end was missed.
    facts_interval_s: float = 300.0
    # Calls last well under an hour; re-deriving more than this every interval only burns CPU.
    facts_window_s: float = 2 * 3600.0
    live_facts_warm_s: float = 3600.0  # replayed at start: the calls live across a restart
    live_facts: LiveFacts | None = None
    on_facts_written: Callable[[list[Any], float], None] | None = None  # (calls, clock time): bench.reports
    # filled by start(); closed by close() through _stack
    pool: asyncpg.Pool | None = None
    store: EventStore | None = None
    live: LiveState = field(default_factory=LiveState)
    ami: AMIClient | None = None
    listener: AMIListener | None = None
    agi_service: AgiService | None = None
    agi: FastAgiServer | None = None
    peak: PeakMonitor | None = None
    dispatcher: Dispatcher | None = None
    outbound: OutboundRunner | None = None
    missed: MissedCallWatcher | None = None
    agents: AgentService | None = None  # R-LOGIN: the feature codes, `cti agents`, the web panel
    desk: DeskService | None = None  # the agent panel and the wallboard (issue 12)
    line_tests: LineTestScheduler | None = None  # None while linetest.caller_id is unset
    web_runner: web.AppRunner | None = None
    web_port: int | None = None
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    leadership: Leadership | None = None
    pbx_listeners: dict[str, AMIListener] = field(default_factory=dict)  # settings.pbxes by name
    router: PbxRouter | None = None  # None: one PBX
    process: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    leader_poll_s: float = 0.5
    _leader_tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _facts: FactsUpdater | None = None
    _reports: ReportScheduler | None = None
    _stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    def __post_init__(self) -> None:
        self.queue = self.queue or self.settings.queue
        self.default_did = self.default_did or self.settings.default_did

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.append(task)
        task.add_done_callback(lambda t: t.cancelled() or t.exception() is None or log.error(
            "task_failed", task=name, error=repr(t.exception())))  # fmt: skip

    @property
    def spool_dir(self) -> Path:
        return self.settings.spool

    async def start(self, *, connect: bool = True) -> None:
        """Start every part; with connect=False the AMI link is left to `connect()` (the demo starts
        the FastAGI server before the simulated PBX exists, and connects once it does)."""
        try:
            await self._start(connect)
        except BaseException:
            await self.close()  # what did start is stopped again, in reverse
            raise

    async def _start(self, connect: bool) -> None:
        s, clock, stack = self.settings, self.clock, self._stack
        stack.callback(log.info, "cti_stopped")  # the last word
        self.pool = await asyncpg.create_pool(self.dsn, **bounded({"min_size": 2, "max_size": 10}))
        stack.push_async_callback(self.pool.close)
        self.store = EventStore(self.dsn, self.spool_dir, clock=clock)
        await self.store.start()
        stack.push_async_callback(self.store.close)  # last but the pool: nothing read is dropped
        # a call's facts when it ends (issue 15), in every process that stores events (decision 0112)
        self.live_facts = LiveFacts(self.pool, self.policy.ring, clock=clock)
        self.store.on_append(self.live_facts.on_row)
        if self.on_facts_written is not None:
            self.live_facts.on_written.append(self.on_facts_written)
        await self.live_facts.warm(clock.now() - timedelta(seconds=self.live_facts_warm_s))
        self.live_facts.start()
        stack.push_async_callback(self.live_facts.close)  # after the listener: the last hangups are written

        # Network timers (ping, action timeouts, backoff) run on real time even when the rest of the
        # process runs on a scaled clock: a slow peer is slow in seconds, not in simulated seconds.
        self.ami = AMIClient.from_settings(s.ami)
        self.listener = AMIListener(self.ami, self.live, self.store, clock=clock)
        # handlers finish what was read (outcomes of calls in flight) once nothing new is decided
        stack.push_async_callback(self.listener.close)
        # no new Originate once we start to close: it could not be followed
        stack.push_async_callback(self._cancel_tasks)
        view = QueueView(self.live, self.policy, queue=self.queue)
        self.ami.subscribe(view.observe)
        floor = self._other_pbxes(view)  # several Asterisk servers: their listeners, one floor

        self.peak = PeakMonitor(self.pool, policy=self.policy.peak, clock=clock, figures=view.figures,
                                events=self.store)  # fmt: skip
        await self.peak.start()
        peak = self.peak
        self.leadership = Leadership(self.dsn, process=self.process, on_elected=self._elected,
                                     on_lost=self._deposed, poll_s=self.leader_poll_s)  # fmt: skip

        # The CTI owns queue membership (R-LOGIN): after every resync that reached app_queue, every
        # open login in the database is put back (capture 17: a restart forgets them all).
        self.agents = AgentService(self.pool, policy=self.policy, clock=clock, events=self.store,
                                   ami_action=self.agent_action, in_peak=lambda: peak.in_peak,
                                   tz=s.tz, default_queues=(self.queue,))  # fmt: skip
        for listener in self._listeners():
            listener.after_resync(self.agents.restore_after_resync)

        # The FastAGI side has its own pool (its hot path must not queue behind the dispatcher), the
        # open-order cache and the import of what the degraded script spooled while we were down.
        self.agi_service = await start_agi(
            s, events=self.store, dsn=self.dsn, policy=self.policy, clock=clock,
            snapshot=live_snapshot_source(self.live, lambda: self.ami is not None and self.ami.connected),
            callback_advisor=view.callback_advisor(lambda: peak.in_peak), agents=self.agents,
        )  # fmt: skip
        self.agi = self.agi_service.server
        stack.push_async_callback(self.agi_service.close)  # also writes recording rows still queued

        self.dispatcher = Dispatcher(
            self.pool, policy=self.policy, clock=clock, events=self.store,
            live=floor, originate=self._originate,
            default_did=self.default_did, timezone=s.timezone, extra_variables=self._callback_variables,
            worker_id=self.process,
        )  # fmt: skip
        # outbound campaigns (R-PACE): the pacing loop runs in the process holding its lock
        self.outbound = OutboundRunner(
            self.pool,
            self.dsn,
            self.live,
            self.policy,
            s.timezone,
            clock,
            self._originate,  # type: ignore[arg-type]  # it only calls req.headers()
            in_peak=lambda: peak.in_peak,
        )
        guard = PeakPauseGuard(self.pool, policy=self.policy, clock=clock, events=self.store,
                               in_peak=peak.was_in_peak, ami_action=self.agent_action,
                               peak_cause=peak.cause_at,
                               exempt_reasons=CTI_PAUSE_REASONS)  # fmt: skip
        missed = self.missed = MissedCallWatcher(
            self.pool, policy=self.policy, clock=clock, events=self.store
        )

        def after_resync(live: LiveState, ev: Mapping[str, Any]) -> None:
            if ev.get("Event") == "resync":  # calls that ended while we were blind, calls begun before us
                self._spawn(missed.reconcile(live.state, clock.time()), "missed-call-reconcile")

        for listener in self._listeners():
            listener.live.subscribe(after_resync)
        async with self.pool.acquire() as conn:  # before AMI: the first resync decides what vanished
            await missed.recover(conn, clock.now() - RECOVER_WINDOW)
        recordings = RecordingTracker(self.pool)  # started/ended/duration of each recording row
        for handler in (
            self.dispatcher.handle_ami,
            self.outbound.handle_ami,
            guard.handle_ami,
            missed.handle_ami,
            recordings.handle_ami,
        ):
            for listener in self._listeners():
                listener.client.subscribe(handler)

        self.line_tests = line_test_scheduler(self.pool, ami_action(self.ami), settings=s, policy=self.policy,
                                              clock=clock, events=self.store)  # fmt: skip
        if self.line_tests is not None:
            self.ami.subscribe(self.line_tests.tester.handle_ami)
        self._facts = FactsUpdater(self.dsn, self.policy.ring, clock=clock, interval_s=self.facts_interval_s,
                                   window_s=self.facts_window_s)  # fmt: skip
        # 11:30 / 16:30 / 08:10 / shift-end reports: every process may run it, each slot runs once
        self._reports = ReportScheduler(self.dsn, self.policy, self.settings.tz, clock=clock)
        stack.push_async_callback(self._facts.close)
        stack.push_async_callback(self._reports.close)
        if self.web_enabled:
            await self._start_web()
        if connect:
            await self.connect()

    async def connect(self) -> None:
        """Connect AMI (retrying until Asterisk answers), then start the loops that act on it.
        AMI comes last among the inputs: everything that listens is subscribed before the first event."""
        assert self.listener is not None and self.peak is not None and self.dispatcher is not None
        assert self.leadership is not None
        for listener in self._listeners():
            await listener.client.start(retry=True)
        self._tasks += [
            asyncio.create_task(self._peak_loop(), name="peak-monitor"),
            asyncio.create_task(self.dispatcher.run(), name="callback-dispatcher"),
            asyncio.create_task(self._renew_lease(), name="process-lease"),
            asyncio.create_task(self.leadership.run(), name="leadership"),
        ]
        log.info("cti_connected", agi_port=self.agi.port if self.agi else None, web_port=self.web_port,
                 ami=f"{self.settings.ami.host}:{self.settings.ami.port}")  # fmt: skip

    # ---- several Asterisk servers (decision 0110) ---------------------------------------------
    def _other_pbxes(self, view: QueueView) -> Any:
        """Listeners for settings.pbxes, and the router that sends what rings an agent through the
        agent's PBX. Returns the dispatcher's live view (one PBX: `view` itself, as always)."""
        assert self.ami is not None and self.store is not None and self.pool is not None
        s = self.settings
        if not s.pbxes:
            return view
        originates, actions, views = {s.pbx: ami_originate(self.ami)}, {s.pbx: ami_action(self.ami)}, [view]
        for name, ami_s in s.pbxes.items():
            client = AMIClient.from_settings(ami_s)
            listener = AMIListener(client, LiveState(), self.store, clock=self.clock)
            self._stack.push_async_callback(listener.close)
            other = QueueView(listener.live, self.policy, queue=self.queue)
            client.subscribe(other.observe)
            self.pbx_listeners[name] = listener
            originates[name], actions[name] = ami_originate(client), ami_action(client)
            views.append(other)
        self.router = PbxRouter(AgentPbx(self.pool, s.pbx), originates, actions)
        return PbxFloor(views)

    def _listeners(self) -> list[AMIListener]:
        assert self.listener is not None
        return [self.listener, *self.pbx_listeners.values()]

    @property
    def agent_action(self) -> Any:
        """AMI actions about an agent (QueueAdd/Pause, the desk's Originate): the agent's PBX."""
        assert self.ami is not None
        return self.router.action if self.router is not None else ami_action(self.ami)

    @property
    def _originate(self) -> Any:
        assert self.ami is not None
        return self.router.originate if self.router is not None else ami_originate(self.ami)

    # ---- several processes (decision 0110) ----------------------------------------------------
    async def _renew_lease(self) -> None:
        """This process's agent claims live as long as this lease (a SIGKILLed process's lapse)."""
        assert self.pool is not None
        while True:
            try:
                async with self.pool.acquire() as conn:
                    await claims.renew_lease(conn, self.process)
            except (OSError, asyncpg.PostgresError) as e:
                log.warning("process_lease_renew_failed", error=type(e).__name__)
            await asyncio.sleep(claims.LEASE_TTL_S / 3)  # real seconds, like the lease

    async def _end_lease(self) -> None:
        if self.pool is not None:
            with contextlib.suppress(OSError, asyncpg.PostgresError):
                async with self.pool.acquire() as conn:
                    await claims.end_lease(conn, self.process)

    async def _peak_loop(self) -> None:
        """The leader steps the peak machine (fenced); the others follow what it persisted."""
        assert self.peak is not None and self.leadership is not None
        peak, leadership = self.peak, self.leadership
        while True:
            try:
                await (peak.tick() if leadership.is_leader else peak.follow())
            except Exception:
                log.exception("peak_tick_failed")
            await self.clock.sleep(1.0)

    async def _elected(self, token: int) -> None:
        """Start the run-once parts; each carries on from the database (claims, slots, persisted
        peak state, the CDRs), not from anything the previous leader held in memory."""
        assert self.peak is not None and self.outbound is not None and self._facts is not None
        peak = self.peak
        await peak.follow()  # the last persisted state, with its hysteresis timers

        async def fenced(conn: Any) -> None:
            await fence(conn, token)

        peak.fence = fenced
        self._leader_tasks = [
            asyncio.create_task(self.outbound.run(), name="outbound-pacer"),
            asyncio.create_task(self._sweep_cdr(), name="cdr-sweep"),
            asyncio.create_task(self._purge_recordings(), name="recording-retention"),
            asyncio.create_task(self._refresh_fines(), name="fines-refresh"),
        ]
        if self.line_tests is not None:  # R-LINE-TEST, twice a day (each slot also claimed, 0310)
            self._leader_tasks.append(asyncio.create_task(self.line_tests.run(), name="line-tests"))
        self._facts.start()
        if self._reports is not None:
            self._reports.start()
        log.warning("run_once_parts_started", process=self.process, token=token)

    async def _deposed(self) -> None:
        """Stop the run-once parts at once: another process is (or will be) the leader."""
        if self.peak is not None:
            self.peak.fence = _never_leader
        tasks, self._leader_tasks = self._leader_tasks, []
        await stop_tasks(tasks)  # runs inside the leadership task: its own cancel must get through
        if self._facts is not None:
            await self._facts.close()
        if self._reports is not None:
            await self._reports.close()
        log.warning("run_once_parts_stopped", process=self.process)

    async def _start_web(self) -> None:
        assert self.pool is not None
        s, clock = self.settings, self.clock
        svc = PeakService(self.pool, clock=clock, policy=self.policy.peak)
        pool = self.pool
        stats = lambda: callback_queries.callback_stats(pool, now=clock.now())  # noqa: E731
        self.desk = desk_service(self, peak_status=svc.status, callback_stats=stats)
        await self.desk.start()
        for listener in self._listeners():  # click-to-call's agent claims end with the agent leg
            listener.client.subscribe(self.desk.handle_ami)
        self._stack.push_async_callback(self.desk.close)  # after the web server that uses it
        app = make_app(Services(
            pool=pool, live=self.live, clock=clock, peak_status=svc.status, set_peak=svc.set_switch,
            callback_stats=stats, tz=s.tz, desk=self.desk, security=WebSecurity.from_settings(s.web),
            policy_file=s.policy_file,
            outbound_preview_dial=self.outbound.preview_dial if self.outbound else None,
            outbound_status=self.outbound.status if self.outbound else None,
        ))  # fmt: skip
        app[quality_web.RECORDINGS_DIR] = Path(fixed_dir(s.recording.path_pattern))  # playback root
        token = s.web.metrics_token
        web_metrics.attach(app, self.metrics_collector(), token.get_secret_value() if token else None)
        self.web_runner = web.AppRunner(app)
        await self.web_runner.setup()
        self._stack.push_async_callback(self.web_runner.cleanup)
        site = web.TCPSite(self.web_runner, s.web.host, s.web.port)
        await site.start()
        self.web_port = self.web_runner.addresses[0][1]

    def metrics_collector(self) -> CtiCollector:
        """The scrape-time figures of this process's parts (cti/metrics.py)."""
        peak = self.peak
        return CtiCollector(ami=self.ami, store=self.store, agi=self.agi, live=self.live,
                            pool=self.pool, in_peak=(lambda: peak.in_peak) if peak else None,
                            dialer=self.outbound, now=self.clock.time)  # fmt: skip

    def _callback_variables(self, callback_id: int, attempt: int, number: str) -> dict[str, str]:
        """The agent sees the masked number (R-MASK); the call is recorded like every other (R-REC)."""
        channel_id = channel_id_for(callback_id, attempt)
        local = self.clock.now().astimezone(self.settings.tz)
        path = recording_path(self.settings.recording.path_pattern, local, channel_id, channel_id)
        return {"CTI_MASKED": mask_number(number), "CTI_RECORD": path}

    async def _every(
        self,
        every: timedelta,
        failed: str,
        work: Callable[[Any], Awaitable[None]],
        errors: tuple[type[BaseException], ...] = (OSError, asyncpg.PostgresError),
    ) -> None:
        """`work(conn)` at once, then every `every` (leader tasks); a failure is logged (`failed`)
        and the next round tries again."""
        assert self.pool is not None
        while True:
            try:
                async with self.pool.acquire() as conn:
                    await work(conn)
            except errors as e:
                log.warning(failed, error=type(e).__name__)
            await self.clock.sleep(every.total_seconds())

    async def _sweep_cdr(self) -> None:
        """Callers who came and went while no CTI was watching are in Asterisk's CDRs (cdr_pgsql)."""
        assert self.missed is not None
        missed = self.missed

        async def sweep(conn: Any) -> None:
            now = self.clock.now()
            n = await sweep_cdr(conn, missed, since=now - RECOVER_WINDOW, settled_before=now - CDR_SETTLE,
                                trunk_endpoints=self.settings.ami.trunk_endpoints)  # fmt: skip
            if n:
                log.info("cdr_sweep_decided", calls=n)

        await self._every(CDR_SWEEP_EVERY, "cdr_sweep_failed", sweep)

    async def _purge_recordings(self) -> None:
        """Recording retention (recording.retention_days), hourly under the leader: files and rows
        older than the period go, with one `recordings_purged` event (cti.recording_retention)."""
        assert self.store is not None
        store, root = self.store, Path(fixed_dir(self.settings.recording.path_pattern))

        async def purge_old(conn: Any) -> None:
            await purge(conn, root, self.clock.now(), self.settings.recording.retention_days, store)

        await self._every(RETENTION_EVERY, "recording_retention_failed", purge_old)

    async def _refresh_fines(self) -> None:
        """Today's fines current for the desk, the wallboard and the reports (cti.fines.refresh),
        every few minutes under the leader."""

        async def refresh(conn: Any) -> None:
            s = self.settings
            counts = await fines_refresh.refresh(conn, self.clock.now(), s.tz, s.policy_file)
            log.info("fines_refreshed", **counts)

        errors = (OSError, asyncpg.PostgresError, ConfigError)  # ConfigError: a bad policy override
        await self._every(fines_refresh.EVERY, "fines_refresh_failed", refresh, errors)

    async def _cancel_tasks(self) -> None:
        tasks, self._tasks = self._tasks, []
        await stop_tasks(tasks)  # leadership's own finally stops the run-once parts
        await self._deposed()  # in case leadership never ran (start failed before connect)
        await self._end_lease()  # our claims are dead at once: another process may ring our agents

    async def close(self) -> None:
        """Stop in the reverse order of start: the web monitor, facts, the FastAGI side (no new
        decisions), the loops (no new Originate), the AMI listener (handlers finish what was read), and
        last the event store and the pool: nothing read is dropped and nothing runs on a closed pool.
        Idempotent."""
        await self._stack.aclose()


async def _never_leader(conn: Any) -> None:
    raise Deposed("this process is not the leader")

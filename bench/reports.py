"""Fines and reports over a year of a busy center.

    python -m bench.reports --json                  # scaled: 200k calls a year, 30k in the last month
    python -m bench.reports --json --calls 1000000 --month-calls 90000   # the issue's full size

Loads, with SQL (generate_series, seeded), a year of call facts with their rings, orders, agent
sessions, pauses and roster, plus the last month's AGI `route` events (the named-agent requests the
ledger reads), then measures:
- fines_rebuild_month_s: `cti fines rebuild` of the last month (ledger + rewards; target < 10)
- day_report_p99_ms / month_report_p99_ms: the report page's data for random days / months
  (targets < 200 / < 1000), with the median of a bare count over the same window as baseline
- xlsx_100k_rows_s / xlsx_peak_rss_mb: the call-log XLSX of the most recent 100k calls, streamed, in a
  child process whose peak RSS is measured (its RSS before the export is the baseline)
  (the pages read the hourly rollups `facts_hourly`, refreshed after the load as the facts writer
  keeps them; `figures_from_call_facts_median_ms` times the same figures read from call_facts)
- facts_lag_p99_s: the TV-ad evening (scenarios/tv_evening.toml, scaled by --evening-size, the ad
  5 min in, --evening-after-ad-s after it) run at --evening-speed against the whole CTI server: for
  every call, the time from its last Hangup (the event's timestamp) to the commit of its facts, in
  the server's scaled clock divided by the speed, i.e. wall seconds (target < 2). At speed N the
  server handles N times the real load per wall second, so this is an upper bound of the real lag.
  `facts_live_vs_rebuild_diff` counts the calls whose live rows differ from `cti facts rebuild`'s.

    python -m bench.reports --json --evening-size 1 --evening-after-ad-s 1500  # the full evening
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from cti.cluster.rehearsal import scenario_for
from cti.config import load_settings
from cti.db.scratch import ScratchServer
from cti.facts.repo import refresh_hourly
from cti.fines import repo
from cti.log import configure
from cti.orders.repo import rebuild_rewards
from cti.policy import load_policy
from cti.rehearsal import Rehearsal
from cti.reports.figures import figures_by
from cti.reports.pages import report

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "tv_evening.toml"

TZ = ZoneInfo("Asia/Shanghai")
END = datetime(2026, 11, 1, tzinfo=TZ)  # the year ends with October; the last month is October
MONTH_START = datetime(2026, 10, 1, tzinfo=TZ)
YEAR_START = END - timedelta(days=365)


async def load(conn: asyncpg.Connection, calls: int, month_calls: int, agents: int) -> dict[str, int]:
    older = calls - month_calls
    await conn.execute("SELECT setseed(0.15)")
    await conn.execute(
        "INSERT INTO agents (id, name, interface, role) VALUES ('sup1', 'sup1', 'PJSIP/sup1', 'supervisor')"
    )
    await conn.execute(
        """INSERT INTO agents (id, name, interface, supervisor)
           SELECT 'agent' || i, 'agent' || i, 'PJSIP/agent' || i, 'sup1' FROM generate_series(1, $1) i""",
        agents,
    )
    # calls between 08:00 and 22:00 local; the last month denser
    for n, a, b in ((older, YEAR_START, MONTH_START), (month_calls, MONTH_START, END)):
        days = (b - a).days
        await conn.execute(
            """WITH g AS (
                 SELECT i, $2::timestamptz + ((i % $3) || ' days')::interval
                           + ((8 * 3600 + floor(random() * 14 * 3600)) || ' seconds')::interval AS t,
                        random() AS r, random() AS r2, floor(random() * 40)::numeric AS hold,
                        30 + floor(random() * 270)::numeric AS talk
                 FROM generate_series(1, $1) i)
               INSERT INTO call_facts (linkedid, started_at, did, caller_num, caller_masked, queue,
                 offered_at,
                 answered_by, answered_at, time_to_answer_s, hold_s, rings_to_answer, talk_s, hung_up_first,
                 abandoned, abandon_wait_s, agents_logged_in, ended_at, outcome, left_queue_at)
               SELECT $5 || i, t, '40080' || (10000 + (i % 7)), '138' || lpad((i % 100000000)::text, 8, '0'),
                 '138****' || lpad((i % 10000)::text, 4, '0'), 'sales', t + interval '1 second',
                 CASE WHEN r < 0.85 THEN 'agent' || (1 + i % $4) END,
                 CASE WHEN r < 0.85 THEN t + (hold + 1) * interval '1 second' END,
                 CASE WHEN r < 0.85 THEN hold + 1 END, hold, CASE WHEN r < 0.85 THEN 1 + (hold / 5)::int END,
                 CASE WHEN r < 0.85 THEN talk END,
                 CASE WHEN r < 0.85 THEN CASE WHEN r2 < 0.03 THEN 'agent' ELSE 'caller' END END,
                 r >= 0.85 AND r < 0.95, CASE WHEN r >= 0.85 AND r < 0.95 THEN hold END, 10,
                 t + (hold + talk + 1) * interval '1 second',
                 CASE WHEN r < 0.85 THEN 'answered' WHEN r < 0.95 THEN 'abandoned' ELSE 'timeout' END,
                 t + (hold + 1) * interval '1 second'
               FROM g""",
            n, a, days, agents, "y" if a == YEAR_START else "m",
        )  # fmt: skip
    await conn.execute(
        """INSERT INTO call_rings (linkedid, agent_uniqueid, agent, queue, started_at, ended_at, outcome)
           SELECT linkedid, linkedid || '.1', answered_by, queue, offered_at, answered_at, 'answered'
           FROM call_facts WHERE answered_by IS NOT NULL"""
    )
    await conn.execute(
        """INSERT INTO customers (number) SELECT DISTINCT caller_num FROM call_facts
           WHERE answered_by IS NOT NULL AND right(linkedid, 1) IN ('0', '5')"""
    )
    await conn.execute(
        """INSERT INTO orders (customer_id, owner_agent, status, created_at, updated_at, source)
           SELECT c.id, f.answered_by, CASE WHEN right(f.linkedid, 2) = '15' THEN 'cancelled' ELSE 'new' END,
                  f.answered_at, f.answered_at, 'bench'
           FROM call_facts f JOIN customers c ON c.number = f.caller_num
           WHERE f.answered_by IS NOT NULL AND right(f.linkedid, 1) IN ('0', '5')"""
    )
    await conn.execute(
        """INSERT INTO agent_sessions (agent, queue, interface, login_at, logout_at)
           SELECT 'agent' || a, 'sales', 'PJSIP/agent' || a,
                  d + interval '7 hours 55 minutes'
                    + (CASE WHEN random() < 0.05 THEN 1200 ELSE 0 END) * interval '1 second',
                  d + interval '17 hours'
           FROM generate_series(1, $1) a,
                generate_series($2::timestamptz, $3::timestamptz - interval '1 day', interval '1 day') d""",
        agents, YEAR_START, END,
    )  # fmt: skip
    await conn.execute(
        """INSERT INTO agent_pauses (agent, queue, reason, started_at, ended_at, duration_s)
           SELECT agent, queue, CASE WHEN random() < 0.02 THEN '' ELSE 'break' END,
                  login_at + k * interval '2 hours',
                  login_at + k * interval '2 hours' + interval '10 minutes', 600
           FROM agent_sessions, generate_series(1, 3) k"""
    )
    await conn.execute(
        """INSERT INTO roster (day, shift, group_name, supervisor, agents, updated_by)
           SELECT d::date, 'morning', 'default', 'sup1',
                  (SELECT array_agg('agent' || a) FROM generate_series(1, $1) a),
                  'bench'
           FROM generate_series($2::date, $3::date - 1, interval '1 day') d""",
        agents, YEAR_START.date(), END.date(),
    )  # fmt: skip
    # the last month's route events: one per call, 3% asked for a named agent
    await conn.execute(
        "SELECT cti_ensure_event_partitions($1::date, $2)", (MONTH_START - timedelta(days=1)).date(), 33
    )
    await conn.execute(
        """INSERT INTO events (ts, key, source, type, uniqueid, linkedid, agent, queue, payload)
           SELECT started_at, 'agi:route:' || linkedid, 'agi', 'route', linkedid, linkedid,
                  CASE WHEN right(linkedid, 2) IN ('07', '37', '77')
                       THEN 'agent' || (1 + length(linkedid) % $1) END,
                  'sales',
                  jsonb_build_object('route', 'queue', 'preferred',
                      CASE WHEN right(linkedid, 2) IN ('07', '37', '77')
                           THEN 'agent' || (1 + length(linkedid) % $1) END,
                      'preferred_reason',
                      CASE WHEN right(linkedid, 2) IN ('07', '37', '77') THEN 'requested' END)
           FROM call_facts WHERE started_at >= $2""",
        agents, MONTH_START,
    )  # fmt: skip
    async with conn.transaction():  # the rollups the report pages read, as the facts writer keeps them
        await refresh_hourly(conn, load_policy().ring, YEAR_START - timedelta(days=1), None)
    await conn.execute("ANALYZE")
    return {
        "calls": await conn.fetchval("SELECT count(*) FROM call_facts"),
        "month_calls": await conn.fetchval(
            "SELECT count(*) FROM call_facts WHERE started_at >= $1", MONTH_START
        ),
        "orders": await conn.fetchval("SELECT count(*) FROM orders"),
        "rings": await conn.fetchval("SELECT count(*) FROM call_rings"),
        "pauses": await conn.fetchval("SELECT count(*) FROM agent_pauses"),
        "route_events": await conn.fetchval("SELECT count(*) FROM events"),
    }


def p99(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(0.99 * (len(xs) - 1)))]


async def timed_reports(conn: asyncpg.Connection, period: str, days: list[date]) -> dict[str, float]:
    policy = load_policy()
    took, base, facts, rolled = [], [], [], []
    for d in days:
        t = time.perf_counter()
        await report(conn, d, period, TZ, policy)
        took.append((time.perf_counter() - t) * 1000)
        s = datetime.combine(d if period == "day" else d.replace(day=1), datetime.min.time(), TZ)
        e = s + timedelta(days=1 if period == "day" else 31)
        t = time.perf_counter()
        await conn.fetchval(
            "SELECT count(*) FROM call_facts WHERE started_at >= $1 AND started_at < $2", s, e
        )
        base.append((time.perf_counter() - t) * 1000)
        step = "hour" if period == "day" else "day"
        t = time.perf_counter()
        await figures_by(conn, s, e, ("total", step, "did", "queue", "agent"), str(TZ), policy, rollups=False)
        facts.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        await figures_by(conn, s, e, ("total", step, "did", "queue", "agent"), str(TZ), policy)
        rolled.append((time.perf_counter() - t) * 1000)
    return {
        "figures_from_rollups_median_ms": round(statistics.median(rolled), 2),
        "figures_from_call_facts_median_ms": round(statistics.median(facts), 2),
        "p99_ms": round(p99(took), 1),
        "median_ms": round(statistics.median(took), 1),
        "baseline_count_median_ms": round(statistics.median(base), 2),
        "samples": len(took),
    }


async def facts_lag(dsn: str, a: argparse.Namespace) -> dict[str, Any]:
    """The TV-ad evening at speed: seconds from each call's last Hangup to its facts' commit."""
    lags: list[float] = []
    live: dict[str, tuple[Any, ...]] = {}

    def written(calls: list[Any], at: float) -> None:
        for c in calls:
            if c.ended_at is not None:
                lags.append((at - c.ended_at) / a.evening_speed)

    class Measured(Rehearsal):
        async def summary(self, wall_s: float, sim_s: float) -> dict[str, Any]:
            conn = await asyncpg.connect(self.dsn)
            try:  # the live rows, before the rehearsal's own rebuild replaces them
                live.update({r["linkedid"]: tuple(r) for r in await conn.fetch(_FACTS_ROWS)})
            finally:
                await conn.close()
            return await super().summary(wall_s, sim_s)

    scenario = scenario_for(SCENARIO, a.evening_size, a.evening_after_ad_s)
    settings = load_settings(env={"CTI_DATA_DIR": tempfile.mkdtemp(prefix="cti-bench-reports-")})
    reh = Measured(scenario, dsn, settings, load_policy(), speed=a.evening_speed, drain_s=0.0,
                   on_facts_written=written)  # fmt: skip
    result = await reh.run()
    conn = await asyncpg.connect(dsn)
    try:
        rebuilt = {r["linkedid"]: tuple(r) for r in await conn.fetch(_FACTS_ROWS)}
    finally:
        await conn.close()
    return {
        "facts_lag_p99_s": round(p99(lags), 3) if lags else None,
        "facts_lag": {
            "calls": len(lags),
            "median_s": round(statistics.median(lags), 3) if lags else None,
            "max_s": round(max(lags), 3) if lags else None,
            "speed": a.evening_speed,
            "size": a.evening_size,
            "offered": result.get("offered"),
            "wall_s": result.get("wall_seconds"),
        },
        "facts_live_vs_rebuild_diff": sum(1 for k, v in live.items() if rebuilt.get(k) != v),
        "facts_live_calls": len(live),
    }


_FACTS_ROWS = "SELECT * FROM call_facts WHERE ended_at IS NOT NULL"


def hwm_mb() -> float:
    """This process's peak RSS (VmHWM). Not ru_maxrss: that survives exec, so a child started by a
    big parent would report the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def xlsx_child(dsn: str, rows: int) -> None:
    """Child process: export the most recent `rows` calls as XLSX; print seconds and peak RSS."""
    from cti.reports.exports import CALL_LOG_COLUMNS, call_log_rows, write_xlsx_stream

    async def go() -> dict[str, Any]:
        conn = await asyncpg.connect(dsn)
        try:
            since = await conn.fetchval(
                "SELECT started_at FROM call_facts ORDER BY started_at DESC OFFSET $1 LIMIT 1", rows - 1
            )
            before = hwm_mb()
            with tempfile.TemporaryDirectory() as d:
                t = time.perf_counter()
                n = await write_xlsx_stream(
                    Path(d) / "log.xlsx", CALL_LOG_COLUMNS, call_log_rows(conn, since, END, TZ, False), "log"
                )
                took = time.perf_counter() - t
                size = (Path(d) / "log.xlsx").stat().st_size
        finally:
            await conn.close()
        peak = hwm_mb()
        return {"rows": n, "s": took, "peak_rss_mb": peak, "rss_before_mb": before, "bytes": size}

    print(json.dumps(asyncio.run(go())))


async def main(a: argparse.Namespace) -> dict[str, Any]:
    server = ScratchServer(prefix="cti_bench_reports")
    await server.start()
    try:
        dsn = await server.new_database_url()
        conn = await asyncpg.connect(dsn)
        try:
            t = time.perf_counter()
            counts = await load(conn, a.calls, a.month_calls, a.agents)
            load_s = time.perf_counter() - t
            runs = []
            for _ in range(a.rebuilds):
                t = time.perf_counter()
                r = await repo.rebuild(conn, MONTH_START, END, TZ)
                await rebuild_rewards(conn, MONTH_START, END, TZ, await repo.PolicyTimeline.load(conn))
                runs.append(time.perf_counter() - t)
            rng = random.Random(7)
            days = [(YEAR_START + timedelta(days=rng.randrange(365))).date() for _ in range(a.samples)]
            months = [
                (YEAR_START + timedelta(days=rng.randrange(365))).date() for _ in range(a.month_samples)
            ]
            day_rep = await timed_reports(conn, "day", days)
            month_rep = await timed_reports(conn, "month", months)
        finally:
            await conn.close()
        child = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "bench.reports", "--xlsx-child", dsn, "--xlsx-rows", str(a.xlsx_rows)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        x = json.loads(child.stdout.strip().splitlines()[-1])
        lag = await facts_lag(await server.new_database_url(), a) if a.evening_speed > 0 else {}
    finally:
        await server.stop()
    return {
        "benchmark": "reports",
        "data": counts,
        "load_s": round(load_s, 1),
        "fines_rebuild_month_s": round(statistics.median(runs), 2),
        "fines_rebuild_runs_s": [round(x, 2) for x in runs],
        "ledger": r,
        "day_report_p99_ms": day_rep["p99_ms"],
        "day_report": day_rep,
        "month_report_p99_ms": month_rep["p99_ms"],
        "month_report": month_rep,
        "xlsx_100k_rows_s": round(x["s"], 2),
        "xlsx_rows": x["rows"],
        "xlsx_peak_rss_mb": round(x["peak_rss_mb"], 1),
        "xlsx_rss_before_mb": round(x["rss_before_mb"], 1),
        "xlsx_bytes": x["bytes"],
        "facts_lag_p99_s": lag.get("facts_lag_p99_s"),
        **{k: v for k, v in lag.items() if k != "facts_lag_p99_s"},
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object (the default output)")
    ap.add_argument("--calls", type=int, default=200_000, help="calls in the year (issue: 1000000)")
    ap.add_argument("--month-calls", type=int, default=30_000, help="calls in the last month (issue: 90000)")
    ap.add_argument("--agents", type=int, default=40)
    ap.add_argument("--rebuilds", type=int, default=3)
    ap.add_argument("--samples", type=int, default=100, help="random days timed")
    ap.add_argument("--month-samples", type=int, default=12)
    ap.add_argument("--xlsx-rows", type=int, default=100_000)
    ap.add_argument("--evening-speed", type=float, default=20.0, help="0: skip the facts-lag evening")
    ap.add_argument("--evening-size", type=float, default=0.25, help="the TV evening's size (full: 1)")
    ap.add_argument("--evening-after-ad-s", type=float, default=600.0, help="sim seconds after the ad")
    ap.add_argument("--xlsx-child", metavar="DSN", help=argparse.SUPPRESS)
    a = ap.parse_args()
    configure("json", "error", stream=sys.stderr)  # stdout is the one JSON object
    if a.xlsx_child:
        xlsx_child(a.xlsx_child, a.xlsx_rows)
    else:
        json.dump(asyncio.run(main(a)), sys.stdout, ensure_ascii=False)
        print()

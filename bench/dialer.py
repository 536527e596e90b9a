"""Benchmark: outbound dialing on a hostile contact list in PostgreSQL.

    python -m bench.dialer --json [--contacts 1000000 --past-calls 5000000 --hours 4]

Builds the list the issue asks for (scaled by default so one run fits in a few minutes on 2 shared
cores; the flags give the full size): a CSV imported through `cti.outbound.imports` (import rate),
10 % of the numbers on the DNC list across the categories (2 % public phones), past calls
concentrated on the contacts closest to each cap (one call left this month, quiet ending today,
29 calls this year, 2 refusals of the product), two overlapping campaigns. Then:

- eligible_1000_p99_ms: the next 1,000 eligible contacts for a campaign (target < 50 ms);
- predial_check_p99_ms: the atomic re-check and claim before one Originate (target < 5 ms);
- a simulated day on a virtual clock, 30 agents, inbound callers and a peak, through the real Dialer
  (claims in PostgreSQL, outcomes through the same calls AMI frames drive): predictive, then
  progressive on the second campaign; occupancy of each, the predictive abandon rate (max over
  rolling windows), dials started while inbound callers waited or peak was on;
- violations: `cti compliance audit` over the day (must be 0); peak_rss_mb of this process.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import heapq
import json
import random
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

import asyncpg

from cti.clock import ManualClock
from cti.db.scratch import ScratchServer
from cti.log import configure
from cti.outbound import campaigns, outcomes
from cti.outbound.audit import audit
from cti.outbound.dialer import Dialer, OutboundOriginate
from cti.outbound.eligibility import next_eligible, park_ineligible, rule_set_id, try_claim
from cti.outbound.imports import import_file
from cti.outbound.rules import RuleSet, Window, quiet_until
from cti.policy import load_policy

TZ = "Asia/Shanghai"
DAY = datetime(2026, 6, 1, 1, 0, tzinfo=UTC)  # 09:00 in Asia/Shanghai
WINDOWS = (Window("default", dtime(9), dtime(21)), Window("boss", dtime(10), dtime(11, 30)))
DNC_CATEGORIES = ("malicious", "do_not_disturb", "complaint", "refused_all", "special")


def p99(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=100)[98] if len(xs) >= 2 else (xs[0] if xs else 0.0)


def write_csv(path: Path, n: int, rnd: random.Random) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["姓名", "手机号码", "客户类型"])
        for i in range(n):
            if i % 50 == 49:
                w.writerow([f"客户{i}", f"12{i:05d}", ""])  # garbage: reported, not imported
                continue
            number = f"1{rnd.choice('3578')}{i:09d}" if i % 12 else f"010-6{i:07d}"
            w.writerow([f"客户{i}", number, "boss" if i % 20 == 0 else ""])


async def build_history(
    conn: asyncpg.Connection, rules: RuleSet, rs_id: int, legacy: int, budget: int
) -> int:
    """Past calls by cap group, COPYed in batches; the cap summary computed per contact."""
    rnd = random.Random(11)
    n_contacts = await conn.fetchval("SELECT count(*) FROM contacts")
    day = timedelta(days=1)
    per_contact = budget / max(1, n_contacts)
    rows: list[tuple[Any, ...]] = []
    summary: list[tuple[str, datetime | None]] = []
    products: list[tuple[str, str, datetime | None, int]] = []
    made = 0
    hist_no = 0

    async def flush() -> None:
        nonlocal rows, summary, products
        if rows:
            await conn.copy_records_to_table(
                "dials",
                records=rows,
                columns=[
                    "campaign_id",
                    "contact_id",
                    "number",
                    "product",
                    "segment",
                    "did",
                    "rule_set_id",
                    "claimed_by",
                    "channel_id",
                    "dialed_at",
                    "answered_at",
                    "ended_at",
                    "outcome",
                    "disposition",
                ],
            )
        if summary:
            await conn.execute("CREATE TEMP TABLE IF NOT EXISTS qs (number text, quiet_until timestamptz)")
            await conn.copy_records_to_table("qs", records=summary)
            await conn.execute(
                "UPDATE contacts c SET quiet_until = qs.quiet_until FROM qs WHERE qs.number = c.number"
            )
            await conn.execute("TRUNCATE qs")
        if products:
            await conn.copy_records_to_table("contact_products", records=products)
        rows, summary, products = [], [], []

    async def chunks() -> AsyncIterator[asyncpg.Record]:
        # contacts in id ranges, so 1M contacts are never all in memory at once
        last = 0
        while True:
            part = await conn.fetch(
                "SELECT id, number, segment FROM contacts WHERE id > $1 ORDER BY id LIMIT 20000", last
            )
            if not part:
                return
            for r in part:
                yield r
            last = part[-1]["id"]

    async for c in chunks():
        g = rnd.random()
        times: list[tuple[datetime, str, str | None]] = []
        if g < 0.20:  # one call left this month for broadband? no: same product 20-29 days ago
            times = [(DAY - day * rnd.randint(20, 29), "broadband", None)]
        elif g < 0.35:  # two calls within the last month: quiet
            a = rnd.randint(5, 28)
            times = [(DAY - day * a, "iptv", None), (DAY - day * (a - rnd.randint(1, 4)), "iptv", None)]
        elif g < 0.45:  # quiet period ending around today (2nd call 89-91 days ago)
            b = rnd.randint(89, 91)
            times = [(DAY - day * (b + 10), "iptv", None), (DAY - day * b, "iptv", None)]
        elif g < 0.50:  # 29 calls this year, spread: one more allowed, then the year cap
            times = [(DAY - day * (40 + 11 * k), "mobile", None) for k in range(29)]
        elif g < 0.55:  # two refusals of broadband: the next refusal ends the product
            times = [(DAY - day * (150 + 40 * k), "broadband", "refusal") for k in range(2)]
        elif g < 0.58:  # three refusals: broadband ended
            times = [(DAY - day * (150 + 40 * k), "broadband", "refusal") for k in range(3)]
        # filler: old calls (4-11 months ago), up to the budget
        extra = max(0, round(per_contact - len(times) + rnd.uniform(-1, 1)))
        for _ in range(min(extra, 12)):
            times.append(
                (DAY - day * rnd.randint(120, 330) - timedelta(hours=rnd.random() * 8), "mobile", None)
            )
        times.sort()
        for t, product, disp in times:
            hist_no += 1
            rows.append(
                (
                    legacy,
                    c["id"],
                    c["number"],
                    product,
                    c["segment"],
                    "4008001234",
                    rs_id,
                    "history",
                    f"hist-{hist_no}",
                    t,
                    t + timedelta(seconds=8),
                    t + timedelta(seconds=90),
                    "answered",
                    disp,
                )
            )
        made += len(times)
        if times:
            summary.append((c["number"], quiet_until([t for t, _, _ in times], rules)))
            by_p: dict[str, tuple[datetime, int]] = {}
            for t, product, disp in times:
                last, ref = by_p.get(product, (t, 0))
                by_p[product] = (max(last, t), ref + (disp == "refusal"))
            products += [(c["number"], p, last, ref) for p, (last, ref) in by_p.items()]
        if len(rows) >= 50_000:
            await flush()
    await flush()
    await conn.execute("ANALYZE")
    return made


# ---- the simulated floor --------------------------------------------------------------------
@dataclass
class Agent:
    name: str
    state: str = "free"  # free, reserved, talking, wrap
    talk_s: float = 0.0


@dataclass(order=True)
class Ev:
    at: float
    seq: int
    fn: Callable[[], Any] = field(compare=False)


class Floor:
    """30 agents, inbound callers (who come first) and outbound customers, on virtual time."""

    def __init__(self, n_agents: int, rnd: random.Random, clock: ManualClock) -> None:
        self.agents = [Agent(f"agent{i + 1}") for i in range(n_agents)]
        self.rnd = rnd
        self.clock = clock
        self.inbound_queue: list[float] = []
        self.peak_until = 0.0
        self.peak_from = float("inf")
        self.events: list[Ev] = []
        self.seq = 0
        self.waiting_outbound: list[tuple[float, int]] = []  # (answered at, dial id) not yet connected
        self.dials_while_inbound = 0
        self.dialer: Dialer | None = None
        self.pending: list[Any] = []

    # FloorView
    def free_agents(self) -> list[str]:
        return [a.name for a in self.agents if a.state == "free"]

    def busy_agents(self) -> int:
        return sum(1 for a in self.agents if a.state in ("talking", "wrap"))

    def inbound_waiting(self) -> int:
        return len(self.inbound_queue)

    def in_peak(self) -> bool:
        return self.peak_from <= self.now() < self.peak_until

    def now(self) -> float:
        return self.clock.now().timestamp()

    def at(self, t: float, fn: Callable[[], Any]) -> None:
        self.seq += 1
        heapq.heappush(self.events, Ev(t, self.seq, fn))

    def agent(self, name: str) -> Agent:
        return next(a for a in self.agents if a.name == name)

    def free_one(self) -> Agent | None:
        return next((a for a in self.agents if a.state == "free"), None)

    def agent_freed(self, a: Agent) -> None:
        a.state = "free"
        if self.inbound_queue:  # inbound first
            self.inbound_queue.pop(0)
            self.talk(a, self.rnd.lognormvariate(5.0, 0.5), None)
            return
        while self.waiting_outbound:
            answered_at, dial_id = self.waiting_outbound.pop(0)
            if self.now() - answered_at <= 2.0:
                self.connect(a, dial_id)
                return

    def talk(self, a: Agent, secs: float, dial_id: int | None) -> None:
        a.state = "talking"
        a.talk_s += secs

        def done() -> None:
            a.state = "wrap"
            if dial_id is not None:
                self.pending.append(("end", dial_id, None))
                r = self.rnd.random()
                disp = (
                    "refusal"
                    if r < 0.3
                    else "sale"
                    if r < 0.36
                    else "never_call"
                    if r < 0.37
                    else "no_decision"
                )
                self.pending.append(("disposition", dial_id, (disp, a.name)))
            self.at(self.now() + 15, lambda: self.agent_freed(a))

        self.at(self.now() + secs, done)

    def connect(self, a: Agent, dial_id: int) -> None:
        self.pending.append(("connected", dial_id, a.name))
        self.talk(a, self.rnd.lognormvariate(4.7, 0.5), dial_id)  # ~120 s

    def inbound_arrives(self) -> None:
        a = self.free_one()
        if a is not None and not self.inbound_queue:
            self.talk(a, self.rnd.lognormvariate(5.0, 0.5), None)
        else:
            self.inbound_queue.append(self.now())

    # the Originate the Dialer sends: customer behaviour decides what comes back
    async def originate(self, req: OutboundOriginate) -> dict[str, Any]:
        if self.inbound_waiting() or self.in_peak():
            self.dials_while_inbound += 1
        t = self.now()
        r = self.rnd.random()
        if r < 0.08:
            self.at(t + 3, lambda: self.pending.append(("hangup", req.dial_id, "17")))
        elif r < 0.62:
            self.at(t + 30, lambda: self.pending.append(("noanswer", req.dial_id, None)))
        else:
            self.at(t + self.rnd.uniform(4, 20), lambda: self.customer_answers(req))
        return {"Response": "Success", "ActionID": f"a-{req.dial_id}"}

    def customer_answers(self, req: OutboundOriginate) -> None:
        self.pending.append(("answered", req.dial_id, None))
        if req.agent is not None:  # progressive: the claimed agent takes it
            a = self.agent(req.agent)
            self.connect(a, req.dial_id)
            return
        a = self.free_one()
        if a is not None:
            self.connect(a, req.dial_id)
            return
        self.waiting_outbound.append((self.now(), req.dial_id))

        def give_up() -> None:
            if any(d == req.dial_id for _, d in self.waiting_outbound):
                self.waiting_outbound = [w for w in self.waiting_outbound if w[1] != req.dial_id]
                # abandoned: the company message (5 s), then the call ends
                self.at(self.now() + 5, lambda: self.pending.append(("end", req.dial_id, None)))

        self.at(self.now() + 2.0, give_up)


async def run_day(
    pool: asyncpg.Pool,
    dialer_of: Callable[[Floor], Dialer],
    start: datetime,
    hours: float,
    rnd: random.Random,
    clock: ManualClock,
    n_agents: int,
    trace: list[Any] | None = None,
) -> dict[str, Any]:
    floor = Floor(n_agents, rnd, clock)
    dialer = dialer_of(floor)
    # progressive claims its agent: the floor marks it reserved while the dial rings
    t0 = start.timestamp()
    end = t0 + hours * 3600
    # inbound callers: ~1 a minute, and a 10-minute burst (a small TV spot) with peak mode
    t = t0
    while t < end:
        t += rnd.expovariate(1 / 60)
        floor.at(t, floor.inbound_arrives)
    burst = t0 + hours * 3600 * 0.5
    for k in range(40):
        floor.at(burst + k * 15, floor.inbound_arrives)
    floor.peak_from, floor.peak_until = burst, burst + 900
    answered_log: list[tuple[float, bool]] = []
    next_tick = t0
    while True:
        # ticks until the end of the period; after it, calls in progress run to their end
        nxt = floor.events[0].at if floor.events else float("inf")
        if next_tick < end and next_tick <= nxt:
            clock.advance(next_tick - clock.now().timestamp())
            res = await dialer.step()
            if trace is not None and int(next_tick - t0) % 60 == 0:
                trace.append(
                    (
                        int(next_tick - t0),
                        len(floor.free_agents()),
                        dialer.in_flight(),
                        round(dialer.overdial, 2),
                        res.wanted,
                        res.dials,
                        res.gate,
                        len(floor.inbound_queue),
                        round(dialer.rates.answer_rate, 2),
                    )
                )
            if dialer.mode == "progressive":
                for d in dialer.live.values():
                    if d.agent and floor.agent(d.agent).state == "free":
                        floor.agent(d.agent).state = "reserved"
            next_tick += 1.0
        elif floor.events:
            ev = heapq.heappop(floor.events)
            clock.advance(max(0.0, ev.at - clock.now().timestamp()))
            ev.fn()
        else:
            break
        for kind, dial_id, arg in floor.pending:
            if kind == "answered":
                await dialer.answered(dial_id)
            elif kind == "connected":
                await dialer.connected(dial_id, arg)
            elif kind == "hangup":
                await dialer.handle_ami({"Event": "Hangup", "Uniqueid": f"cti-ob-{dial_id}", "Cause": arg})
                _release(floor, dialer, dial_id)
            elif kind == "noanswer":
                await dialer.handle_ami(
                    {
                        "Event": "OriginateResponse",
                        "ActionID": f"a-{dial_id}",
                        "Response": "Failure",
                        "Reason": "3",
                        "Uniqueid": "<unknown>",
                    }
                )
                _release(floor, dialer, dial_id)
            elif kind == "end":
                live = dialer.live.get(dial_id)
                if live is not None and live.answered_at is not None:
                    answered_log.append((live.answered_at.timestamp(), live.connected_at is None))
                await dialer.ended(dial_id)
            elif kind == "disposition":
                async with pool.acquire() as conn:
                    await outcomes.record_disposition(conn, dial_id, arg[0], clock.now(), by=arg[1])
        floor.pending.clear()
    talk = sum(a.talk_s for a in floor.agents)
    return {
        "occupancy": talk / (n_agents * hours * 3600),
        "answered": answered_log,
        "dials_while_inbound_waiting": floor.dials_while_inbound,
        "t0": t0,
        "end": end,
    }


def _release(floor: Floor, dialer: Dialer, dial_id: int) -> None:
    """A progressive dial that failed frees its reserved agent."""
    for a in floor.agents:
        if a.state == "reserved" and not any(d.agent == a.name for d in dialer.live.values()):
            floor.agent_freed(a)


def max_window_rate(
    answered: list[tuple[float, bool]], t0: float, end: float, window: float
) -> tuple[float, int]:
    worst, worst_n = 0.0, 0
    s = t0
    while s + window <= end:
        inside = [ab for t, ab in answered if s <= t < s + window]
        if inside:
            r = sum(inside) / len(inside)
            if r > worst:
                worst, worst_n = r, len(inside)
        s += 300
    return worst, worst_n


async def main(
    n_contacts: int, past_calls: int, hours: float, n_agents: int, day_seed: int = 9
) -> dict[str, Any]:
    server = ScratchServer(prefix="cti_bench_dialer")
    await server.start()
    out: dict[str, Any] = {"benchmark": "dialer", "contacts": n_contacts, "past_calls_target": past_calls}
    try:
        dsn = await server.new_database_url()
        pool = await asyncpg.create_pool(dsn, min_size=2, max_size=3)
        policy = load_policy()
        rules = RuleSet.from_policy(policy, TZ, WINDOWS)
        rnd = random.Random(5)
        async with pool.acquire() as conn:
            with tempfile.TemporaryDirectory() as tmp:
                f = Path(tmp) / "contacts.csv"
                write_csv(f, n_contacts, rnd)
                t = time.perf_counter()
                rep = await import_file(conn, f, list_name="hostile", by="bench")
                dt = time.perf_counter() - t
            out["import_rows_per_s"] = round(rep.rows_total / dt)
            out["import_rows_bad"] = rep.bad_count
            rs_id = await rule_set_id(conn, rules)
            legacy = await campaigns.create(
                conn,
                name="legacy",
                product="mobile",
                queue="sales",
                did="4008001234",
                mode="progressive",
                by="bench",
                windows=WINDOWS,
            )
            a = await campaigns.create(
                conn,
                name="broadband-summer",
                product="broadband",
                queue="sales",
                did="4008001234",
                mode="predictive",
                by="bench",
                windows=WINDOWS,
                max_attempts=3,
                retry_backoff_s=7200,
            )
            b = await campaigns.create(
                conn,
                name="iptv-summer",
                product="iptv",
                queue="sales",
                did="4008005678",
                mode="progressive",
                by="bench",
                windows=WINDOWS,
                max_attempts=3,
                retry_backoff_s=7200,
            )
            list_id = await conn.fetchval("SELECT id FROM contact_lists WHERE name = 'hostile'")
            await campaigns.attach_list(conn, a, list_id)
            await campaigns.attach_list(conn, b, list_id)
            await conn.execute(
                """INSERT INTO dnc (number, category, added_at, added_by)
                   SELECT number, CASE WHEN id % 100 < 2 THEN 'public_phone'
                                       ELSE ($1::text[])[1 + (id % 5)] END,
                          $2, 'bench'
                   FROM contacts WHERE id % 100 < 10""",
                list(DNC_CATEGORIES),
                DAY - timedelta(days=30),
            )
            t = time.perf_counter()
            out["past_calls"] = await build_history(conn, rules, rs_id, legacy, past_calls)
            out["history_build_s"] = round(time.perf_counter() - t, 1)
            for k in (a, b):
                await campaigns.set_status(conn, k, "running", by="bench")
            # housekeeping the dialer runs every 10 minutes: skipped contacts off the head of the order
            t = time.perf_counter()
            out["park_moved"] = await park_ineligible(conn, a, DAY + timedelta(hours=1), rules)
            out["park_s"] = round(time.perf_counter() - t, 2)
            # the next 1,000 eligible
            lat = []
            for i in range(60):
                t = time.perf_counter()
                got = await next_eligible(conn, a, DAY + timedelta(hours=1, seconds=i), rules, 1000)
                lat.append((time.perf_counter() - t) * 1000)
            out["eligible_1000_p99_ms"] = round(p99(lat), 2)
            out["eligible_1000_median_ms"] = round(statistics.median(lat), 2)
            out["eligible_returned"] = len(got)
            # the pre-dial check + claim, then release (as a dial that was not answered)
            lat = []
            at = DAY + timedelta(minutes=10)
            for cand in (await next_eligible(conn, b, at, rules, 400))[:400]:
                t = time.perf_counter()
                c = await try_claim(
                    conn,
                    campaign_id=b,
                    contact_id=cand.contact_id,
                    now=at,
                    rules=rules,
                    rule_set=rs_id,
                    process="bench",
                )
                lat.append((time.perf_counter() - t) * 1000)
                if c:
                    await outcomes.record_end(conn, c.dial_id, "no_answer", at + timedelta(seconds=30))
            out["predial_check_p99_ms"] = round(p99(lat), 2)
            out["predial_check_median_ms"] = round(statistics.median(lat), 2)
        # the day: predictive on campaign a, then progressive on campaign b (same floor size)
        clock = ManualClock(DAY)
        day_start = DAY
        results = {}
        day1 = DAY + timedelta(hours=1)  # after the latency probes (09:10), so virtual time only moves on
        for mode, k, start in (("predictive", a, day1), ("progressive", b, day1 + timedelta(hours=hours))):
            clock.advance(max(0.0, (start - clock.now()).total_seconds()))

            def make(floor: Floor, mode: str = mode, k: int = k) -> Dialer:
                d = Dialer(
                    pool,
                    k,
                    mode,
                    "sales",
                    rules,
                    rs_id,
                    clock,
                    floor.originate,
                    floor,
                    abandon_max=policy.caps.abandon_rate_max,
                    process="bench",
                )
                floor.dialer = d
                return d

            t = time.perf_counter()
            results[mode] = await run_day(pool, make, start, hours, random.Random(day_seed), clock, n_agents)
            results[mode]["wall_s"] = time.perf_counter() - t
        pred = results["predictive"]
        worst, n = max_window_rate(
            pred["answered"], pred["t0"], pred["end"], policy.outbound.abandon_window_s
        )
        out["abandon_rate"] = round(worst, 4)
        out["abandon_rate_window_answered"] = n
        total = pred["answered"]
        out["abandon_rate_day"] = round(sum(ab for _, ab in total) / max(1, len(total)), 4)
        out["occupancy_predictive"] = round(pred["occupancy"], 3)
        out["occupancy_progressive"] = round(results["progressive"]["occupancy"], 3)
        out["occupancy_gain"] = round(out["occupancy_predictive"] - out["occupancy_progressive"], 3)
        out["dials_while_inbound_waiting"] = sum(r["dials_while_inbound_waiting"] for r in results.values())
        out["day_wall_s"] = round(sum(r["wall_s"] for r in results.values()), 1)
        async with pool.acquire() as conn:
            out["day_dials"] = await conn.fetchval(
                "SELECT count(*) FROM dials WHERE dialed_at >= $1", day_start
            )
            t = time.perf_counter()
            violations = await audit(conn, day_start - timedelta(hours=1))
            out["audit_s"] = round(time.perf_counter() - t, 1)
        out["violations"] = len(violations)
        out["violation_examples"] = [v.as_dict() for v in violations[:5]]
        out["agents"] = n_agents
        out["hours_per_mode"] = hours
        out["day_seed"] = day_seed
        await pool.close()
    finally:
        await server.stop()
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--contacts", type=int, default=200_000, help="list size (the issue's full size: 1000000)"
    )
    ap.add_argument("--past-calls", type=int, default=1_000_000, help="history size (full: 5000000)")
    ap.add_argument("--hours", type=float, default=3.0, help="simulated hours per pacing mode")
    ap.add_argument("--agents", type=int, default=30)
    ap.add_argument("--day-seed", type=int, default=9, help="the simulated day's customers and calls")
    ap.add_argument("--json", action="store_true", help="print one JSON object (the default output)")
    args = ap.parse_args()
    configure("json", "error", stream=sys.stderr)
    result = asyncio.run(main(args.contacts, args.past_calls, args.hours, args.agents, args.day_seed))
    json.dump(result, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")

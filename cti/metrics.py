"""Prometheus metrics (`/metrics`, prometheus_client's own exposition format).

Two kinds, to keep the hot paths cheap:
- a few instruments updated where things happen: the FastAGI decision histogram (one observe per
  session), event-store lag (one observe per written batch, not per event), line-test results. They
  live in the module registry `HOT`.
- everything else is read when Prometheus scrapes (`CtiCollector`): counters the parts already keep
  (AMIClient.connects, EventStore.written/spooled), live state, and a few database figures fetched by
  `refresh()` just before the scrape. Nothing is computed per event for them.

Alert rules a center should set: docs/metrics.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

HOT = CollectorRegistry(auto_describe=True)

AGI_DECISION = Histogram(
    "cti_agi_decision_seconds",
    "FastAGI session time from the agi_ block to the handler's last command, by script",
    ["script"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=HOT,
)
AGI_SESSIONS = Counter(
    "cti_agi_sessions",
    "FastAGI sessions by script and outcome (completed, hangup, fallback)",
    ["script", "outcome"],
    registry=HOT,
)
EVENT_LAG = Histogram(
    "cti_event_lag_seconds",
    "Event timestamp (Asterisk's Timestamp for AMI events) to stored in PostgreSQL: the oldest event "
    "of each written batch, so the worst lag of the batch",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0),
    registry=HOT,
)
LINE_TESTS = Counter(
    "cti_line_tests", "Line tests (R-LINE-TEST) by DID and result (passed, failed, skipped)",
    ["did", "result"], registry=HOT,
)  # fmt: skip
LINE_TEST_OK = Gauge(
    "cti_line_test_ok", "1 when the last line test of the DID passed, 0 when it failed or was skipped",
    ["did"], registry=HOT,
)  # fmt: skip

# label children resolved once per script name: .labels() takes a lock and builds a tuple each call
_agi_children: dict[str, tuple[Any, Any, Any, Any]] = {}


def observe_agi(script: str, seconds: float, outcome: str) -> None:
    c = _agi_children.get(script)
    if c is None:
        c = _agi_children[script] = (
            AGI_DECISION.labels(script),
            AGI_SESSIONS.labels(script, "completed"),
            AGI_SESSIONS.labels(script, "hangup"),
            AGI_SESSIONS.labels(script, "fallback"),
        )
    c[0].observe(seconds)
    c[{"completed": 1, "hangup": 2}.get(outcome, 3)].inc()


def observe_event_lag(seconds: float) -> None:
    EVENT_LAG.observe(max(0.0, seconds))


def line_test_result(did: str, result: str) -> None:
    LINE_TESTS.labels(did, result).inc()
    LINE_TEST_OK.labels(did).set(1 if result == "passed" else 0)


def _spool_size(spool: Any) -> tuple[int, int]:
    n = size = 0
    try:
        for p in spool.segments():
            n += 1
            size += p.stat().st_size
    except OSError:
        pass
    return n, size


@dataclass(eq=False)
class CtiCollector(Collector):
    """Figures read at scrape time from the running parts (any may be None: not running here)."""

    ami: Any = None  # AMIClient: .connected, .connects
    store: Any = None  # EventStore: .written, .spooled, .dead, .spool.directory, .backlog()
    agi: Any = None  # FastAgiServer: ._tasks (sessions in progress)
    live: Any = None  # LiveState
    in_peak: Callable[[], bool] | None = None
    dialer: Any = None  # cti.outbound.runner.OutboundRunner: .dialers (campaign id -> Dialer)
    pool: Any = None  # asyncpg pool for refresh()
    now: Callable[[], float] = time.time
    _db: dict[str, float] = field(default_factory=dict)

    async def refresh(self) -> None:
        """The database figures, fetched once per scrape (Prometheus collectors are synchronous)."""
        if self.pool is None:
            return
        async with self.pool.acquire() as conn:
            r = await conn.fetchrow(
                """SELECT (SELECT count(*) FROM callbacks WHERE status IN ('open', 'dialing')) AS backlog,
                          (SELECT extract(epoch FROM min(first_call_at)) FROM callbacks
                            WHERE status IN ('open', 'dialing')) AS oldest,
                          (SELECT count(*) FROM web_sessions WHERE expires_at > to_timestamp($1)) AS web""",
                self.now(),
            )
        self._db = {
            "backlog": float(r["backlog"]),
            "oldest_age": max(0.0, self.now() - float(r["oldest"])) if r["oldest"] is not None else 0.0,
            "web": float(r["web"]),
        }

    def describe(self) -> list[Metric]:
        return []  # names vary with what is running; no need to check them at registration

    def collect(self) -> Iterator[Metric]:
        if self.ami is not None:
            yield GaugeMetricFamily("cti_ami_connected", "1 while the AMI connection is logged in",
                                    value=1 if self.ami.connected else 0)  # fmt: skip
            yield CounterMetricFamily("cti_ami_reconnects", "AMI logins after the first one",
                                      value=max(0, self.ami.connects - 1))  # fmt: skip
        if self.store is not None:
            yield CounterMetricFamily("cti_events_stored", "Event rows written to PostgreSQL",
                                      value=self.store.written)  # fmt: skip
            yield CounterMetricFamily("cti_events_spooled", "Event rows written to the on-disk spool "
                                      "(PostgreSQL unreachable)", value=self.store.spooled)  # fmt: skip
            yield CounterMetricFamily("cti_events_dead_lettered", "Event rows PostgreSQL refused",
                                      value=self.store.dead)  # fmt: skip
            n, size = _spool_size(self.store.spool)
            yield GaugeMetricFamily("cti_spool_segments", "Spool segments waiting to be written", value=n)
            yield GaugeMetricFamily("cti_spool_bytes", "Bytes in spool segments waiting", value=size)
            yield GaugeMetricFamily("cti_event_backlog", "Events accepted, not yet written or spooled",
                                    value=self.store.backlog)  # fmt: skip
        if self.agi is not None:
            yield GaugeMetricFamily("cti_agi_sessions_active", "FastAGI sessions in progress",
                                    value=len(self.agi._tasks))  # fmt: skip
        if self.in_peak is not None:
            yield GaugeMetricFamily("cti_peak_mode", "1 while peak mode is on (R-PEAK)",
                                    value=1 if self.in_peak() else 0)  # fmt: skip
        if self.live is not None:
            yield from self._agents()
        if self.dialer is not None:
            dialers = list(self.dialer.dialers.values())
            g = GaugeMetricFamily("cti_dialer_state", "The outbound dialer (R-PACE): running while a "
                                  "campaign runs in this process, else off", labels=["state"])  # fmt: skip
            g.add_metric(["running"], 1 if dialers else 0)
            g.add_metric(["off"], 0 if dialers else 1)
            yield g
            yield GaugeMetricFamily("cti_dialer_campaigns", "Campaigns with a dialer in this process",
                                    value=len(dialers))  # fmt: skip
        if self._db:
            yield GaugeMetricFamily("cti_callback_backlog", "Callbacks open or being dialed",
                                    value=self._db["backlog"])  # fmt: skip
            yield GaugeMetricFamily("cti_callback_oldest_age_seconds", "Age of the oldest open callback "
                                    "(first call to now)", value=self._db["oldest_age"])  # fmt: skip
            yield GaugeMetricFamily("cti_web_sessions", "Web sessions not expired", value=self._db["web"])

    def _agents(self) -> Iterator[Metric]:
        from cti.state.reducer import member_is_free

        now = self.now()
        logged: set[str] = set()
        paused: set[str] = set()
        ready: set[str] = set()
        for m in list(self.live.state.members.values()):
            logged.add(m.name)
            if m.paused:
                paused.add(m.name)
            elif member_is_free(m, now):
                ready.add(m.name)
        g = GaugeMetricFamily("cti_agents", "Agents in a queue, by state (logged_in counts each agent "
                              "once; ready = free to take a call now)", labels=["state"])  # fmt: skip
        g.add_metric(["logged_in"], len(logged))
        g.add_metric(["ready"], len(ready - paused))
        g.add_metric(["paused"], len(paused))
        yield g


async def exposition(collector: CtiCollector | None) -> bytes:
    """The text Prometheus scrapes: the hot-path instruments, then the scrape-time figures."""
    out = generate_latest(HOT)
    if collector is not None:
        await collector.refresh()
        out += generate_latest(collector)  # type: ignore[arg-type]  # it only needs .collect()
    return out

"""The outbound part of a rehearsal (a scenario with `[outbound]`, e.g. scenarios/outbound_day.toml):
the campaign and its contact list set up through the product (the list generated from the scenario's
seed and imported like a supervisor's CSV), the simulated agents posting their dispositions through
the outbound HTTP API as the agent panel does, and the day's figures read back — the funnel, the
abandon rate over rolling windows, the compliance audit, dials while inbound callers waited — beside
the simulator's own ledger of every dial, so a gap between the two shows."""

from __future__ import annotations

import asyncio
import csv
import secrets
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import structlog

from cti.outbound import campaigns
from cti.outbound.audit import audit
from cti.outbound.funnel import funnel
from cti.outbound.imports import import_file
from cti.outbound.rules import Window
from cti.policy import Policy
from cti.sim.outbound_customers import DialRecord, contact_rows
from cti.sim.scenario import Scenario
from cti.web.auth import add_user

log = structlog.get_logger(__name__)

# 外呼时间: everyone 09:00-21:00, company bosses only 10:00-11:30 (issue 14's example)
WINDOWS = (Window("default", time(9), time(21)), Window("boss", time(10), time(11, 30)))
# An inbound caller who had waited longer than this when a dial reached the PBX counts against "no
# dial while inbound callers wait": the pacer ticks every second and sees the caller through AMI.
INBOUND_GRACE_S = 2.0


async def prepare(conn: asyncpg.Connection, scenario: Scenario) -> tuple[int, dict[str, str]]:
    """The campaign (running), its contacts, and a web login per agent. Returns (campaign id,
    agent id -> password). A second call (a CTI restart in a rehearsal) reuses the campaign."""
    cfg = scenario.outbound
    assert cfg is not None
    cid = await conn.fetchval("SELECT id FROM campaigns WHERE name = $1", cfg.campaign)
    if cid is None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{scenario.name}-contacts.csv"
            with path.open("w", encoding="utf-8", newline="") as f:
                w = csv.writer(f)
                w.writerow(["姓名", "手机号码", "客户类型"])
                w.writerows(contact_rows(cfg, scenario.seed))
            list_name = f"{scenario.name} contacts"
            await import_file(conn, path, list_name=list_name, by="rehearsal")
        cid = await campaigns.create(
            conn, name=cfg.campaign, product=cfg.product, queue=cfg.queue, did=cfg.did, mode=cfg.mode,
            by="rehearsal", max_attempts=cfg.max_attempts, retry_backoff_s=cfg.retry_backoff_s,
            windows=WINDOWS,
        )  # fmt: skip
        list_id = await conn.fetchval("SELECT id FROM contact_lists WHERE name = $1", list_name)
        await campaigns.attach_list(conn, cid, list_id)
        await campaigns.set_status(conn, cid, "running", by="rehearsal")
    passwords = {}
    for a in scenario.agents:
        passwords[a.id] = secrets.token_urlsafe(12)
        await add_user(conn, a.id, passwords[a.id], "agent", display_name=a.name, agent_id=a.id)
    return int(cid), passwords


@dataclass
class AgentPanels:
    """The simulated agents' panels: each logs in to the web UI with its own account and posts the
    verdict of every call it took to POST /api/outbound/dials/{id}/disposition."""

    base_url: str
    passwords: dict[str, str]
    posted: int = 0
    failed: int = 0
    _session: aiohttp.ClientSession | None = None
    _tokens: dict[str, str] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> None:
        # cookies handled by hand: aiohttp's jar refuses cookies from an IP host like 127.0.0.1
        self._session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())

    async def close(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def _login(self, agent: str) -> str:
        assert self._session is not None
        async with self._session.post(
            f"{self.base_url}/login",
            data={"username": agent, "password": self.passwords[agent]},
            allow_redirects=False,
        ) as r:
            cookie = r.cookies.get("cti_session")
            if cookie is None:
                raise RuntimeError(f"login of {agent} failed: HTTP {r.status}")
            self._tokens[agent] = cookie.value
            return cookie.value

    async def post(self, dial_id: int, agent: str, verdict: str) -> None:
        assert self._session is not None
        for _ in range(2):  # a session may expire on a long simulated day: log in again once
            token = self._tokens.get(agent) or await self._login(agent)
            async with self._session.post(
                f"{self.base_url}/api/outbound/dials/{dial_id}/disposition",
                json={"disposition": verdict},
                headers={"Cookie": f"cti_session={token}", "Origin": self.base_url},
            ) as r:
                if r.status == 401:
                    self._tokens.pop(agent, None)
                    continue
                if r.status == 200:
                    self.posted += 1
                    return
                self.failed += 1
                log.warning("rehearsal_disposition_refused", dial_id=dial_id, status=r.status)
                return

    def tell(self, dial_id: int, agent: str, verdict: str) -> None:
        """The simulator's hook (OutboundCustomers.on_verdict): post in the background."""
        task = asyncio.create_task(self._post_logged(dial_id, agent, verdict), name=f"disposition-{dial_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post_logged(self, dial_id: int, agent: str, verdict: str) -> None:
        try:
            await self.post(dial_id, agent, verdict)
        except (aiohttp.ClientError, RuntimeError, OSError) as e:
            self.failed += 1
            log.warning("rehearsal_disposition_failed", dial_id=dial_id, error=type(e).__name__)


def progress(ledger: Sequence[DialRecord]) -> dict[str, int]:
    """Running counts for the demo's progress line (the simulator's view)."""
    return {
        "dials": len(ledger),
        "connects": sum(1 for r in ledger if r.connected_at is not None),
        "abandoned": sum(1 for r in ledger if r.abandoned),
        "sales": sum(1 for r in ledger if r.verdict == "sale" and r.connected_at and r.ended_at),
    }


def max_window_rate(
    answered: Sequence[tuple[float, bool]], window_s: float, step_s: float = 300.0
) -> tuple[float, int]:
    """Worst abandon share over windows of `window_s` sliding by `step_s` (answered time, abandoned),
    and how many answered calls that window held. Windows shorter than the day's span are not
    measured at its end: a window always covers `window_s` (or the whole day if shorter)."""
    if not answered:
        return 0.0, 0
    ts = sorted(answered)
    t0, t_end = ts[0][0], ts[-1][0]
    worst, worst_n = 0.0, 0
    s = t0
    while True:
        inside = [ab for t, ab in ts if s <= t < s + window_s]
        if inside:
            r = sum(inside) / len(inside)
            if r > worst:
                worst, worst_n = r, len(inside)
        if s + window_s > t_end:
            return worst, worst_n
        s += step_s


async def summarise(
    conn: asyncpg.Connection,
    scenario: Scenario,
    policy: Policy,
    campaign_id: int,
    ledger: Sequence[DialRecord],
    panels: AgentPanels | None = None,
) -> dict[str, Any]:
    """The day's outbound figures from PostgreSQL, and the same counted from the simulator's ledger."""
    since = scenario.start - timedelta(minutes=1)
    until = datetime.max.replace(tzinfo=scenario.start.tzinfo)
    o = policy.outbound
    rows = await funnel(conn, "campaign", since, until, scenario.timezone, o.effective_talk_s, campaign_id)
    f = rows[0] if rows else None
    dials = await conn.fetch(
        "SELECT answered_at, outcome FROM dials WHERE campaign_id = $1 AND dialed_at >= $2 "
        "AND answered_at IS NOT NULL",
        campaign_id,
        since,
    )
    answered = [(d["answered_at"].timestamp(), d["outcome"] == "abandoned") for d in dials]
    worst, worst_n = max_window_rate(answered, o.abandon_window_s)
    n_abandoned = sum(1 for _, ab in answered if ab)
    violations = await audit(conn, since)
    ob = [r for r in ledger if r.dial_id is not None]
    out: dict[str, Any] = {
        "campaign": scenario.outbound.campaign if scenario.outbound else "",
        "dials": f.dials if f else 0,
        "answered": len(answered),
        "connects": f.connects if f else 0,
        "connect_rate": f.connect_rate if f else 0.0,
        "talks": f.effective_talks if f else 0,
        "orders": f.orders if f else 0,
        "abandoned": n_abandoned,
        "abandon_rate_day": round(n_abandoned / len(answered), 4) if answered else 0.0,
        "abandon_rate_max_window": round(worst, 4),
        "abandon_window_answered": worst_n,
        "dials_while_inbound_waiting": sum(1 for r in ob if r.inbound_waiting_s > INBOUND_GRACE_S),
        "compliance_violations": len(violations),
        "violation_examples": [v.as_dict() for v in violations[:3]],
        "sim_ledger": {
            "dials": len(ob),
            "busy": sum(1 for r in ob if r.result == "busy"),
            "no_answer": sum(1 for r in ob if r.result == "noanswer"),
            "congestion": sum(1 for r in ob if r.result == "congestion"),
            "answered": sum(1 for r in ob if r.answered_at is not None),
            "connects": sum(1 for r in ob if r.connected_at is not None),
            "abandoned": sum(1 for r in ob if r.abandoned),
            # a call still under way when the run stopped has no disposition yet
            "sales": sum(1 for r in ob if r.verdict == "sale" and r.connected_at and r.ended_at),
        },
    }
    if panels is not None:
        out["dispositions_posted"] = panels.posted
        out["dispositions_failed"] = panels.failed
    return out

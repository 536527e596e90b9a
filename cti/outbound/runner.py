"""Runs the dialer for every running campaign inside `cti serve`: the floor seen through LiveState
(AMI), peak mode from the PeakMonitor, Originate through the AMI client.

Only one process per site paces (issue 18): the runner holds a PostgreSQL session advisory lock
while it dials; another process's runner waits for it and takes over when the holder's connection
dies. The claims make a second pacer harmless for contacts and agents, but two predictive pacers
would each dial ahead for the same free agents (twice the abandons)."""

from __future__ import annotations

import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import structlog

from cti.clock import Clock
from cti.db.connect import CONNECT_TIMEOUT_S, close_bounded
from cti.outbound import outcomes
from cti.outbound.campaigns import windows_of
from cti.outbound.dialer import Dialer, OutboundOriginate
from cti.outbound.eligibility import rule_set_id
from cti.outbound.rules import RuleSet
from cti.policy import Policy
from cti.state.live import LiveState

log = structlog.get_logger(__name__)

PACER_LOCK_KEY = 0x6374692D6F75746B  # "cti-outk": fixed forever


def _process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class LiveFloor:
    """FloorView over LiveState for one queue. Inbound first counts callers waiting in ANY queue;
    our own predictive customers waiting for an agent (Uniqueid cti-ob-N) are not inbound."""

    live: LiveState
    queue: str
    in_peak_fn: Callable[[], bool]

    def free_agents(self) -> list[str]:
        return self.live.free_agents(self.queue)

    def busy_agents(self) -> int:
        now = self.live.state.last_ts
        return sum(
            1
            for m in self.live.members(self.queue)
            if m.in_call is not None or (m.wrapup_until is not None and now < m.wrapup_until)
        )

    def wrapup_s(self) -> float:
        """The queue's wrap-up after each call (QueueMember Wrapuptime): part of the handle time."""
        return max((m.wrapup_s for m in self.live.members(self.queue)), default=0.0)

    def inbound_waiting(self) -> int:
        return sum(1 for c in self.live.state.callers.values() if not c.uniqueid.startswith("cti-ob-"))

    def in_peak(self) -> bool:
        return bool(self.in_peak_fn())


@dataclass
class OutboundRunner:
    pool: asyncpg.Pool
    dsn: str
    live: LiveState
    policy: Policy
    timezone: str
    clock: Clock
    originate: Callable[[OutboundOriginate], Awaitable[Mapping[str, Any]]]
    in_peak: Callable[[], bool]
    tick_s: float = 1.0
    refresh_s: float = 10.0
    dialers: dict[int, Dialer] = field(default_factory=dict)
    orphan_after_s: float = 4 * 3600.0  # longer than any outbound call, lease or not
    orphans_every_s: float = 60.0
    pacing: bool = False  # this process holds the pacer lock

    def status(self) -> dict[str, Any]:
        """The live pacing of each campaign, for the supervisors' API (empty where another process
        paces: `pacing` says which)."""
        return {"pacing": self.pacing, "campaigns": [d.status() for d in self.dialers.values()]}

    async def handle_ami(self, frame: Mapping[str, Any]) -> None:
        for d in list(self.dialers.values()):
            await d.handle_ami(frame)

    async def refresh(self) -> None:
        """Start a Dialer for each newly running campaign; stopped or paused ones keep their Dialer
        only until their calls end (their outcomes still arrive)."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch("SELECT id, mode, queue FROM campaigns WHERE status = 'running'")
            for r in rows:
                # windows may have changed: the rule set a dial records must be the one it was checked by
                rules = RuleSet.from_policy(self.policy, self.timezone, await windows_of(conn, r["id"]))
                d = self.dialers.get(r["id"])
                if d is not None:
                    if d.rules != rules:
                        d.rules, d.rule_set_id = rules, await rule_set_id(conn, rules)
                    continue
                o = self.policy.outbound
                self.dialers[r["id"]] = Dialer(
                    self.pool,
                    r["id"],
                    r["mode"],
                    r["queue"],
                    rules,
                    await rule_set_id(conn, rules),
                    self.clock,
                    self.originate,
                    LiveFloor(self.live, r["queue"], self.in_peak),
                    abandon_connect_s=o.abandon_connect_s,
                    abandon_window_s=o.abandon_window_s,
                    abandon_max=self.policy.caps.abandon_rate_max,
                )
        running = {r["id"] for r in rows}
        for cid in [c for c, d in self.dialers.items() if c not in running and not d.live]:
            del self.dialers[cid]

    async def preview_dial(self, campaign_id: int, contact_id: int, agent: str) -> dict[str, Any] | None:
        """Preview mode: the agent saw the masked record and pressed dial. Claimed like any dial."""
        if campaign_id not in self.dialers:
            await self.refresh()
        d = self.dialers.get(campaign_id)
        if d is None or d.mode != "preview":
            raise LookupError(f"campaign {campaign_id} is not a running preview campaign")
        return await d.dial_one(contact_id, agent)

    async def _release_orphans(self) -> None:
        try:
            async with self.pool.acquire() as conn:
                freed = await outcomes.release_orphans(
                    conn, _process(), self.clock.now(), self.orphan_after_s
                )
        except (asyncpg.PostgresError, OSError) as e:
            log.warning("outbound_orphans_failed", error=type(e).__name__)
            return
        if freed:
            log.warning("outbound_orphan_claims_released", count=freed)

    async def run(self) -> None:
        lock = await asyncpg.connect(self.dsn, timeout=CONNECT_TIMEOUT_S)
        try:
            # waits while another process paces; its session ending (crash included) hands it over
            await lock.execute("SELECT pg_advisory_lock($1)", PACER_LOCK_KEY)
            log.info("outbound_pacer_leader")
            self.pacing = True
            last_refresh = last_orphans = float("-inf")
            while True:
                now = self.clock.time()
                if now - last_orphans >= self.orphans_every_s:
                    # what a dead process left (a pacer before us, or a preview dial's): no one will
                    # end it now. Checked at takeover and then now and then: a process may die later.
                    await self._release_orphans()
                    last_orphans = now
                if now - last_refresh >= self.refresh_s:
                    await self.refresh()  # a paused campaign's step dials nothing anyway (predicate)
                    last_refresh = now
                for cid, d in list(self.dialers.items()):
                    try:
                        await d.step()
                    except (asyncpg.PostgresError, OSError) as e:
                        log.warning("outbound_step_failed", campaign=cid, error=type(e).__name__)
                await self.clock.sleep(self.tick_s)
        finally:
            self.pacing = False
            await close_bounded(lock)

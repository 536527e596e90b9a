"""Peak status and switch as the web layer calls them (`Services.peak_status`, `Services.set_peak`
in cti/web/app.py): plain dicts, JSON-ready."""

from __future__ import annotations

from typing import Any

from cti.clock import Clock
from cti.peak import repo
from cti.peak.machine import active_airing
from cti.policy import PeakPolicy


class PeakService:
    def __init__(self, pool: Any, *, clock: Clock, policy: PeakPolicy) -> None:
        self._pool = pool
        self._clock = clock
        self._policy = policy

    async def status(self) -> dict[str, Any]:
        """{active, mode, cause, since, switch_by, airing}; `active` is the peak monitor's last
        decision (False until it has run)."""
        now = self._clock.now()
        async with self._pool.acquire() as conn:
            switch = await repo.get_switch(conn)
            state = await repo.load_state(conn)
            airings = await repo.airings_near(conn, now)
        airing = active_airing(airings, now, self._policy.tail_minutes)
        return {
            "active": bool(state and state.in_peak),
            "mode": switch.mode,
            "cause": state.cause if state else None,
            "since": state.since.isoformat() if state else None,
            "switch_by": switch.updated_by,
            "airing": None
            if airing is None
            else {
                "id": airing.id,
                "channel": airing.channel,
                "program": airing.program,
                "starts_at": airing.starts_at.isoformat(),
                "ends_at": airing.ends_at(self._policy.tail_minutes).isoformat(),
                "expected_calls": airing.expected_calls,
            },
        }

    async def set_switch(self, mode: str, by: str) -> dict[str, Any]:
        """Set the supervisor switch (ValueError for anything but on/off/auto); the monitor turns it
        into a `peak_mode` event on its next tick."""
        async with self._pool.acquire() as conn:
            await repo.set_switch(conn, mode, by=by, now=self._clock.now())
        return await self.status()

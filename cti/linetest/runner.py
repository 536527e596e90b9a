"""Running line tests (R-LINE-TEST): the CTI calls a DID out through the carrier and waits for the same
call to come back in through `[from-trunk]` to the route AGI, which recognises it by the caller
number the carrier presents for our own calls (`linetest.caller_id`) and marks the test passed
(cti/linetest/inbound.py). Pass/fail, the reason and the time it took are stored; a failure or a
skipped test raises an alarm at once (an event, an error log line, the `cti_line_test_ok` metric).

`LineTester.run` works in any process that has AMI: the match is made by whichever process serves
FastAGI, through the `line_test_runs` row. `LineTestScheduler` runs the twice-daily tests in `cti serve`;
its claim row makes two CTI processes run each slot once.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

import structlog

from cti.ami.client import NotConnected
from cti.ami.headers import first
from cti.callbacks.originate import OriginateNotSent
from cti.clock import Clock
from cti.linetest import repo
from cti.linetest.schedule import due, next_wake, slots_for_day
from cti.masking import mask_number
from cti.metrics import line_test_result
from cti.policy import Policy
from cti.store.events import Event

log = structlog.get_logger(__name__)

# AMI action -> reply frame (cti.callbacks.ami_adapter.ami_action); OriginateNotSent when not sent
Action = Callable[[str, Mapping[str, str]], Awaitable[Mapping[str, Any]]]

# OriginateResponse Reason codes (Asterisk's AST_CONTROL_* numbers; 06c: 3 no answer, 0 for a refused
# dial, busy included)
_REASONS = {"0": "the carrier refused the call or the trunk is down", "1": "hung up before answer",
            "3": "no answer", "5": "busy", "8": "congestion (the carrier could not route it)"}  # fmt: skip
CHANNEL_PREFIX = "cti-lt-"


def process_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class LineTestResult:
    id: int
    did: str
    status: str  # passed | failed | skipped
    reason: str | None
    duration_s: float | None


class LineTester:
    def __init__(
        self, pool: Any, *, action: Action, clock: Clock, events: Any, caller_id: str, trunk: str,
        timeout_s: float = 45.0, poll_s: float = 0.2,
    ) -> None:  # fmt: skip
        self.pool, self.action, self.clock, self.events = pool, action, clock, events
        self.caller_id, self.trunk, self.timeout_s, self.poll_s = caller_id, trunk, timeout_s, poll_s
        self._failed: dict[str, str] = {}  # our ChannelId -> why the Originate failed
        self._actions: dict[str, str] = {}  # the Originate's ActionID -> our ChannelId
        self._early: dict[str, str] = {}  # ActionID -> failure seen before the reply was read

    async def handle_ami(self, frame: Mapping[str, Any]) -> None:
        """OriginateResponse Failure for one of our test calls: fail it without waiting the timeout."""
        if first(frame, "Event") != "OriginateResponse" or first(frame, "Response") != "Failure":
            return
        code = first(frame, "Reason")
        reason = f"originate failed: {_REASONS.get(code, 'reason ' + code)}"
        # a failed Originate names no channel (Uniqueid <unknown>, capture 06c): match its ActionID,
        # which may arrive before our coroutine has read the action's reply
        action_id, uid = first(frame, "ActionID"), first(frame, "Uniqueid")
        cid = self._actions.pop(action_id, None) or (uid if uid.startswith(CHANNEL_PREFIX) else None)
        if cid is not None:
            self._failed[cid] = reason
        elif action_id:
            self._early[action_id] = reason

    def originate_headers(self, did: str, channel_id: str) -> dict[str, str]:
        """Out on the trunk to the DID; our leg just waits: the test is the call coming back in."""
        wait = str(int(self.timeout_s))
        return {
            "Channel": f"PJSIP/{did}@{self.trunk}",
            "Application": "Wait",
            "Data": wait,
            "CallerID": self.caller_id,
            "Timeout": str(int(self.timeout_s * 1000)),
            "Variable": f"CTI_LINETEST={channel_id}",
            "Async": "true",
            "ChannelId": channel_id,
        }

    async def run(self, did: str, *, via: str = "cli", test_id: int | None = None) -> LineTestResult:
        """Test-call `did` now (a scheduled test passes the id of the row it claimed)."""
        now = self.clock.now()
        async with self.pool.acquire() as conn:
            if test_id is None:
                test_id = await repo.start_manual(conn, did, now=now, via=via, by=process_id())
            channel_id = f"{CHANNEL_PREFIX}{test_id}"
            await repo.set_channel(conn, test_id, channel_id)
        reason = await self._call(did, channel_id)
        if reason is None:
            reason = await self._wait(test_id, channel_id)
        return await self._finish(test_id, did, reason)

    async def _call(self, did: str, channel_id: str) -> str | None:
        try:
            reply = await self.action("Originate", self.originate_headers(did, channel_id))
        except (OriginateNotSent, NotConnected) as e:
            return f"not called: AMI not connected ({e})"
        except Exception as e:  # sent or not, unknown: the wait below tells
            log.warning("line_test_originate_unknown", did=mask_number(did), error=type(e).__name__)
            return None
        if reply.get("Response") != "Success":
            return f"originate refused: {reply.get('Message', '?')}"
        action_id = first(reply, "ActionID")
        if action_id:
            early = self._early.pop(action_id, None)
            if early is not None:
                return early
            self._actions[action_id] = channel_id
        return None

    async def _wait(self, test_id: int, channel_id: str) -> str | None:
        """None once the route AGI marked it passed; the failure reason otherwise."""
        loop = asyncio.get_running_loop()
        end = loop.time() + self.timeout_s  # network time: the carrier is slow in seconds
        while True:
            async with self.pool.acquire() as conn:
                status = await conn.fetchval("SELECT status FROM line_test_runs WHERE id = $1", test_id)
            if status != "calling":
                return None
            failed = self._failed.pop(channel_id, None)
            if failed is not None:
                return failed
            if loop.time() >= end:
                return (
                    f"did not come back in through from-trunk within {self.timeout_s:g} s "
                    "(the carrier did not deliver the call to us)"
                )
            await asyncio.sleep(self.poll_s)

    async def _finish(self, test_id: int, did: str, reason: str | None) -> LineTestResult:
        now = self.clock.now()
        async with self.pool.acquire() as conn:
            if reason is not None:
                await repo.fail(conn, test_id, reason, now)
            row = await repo.get(conn, test_id)
            await repo.record_slot_result(conn, row)
        result = LineTestResult(
            test_id,
            did,
            row["status"],
            row["reason"],
            float(row["duration_s"]) if row["duration_s"] is not None else None,
        )
        await report(self.events, result, now=now, shift=row["shift"])
        return result


async def report(events: Any, r: LineTestResult, *, now: Any, shift: str | None) -> None:
    """The result as an event (the alarm when not passed), a log line, and the metric."""
    line_test_result(r.did, r.status)
    payload = {"id": r.id, "did": r.did, "status": r.status, "reason": r.reason,
               "duration_s": r.duration_s, "shift": shift}  # fmt: skip
    if r.status == "passed":
        log.info("line_test_passed", did=mask_number(r.did), duration_s=r.duration_s, shift=shift)
    else:  # the alarm: someone must look at the line now
        log.error(f"line_test_{r.status}", did=mask_number(r.did), reason=r.reason, shift=shift)
    try:
        await events.append(Event(ts=now, source="cti", type=f"line_test_{r.status}", payload=payload,
                                  key=f"line_test:{r.id}"))  # fmt: skip
    except Exception:
        log.exception("line_test_event_failed", id=r.id)


class LineTestScheduler:
    """Twice a day (morning and middle shift starts): claim each DID's slot and test it, or record
    it skipped once the 30 minutes are over."""

    def __init__(
        self, pool: Any, tester: LineTester, *, policy: Policy, tz: tzinfo, clock: Clock, events: Any,
        dids: list[str],
    ) -> None:  # fmt: skip
        self.pool, self.tester, self.policy, self.tz = pool, tester, policy, tz
        self.clock, self.events, self.dids = clock, events, dids
        self.by = process_id()

    async def tick(self) -> list[LineTestResult]:
        now = self.clock.now()
        day = now.astimezone(self.tz).date()
        slots = slots_for_day(self.policy, day, self.tz)
        async with self.pool.acquire() as conn:
            dids = await repo.active_dids(conn, self.dids)
            done = await repo.recorded(conn, day)
        out = []
        for d in due(now, slots, dids, done):
            now = self.clock.now()  # tests take time: one reached late is skipped, not run
            if d.action == "run" and now < d.slot.deadline:
                async with self.pool.acquire() as conn:
                    tid = await repo.claim_scheduled(conn, d.did, d.slot.shift, d.slot.day, d.slot.start,
                                                     status="calling", now=now, by=self.by)  # fmt: skip
                if tid is not None:
                    out.append(await self.tester.run(d.did, via="schedule", test_id=tid))
            else:
                reason = (f"not run by {d.slot.deadline.astimezone(self.tz):%H:%M}, 30 minutes after "
                          f"the {d.slot.shift} shift started")  # fmt: skip
                async with self.pool.acquire() as conn:
                    tid = await repo.claim_scheduled(conn, d.did, d.slot.shift, d.slot.day, d.slot.start,
                                                     status="skipped", now=now, by=self.by,
                                                     reason=reason)  # fmt: skip
                if tid is not None:
                    r = LineTestResult(tid, d.did, "skipped", reason, None)
                    await report(self.events, r, now=now, shift=d.slot.shift)
                    out.append(r)
        return out

    async def run(self) -> None:
        while True:
            pending = False
            try:
                pending = bool(await self.tick())
            except Exception as e:  # the database is away: try again later, the slot waits 30 min
                log.warning("line_test_schedule_failed", error=type(e).__name__, detail=str(e)[:200])
            now = self.clock.now()
            slots = slots_for_day(self.policy, now.astimezone(self.tz).date(), self.tz)
            await self.clock.sleep(next_wake(now, slots, pending))


def line_test_scheduler(
    pool: Any, action: Action, *, settings: Any, policy: Policy, clock: Clock, events: Any
) -> LineTestScheduler | None:
    """The scheduler `cti serve` runs, or None (logged) when no test caller number is configured."""
    lt = settings.linetest
    if lt.caller_id is None:
        log.warning("line tests off: set linetest.caller_id (CTI_LINETEST__CALLER_ID) for R-LINE-TEST")
        return None
    tester = LineTester(pool, action=action, clock=clock, events=events, caller_id=lt.caller_id,
                        trunk=settings.ami.trunk_endpoints[0], timeout_s=lt.timeout_s)  # fmt: skip
    return LineTestScheduler(pool, tester, policy=policy, tz=settings.tz, clock=clock, events=events,
                             dids=list(lt.dids))  # fmt: skip

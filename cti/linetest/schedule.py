"""When line tests are due (R-LINE-TEST, seed 004): pure decisions with injected time.

Every DID is test-called at the start of the morning and the middle shift (their start times come
from the policy's shifts). A test may start from the shift's start until 30 minutes after it; a test
not started by then is "skipped" (R-LINE-TEST fines the supervisor when the ledger reads it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Literal

from cti.policy import Policy

LINE_TEST_SHIFTS = ("morning", "middle")
SKIP_AFTER = timedelta(minutes=30)


@dataclass(frozen=True)
class Slot:
    shift: str
    day: date  # the local day
    start: datetime  # aware

    @property
    def deadline(self) -> datetime:
        return self.start + SKIP_AFTER


@dataclass(frozen=True)
class Due:
    did: str
    slot: Slot
    action: Literal["run", "skip"]


def slots_for_day(policy: Policy, day: date, tz: tzinfo) -> list[Slot]:
    """The day's line-test slots: the start of each shift named in LINE_TEST_SHIFTS, in time order."""
    out = []
    for s in policy.shifts:
        if s.name in LINE_TEST_SHIFTS:
            out.append(Slot(s.name, day, datetime.combine(day, s.start, tzinfo=tz)))
    if not out:
        raise ValueError(f"policy has none of the shifts {', '.join(LINE_TEST_SHIFTS)} (R-LINE-TEST)")
    return sorted(out, key=lambda x: x.start)


def due(
    now: datetime,
    slots: Sequence[Slot],
    dids: Iterable[str],
    recorded: set[tuple[str, str, date]],
) -> list[Due]:
    """What to do now: `run` a test whose slot has started and is not 30 minutes old, `skip` one whose
    30 minutes passed without a test. `recorded` holds (did, shift, day) already run or skipped; a
    slot still ahead asks for nothing."""
    out = []
    for slot in slots:
        if now < slot.start:
            continue
        action: Literal["run", "skip"] = "run" if now < slot.deadline else "skip"
        for did in dids:
            if (did, slot.shift, slot.day) not in recorded:
                out.append(Due(did, slot, action))
    return out


def next_wake(now: datetime, slots: Sequence[Slot], pending: bool) -> float:
    """Seconds until the scheduler should look again: soon while something is due, else at the next
    slot start or deadline (at most a minute away, so a changed DID list or a new day is seen)."""
    if pending:
        return 1.0
    ahead = [t for s in slots for t in (s.start, s.deadline) if t > now]
    if not ahead:
        return 60.0
    return max(1.0, min(60.0, (min(ahead) - now).total_seconds()))

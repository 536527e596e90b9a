"""Champions (日/周/月冠军, seed 000 §4) and commission per effective order (seed 004), as pure
functions of the credited orders.

Tie rule: among agents with the most effective orders in a period, the champion is the one who
reached that count first (the earliest time of their N-th order); the prize is never split. Equal
times (same second) fall to the smaller agent id, so the result never depends on input order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from cti.fines.money import to_fen
from cti.policy import Policy

EFFECTIVE_EXCLUDED = ("cancelled", "returned")


@dataclass(frozen=True, slots=True)
class CreditedOrder:
    id: int
    agent: str  # the credited agent (R-FIRST-OWNER)
    created_at: datetime
    status: str
    duplicate_of: int | None = None

    @property
    def effective(self) -> bool:
        """A duplicate belongs to the first entry (not a second sale); cancelled/returned do not count."""
        return self.duplicate_of is None and self.status not in EFFECTIVE_EXCLUDED


@dataclass(frozen=True, slots=True)
class Reward:
    id: str
    kind: str  # champion | commission
    period: str  # day | week | month
    period_start: date
    agent: str
    orders: int
    amount_fen: int


def period_start(d: date, period: str) -> date:
    if period == "day":
        return d
    if period == "week":
        return d - timedelta(days=d.weekday())
    return d.replace(day=1)


def period_end(start: date, period: str) -> date:
    if period == "day":
        return start + timedelta(days=1)
    if period == "week":
        return start + timedelta(days=7)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def standings(
    orders: Iterable[CreditedOrder], tz: tzinfo, period: str
) -> dict[date, list[tuple[str, int, datetime]]]:
    """Per period: (agent, effective orders, when the agent reached that count), best first."""
    per: dict[tuple[date, str], list[datetime]] = defaultdict(list)
    for o in orders:
        if o.effective:
            per[(period_start(o.created_at.astimezone(tz).date(), period), o.agent)].append(o.created_at)
    out: dict[date, list[tuple[str, int, datetime]]] = defaultdict(list)
    for (start, agent), times in per.items():
        out[start].append((agent, len(times), max(times)))
    for rows in out.values():
        rows.sort(key=lambda r: (-r[1], r[2], r[0]))
    return dict(out)


def derive_rewards(
    orders: Iterable[CreditedOrder], policy_at: Callable[[datetime], Policy], tz: tzinfo, until: datetime
) -> list[Reward]:
    """Champions and daily commission of every period that ended by `until`, each priced by the
    policy in force at the period's end."""
    orders = list(orders)
    out: list[Reward] = []
    prize = {"day": "daily_champion", "week": "weekly_champion", "month": "monthly_champion"}
    for period in ("day", "week", "month"):
        for start, rows in sorted(standings(orders, tz, period).items()):
            end = datetime.combine(period_end(start, period), datetime.min.time(), tz)
            if end > until:
                continue
            rw = policy_at(end - timedelta(microseconds=1)).rewards
            agent, n, _at = rows[0]
            out.append(
                Reward(
                    f"champion:{period}:{start.isoformat()}",
                    "champion",
                    period,
                    start,
                    agent,
                    n,
                    to_fen(getattr(rw, prize[period])),
                )
            )
            if period == "day":
                for agent, n, _at in sorted(rows):
                    out.append(
                        Reward(
                            f"commission:day:{start.isoformat()}:{agent}",
                            "commission",
                            "day",
                            start,
                            agent,
                            n,
                            to_fen(rw.commission_per_order) * n,
                        )
                    )
    return out

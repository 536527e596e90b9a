"""The rule figures one dial is checked against, as one frozen value: the caps from policy, the
campaign's call windows and the site time zone. Stored per dial (outbound_rule_sets) so the audit
judges each dial by the rules of its day."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from cti.policy import Policy


@dataclass(frozen=True)
class Window:
    segment: str
    start: time
    end: time  # exclusive


@dataclass(frozen=True)
class RuleSet:
    per_month: int
    quiet_months: int
    per_year: int
    product_gap_days: int
    refusals_end_product: int
    month_days: int
    year_days: int
    count_at: str  # "dial" | "answer"
    tz: str
    windows: tuple[Window, ...] = field(default=())

    @staticmethod
    def from_policy(policy: Policy, tz: str, windows: tuple[Window, ...] = ()) -> RuleSet:
        c, o = policy.caps, policy.outbound
        return RuleSet(
            per_month=c.per_month,
            quiet_months=c.quiet_months_after_cap,
            per_year=c.per_year,
            product_gap_days=c.same_product_gap_days,
            refusals_end_product=c.refusals_end_product,
            month_days=o.month_days,
            year_days=o.year_days,
            count_at=o.count_at,
            tz=tz,
            windows=tuple(sorted(windows, key=lambda w: (w.segment, w.start))),
        )

    @property
    def month(self) -> timedelta:
        return timedelta(days=self.month_days)

    @property
    def year(self) -> timedelta:
        return timedelta(days=self.year_days)

    @property
    def quiet(self) -> timedelta:
        return timedelta(days=self.quiet_months * self.month_days)

    @property
    def product_gap(self) -> timedelta:
        return timedelta(days=self.product_gap_days)

    def body(self) -> dict[str, Any]:
        d = asdict(self)
        d["windows"] = [[w.segment, w.start.isoformat(), w.end.isoformat()] for w in self.windows]
        return d

    def hash(self) -> str:
        return hashlib.sha256(json.dumps(self.body(), sort_keys=True).encode()).hexdigest()

    @staticmethod
    def from_body(body: dict[str, Any]) -> RuleSet:
        b = dict(body)
        b["windows"] = tuple(
            Window(s, time.fromisoformat(a), time.fromisoformat(e)) for s, a, e in b["windows"]
        )
        return RuleSet(**b)


def quiet_until(counted: list[datetime], rules: RuleSet) -> datetime | None:
    """When the caps let this number be called again, given the times of its counted calls (any
    order). None: no cap in force. Used by the claim to keep contacts.quiet_until current; the audit
    counts on its own (cti.outbound.audit) so a bug here shows up there."""
    times = sorted(counted)
    until: datetime | None = None

    def later(t: datetime) -> None:
        nonlocal until
        if until is None or t > until:
            until = t

    # per_month calls within one month: quiet for quiet_months from the call that reached the cap
    k = rules.per_month
    if k >= 1:
        for i in range(k - 1, len(times)):
            if times[i] - times[i - k + 1] < rules.month:
                later(times[i] + rules.quiet)
    elif times:
        later(datetime.max.replace(tzinfo=times[0].tzinfo))
    # per_year: the call that would be the (per_year+1)th within a year waits for the oldest to age out
    if rules.per_year >= 1 and len(times) >= rules.per_year:
        later(times[-rules.per_year] + rules.year)
    return until

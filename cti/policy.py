"""Policy: the figures from SPEC.md as typed objects, loaded from the shipped policy.toml (or a
site file), overlaid with rows of the `policy_values` table. A bad value is rejected at start with a
message that names the key."""

from __future__ import annotations

import json
import tomllib
from datetime import time
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cti.config import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RingPolicy(_Strict):
    on_s: float = Field(gt=0)
    off_s: float = Field(ge=0)
    max_rings: int = Field(ge=1, le=10)
    retry_s: float = Field(ge=0)
    slow_response_s: float = Field(gt=0)

    @property
    def cycle_s(self) -> float:
        return self.on_s + self.off_s

    @property
    def agent_timeout_s(self) -> float:
        """How long one agent is rung: max_rings whole cycles (2 × 5 s = 10 s by default)."""
        return self.max_rings * self.cycle_s

    def rings_at(self, seconds: float) -> int:
        """Which ring (1-based) is sounding or last sounded `seconds` after ringing began."""
        if seconds < 0:
            return 0
        return int(seconds // self.cycle_s) + 1


class ServiceHours(_Strict):
    start: time
    end: time
    night_callback_due: time

    def is_open(self, local: time) -> bool:
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


class Shift(_Strict):
    name: str
    start: time
    end: time


class BreakPolicy(_Strict):
    max_concurrent_per_group: int = Field(ge=0)
    max_minutes: float = Field(gt=0)
    pause_reasons: tuple[str, ...]


class PeakPolicy(_Strict):
    tail_minutes: float = Field(ge=0)
    enter_waiting_callers: int = Field(ge=1)
    enter_estimated_wait_s: float = Field(gt=0)
    exit_waiting_callers: int = Field(ge=0)
    exit_hold_s: float = Field(ge=0)
    abandon_callback_after_s: float = Field(ge=0)
    inbound_to_callback_ratio: int = Field(ge=0)

    @model_validator(mode="after")
    def _hysteresis(self) -> PeakPolicy:
        if self.exit_waiting_callers >= self.enter_waiting_callers:
            raise ValueError("exit_waiting_callers must be below enter_waiting_callers (hysteresis)")
        return self


class CallbackPolicy(_Strict):
    max_attempts: int = Field(ge=1)
    backoff_s: tuple[float, ...] = Field(min_length=1)
    customer_ring_s: float = Field(gt=0)
    night_priority: int
    repeat_caller_priority: int

    def backoff_before(self, attempt: int) -> float:
        """Seconds to wait before attempt number `attempt` (2, 3, ...)."""
        i = max(0, attempt - 2)
        return self.backoff_s[min(i, len(self.backoff_s) - 1)]


class RecordingPolicy(_Strict):
    every_call: bool


class CapsPolicy(_Strict):
    per_month: int = Field(ge=0)
    quiet_months_after_cap: int = Field(ge=0)
    per_year: int = Field(ge=0)
    same_product_gap_days: int = Field(ge=0)
    refusals_end_product: int = Field(ge=1)
    abandon_rate_max: float = Field(ge=0, le=1)


class OutboundPolicy(_Strict):
    month_days: int = Field(ge=1)
    year_days: int = Field(ge=1)
    count_at: Literal["dial", "answer"]
    abandon_connect_s: float = Field(gt=0)
    abandon_window_s: float = Field(gt=0)
    assignment_recall_months: int = Field(ge=1, le=10)
    effective_talk_s: int = Field(ge=0)
    # R-FOLLOWUP: a hesitant customer (考虑/迟疑, disposition no_decision) is called again this many days
    # later, within the 3 months the house allows (the same-product gap still applies)
    hesitant_followup_days: int = Field(default=30, ge=1, le=90)


class HandlingTargets(_Strict):
    inquiry: float = Field(gt=0)
    booking: float = Field(gt=0)
    followup: float = Field(gt=0)


class Rewards(_Strict):
    daily_champion: Decimal = Field(ge=0, decimal_places=2)  # 元 to the fen
    weekly_champion: Decimal = Field(ge=0, decimal_places=2)  # 元 to the fen
    monthly_champion: Decimal = Field(ge=0, decimal_places=2)  # 元 to the fen
    commission_per_order: Decimal = Field(ge=0, decimal_places=2)  # 元 to the fen


class FollowupPolicy(_Strict):
    weekly_quota: int = Field(ge=0)
    fine_per_missing_call: Decimal = Field(ge=0, decimal_places=2)  # 元 to the fen


class FineRule(_Strict):
    agent: Decimal = Field(ge=0, decimal_places=2)  # 元 to the fen
    supervisor: Decimal = Field(ge=0, decimal_places=2)  # 元 to the fen
    description: str
    points: int = 0
    dismissal_after: int | None = None


class Attendance(_Strict):
    """R-LATE / R-STATUS thresholds (seed 000 §2, seed 002)."""

    late_grace_s: float = Field(default=0, ge=0)  # a login this long after shift start is not late
    logout_grace_min: float = Field(default=15, gt=0)  # still logged in this long after shift end: R-STATUS


class SurveyPolicy(_Strict):
    """Issue 17: the customer's rating after the agent left the call (seed 001 §51)."""

    queues: tuple[str, ...] = ("sales",)  # queues whose callers are surveyed; () none
    callbacks: bool = True  # survey a callback's customer when the agent leaves first
    scale: str = Field(default="five", pattern="^(five|three)$")  # keys 1-5, or 1 满意 2 一般 3 不满意
    key_timeout_ms: int = Field(default=6000, ge=1000)
    attempts: int = Field(default=2, ge=1, le=5)  # an invalid key is asked again this many times in all
    alarm_at_or_below: int = Field(default=1, ge=1, le=5)  # a score this low alerts the supervisor
    # R-HANGUP-LAST: an agent who sends the customer to the survey with the key (*0) did not hang up on
    # them; false: the site fines that too
    key_excuses_hangup: bool = True


class QaPolicy(_Strict):
    """Issue 17: recordings sampled for review per period (seed 002 录音抽查)."""

    period: str = Field(default="week", pattern="^(week|month)$")
    calls_per_agent: int = Field(default=5, ge=0)
    min_callbacks: int = Field(default=1, ge=0)  # at least this many callbacks, where the agent made some
    min_outbound: int = Field(default=1, ge=0)  # at least this many outbound calls, where there were some
    low_score_below: float = Field(default=80, ge=0, le=100)  # last period's mean QA score below this ...
    complaint_at_or_below: int = Field(default=2, ge=1, le=5)  # ... or a survey score this low ...
    extra_calls: int = Field(default=3, ge=0)  # ... draws this many more calls


class Policy(_Strict):
    ring: RingPolicy
    service_hours: ServiceHours
    shifts: tuple[Shift, ...] = Field(min_length=1)
    breaks: BreakPolicy
    peak: PeakPolicy
    callbacks: CallbackPolicy
    recording: RecordingPolicy
    caps: CapsPolicy
    outbound: OutboundPolicy
    handling_targets_s: HandlingTargets
    rewards: Rewards
    followup: FollowupPolicy
    fines: dict[str, FineRule]
    attendance: Attendance = Attendance()
    # DID -> which ad / channel it belongs to, for the agent's screen pop ("CCTV-1 晚间 广告")
    did_labels: dict[str, str] = Field(default_factory=dict)
    survey: SurveyPolicy = SurveyPolicy()
    qa: QaPolicy = QaPolicy()


def shipped_policy_text() -> str:
    return resources.files("cti").joinpath("policy.toml").read_text(encoding="utf-8")


def policy_raw(path: Path | None = None) -> dict[str, Any]:
    """The policy file (the shipped one when `path` is None) as parsed TOML, before validation."""
    origin = str(path) if path else "cti/policy.toml"
    try:
        text = path.read_text(encoding="utf-8") if path else shipped_policy_text()
        return tomllib.loads(text)
    except FileNotFoundError as e:
        raise ConfigError(f"policy file {path} does not exist") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"policy file {origin} is not valid TOML: {e}") from e


def apply_overrides(raw: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Set each dotted key of `overrides` ({"ring.max_rings": 3}) in `raw`, in place."""
    for dotted, value in overrides.items():
        node = raw
        parts = dotted.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"policy override {dotted}: {p} is not a table")
        node[parts[-1]] = value
    return raw


def load_policy(path: Path | None = None, overrides: dict[str, Any] | None = None) -> Policy:
    """Load the policy file and apply `overrides` ({"ring.max_rings": 3, ...}, from the DB)."""
    origin = str(path) if path else "cti/policy.toml"
    raw = apply_overrides(policy_raw(path), overrides or {})
    if overrides:
        origin = f"{origin} + policy_values"
    try:
        return Policy.model_validate(raw)
    except ValidationError as e:
        msgs = []
        for err in e.errors():
            key = ".".join(str(p) for p in err["loc"])
            msgs.append(f"{origin}: {key}: {err['msg']} (got {json.dumps(err.get('input'), default=str)})")
        raise ConfigError("\n".join(msgs)) from None


async def policy_overrides_at(conn: Any, at: Any) -> dict[str, Any]:
    """The `policy_values` overrides in force at `at` (from policy_value_history): a violation is
    priced by the policy of its own time, not today's."""
    rows = await conn.fetch(
        """SELECT DISTINCT ON (key) key, value FROM policy_value_history
           WHERE effective_from <= $1 ORDER BY key, effective_from DESC, id DESC""",
        at,
    )
    return {r["key"]: json.loads(r["value"]) for r in rows if r["value"] is not None}


async def load_policy_at(conn: Any, at: Any, path: Path | None = None) -> Policy:
    return load_policy(path, await policy_overrides_at(conn, at))


async def load_policy_from_db(conn: Any, path: Path | None = None) -> Policy:
    """Shipped/site policy overlaid with the `policy_values` table."""
    rows = await conn.fetch("SELECT key, value FROM policy_values")
    return load_policy(path, {r["key"]: json.loads(r["value"]) for r in rows})

"""What a survey key means (pure): the policy's scale, the 1-5 score stored for every scale, and
whether the answer alerts the supervisor. seed 001 §51 puts 客户评价满意度 into the appraisal."""

from __future__ import annotations

from dataclasses import dataclass

from cti.policy import SurveyPolicy

# key -> (score 1..5, label). "three" is the usual 满意/一般/不满意 IVR; stored as 5/3/1 so the
# reports average one scale whatever a site asked with.
SCALES: dict[str, dict[str, tuple[int, str]]] = {
    "five": {
        "5": (5, "非常满意"),
        "4": (4, "满意"),
        "3": (3, "一般"),
        "2": (2, "不满意"),
        "1": (1, "非常不满意"),
    },
    "three": {"1": (5, "满意"), "2": (3, "一般"), "3": (1, "不满意")},
}
PROMPT = {"five": "cti/survey-five", "three": "cti/survey-three"}


@dataclass(frozen=True, slots=True)
class Rating:
    score: int
    label: str


def rating(keyed: str, scale: str) -> Rating | None:
    """The rating for what the customer keyed, None for no key or a key outside the scale."""
    hit = SCALES[scale].get(keyed)
    return Rating(*hit) if hit else None


def alarms(score: int | None, policy: SurveyPolicy) -> bool:
    """A rating at or below the policy's threshold (非常不满意 by default) alerts the supervisor."""
    return score is not None and score <= policy.alarm_at_or_below


def surveys(policy: SurveyPolicy, call_kind: str, queue: str | None) -> bool:
    """Does the policy survey this call? Callbacks by the `callbacks` switch, inbound by queue."""
    if call_kind == "callback":
        return policy.callbacks
    return bool(queue) and queue in policy.queues

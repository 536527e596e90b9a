"""Reading real Asterisk 22 frames (captures 06b-06d) into attempt observations; retry planning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cti.callbacks.outcomes import (
    channel_id_for,
    customer_outcome,
    inbound_first_allows,
    observe,
    originate_failure_outcome,
    parse_channel_id,
    plan_after,
)
from cti.policy import load_policy
from tests.captures import ami_text_frames

CB = load_policy().callbacks
T0 = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)


def frames(scenario: str, rename: tuple[str, str] | None = None) -> list[dict[str, str]]:
    """Received frames of a capture's ami.txt (comment lines dropped). The captures used ChannelIds
    like cti-cb-0004; `rename` maps one to our cti-cb-<id>-<attempt> form, nothing else changes."""
    return ami_text_frames(scenario, rename=rename)


def test_channel_ids_round_trip():
    assert channel_id_for(12, 3) == "cti-cb-12-3" and parse_channel_id("cti-cb-12-3") == (12, 3)
    for other in ("cti-cb-0004", "cti-cb-12-3;2", "1795430872.2", None, "<unknown>"):
        assert parse_channel_id(other) is None


def test_06d_agent_answered_then_customer_answered():
    obs = [o for o in map(observe, frames("06d", ("cti-cb-0004", "cti-cb-4-1"))) if o]
    kinds = [(o.kind, o.channel_id, o.dial_status or o.reason) for o in obs]
    assert ("agent_answered", "cti-cb-4-1", "4") in kinds
    results = [o for o in obs if o.kind == "customer_result"]
    assert [(o.channel_id, o.dial_status) for o in results] == [("cti-cb-4-1", "ANSWER")]
    assert customer_outcome(results[0].dial_status) == "reached"


def test_06b_customer_no_answer_after_agent_answered():
    obs = [o for o in map(observe, frames("06b", ("cti-cb-0002", "cti-cb-2-1"))) if o]
    assert [o.kind for o in obs if o.kind in ("agent_answered", "customer_result")] == [
        "agent_answered",
        "customer_result",
    ]
    result = next(o for o in obs if o.kind == "customer_result")
    assert customer_outcome(result.dial_status) == "no_answer"


def test_06c_failures_reasons_and_busy():
    fails = [o for o in map(observe, frames("06c")) if o and o.kind == "originate_failed"]
    assert [(o.reason, o.interface) for o in fails] == [
        ("3", "Local/agent1@agents"),
        ("3", "PJSIP/13812345678@pstn"),
        ("0", "PJSIP/13812345678@pstn"),
        ("0", "PJSIP/agent3"),
        ("0", "PJSIP/nosuchendpoint"),
    ]
    assert all(o.channel_id is None and o.action_id and o.exten for o in fails)
    assert originate_failure_outcome("3", None) == "agent_no_answer"
    assert originate_failure_outcome("0", "BUSY") == "agent_busy"
    assert originate_failure_outcome("0", None) == "agent_unavailable"


@pytest.mark.parametrize(
    ("status", "outcome"),
    [("ANSWER", "reached"), ("NOANSWER", "no_answer"), ("BUSY", "busy"), ("CANCEL", "agent_hangup"),
     ("CHANUNAVAIL", "trunk_unavailable"), ("CONGESTION", "unreachable")],
)  # fmt: skip
def test_customer_dial_status_mapping(status, outcome):
    assert customer_outcome(status) == outcome


def test_plan_after_backoff_and_final():
    kw = dict(now=T0, policy=CB, agent_retry_s=2.0, max_agent_failures=3)
    assert plan_after("reached", customer_misses=0, agent_failures=0, **kw).status == "done"
    s = plan_after("no_answer", customer_misses=1, agent_failures=0, **kw)
    assert s.status == "open" and s.next_attempt_at == T0 + timedelta(seconds=CB.backoff_s[0])
    s = plan_after("busy", customer_misses=CB.max_attempts, agent_failures=0, **kw)
    assert (s.status, s.outcome) == ("failed", "busy")
    s = plan_after("agent_no_answer", customer_misses=3, agent_failures=1, **kw)
    assert s.status == "open" and s.next_attempt_at == T0 + timedelta(seconds=2)
    assert plan_after("not_sent", customer_misses=0, agent_failures=3, **kw).outcome == "failed"
    with pytest.raises(ValueError, match="unknown attempt outcome"):
        plan_after("whatever", customer_misses=0, agent_failures=0, **kw)


def test_inbound_first_rule():
    assert inbound_first_allows(waiting_inbound=0, inbound_answered_since_last_callback=None, ratio=1)
    assert not inbound_first_allows(waiting_inbound=2, inbound_answered_since_last_callback=None, ratio=1)
    assert not inbound_first_allows(waiting_inbound=2, inbound_answered_since_last_callback=1, ratio=2)
    assert inbound_first_allows(waiting_inbound=2, inbound_answered_since_last_callback=2, ratio=2)
    assert inbound_first_allows(waiting_inbound=2, inbound_answered_since_last_callback=0, ratio=0)

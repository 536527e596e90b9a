"""The review sample (issue 17): drawn from the plan reproducibly, with the minimums and extras."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from cti.policy import QaPolicy
from cti.quality.sampling import Candidate, Plan, draw

WEEK = date(2026, 11, 23)
T0 = datetime(2026, 11, 23, 1, tzinfo=UTC)


def calls(agent: str, n: int, kind: str = "inbound", offset: int = 0) -> list[Candidate]:
    return [Candidate(f"{agent}-{kind}-{i}", agent, kind, T0 + timedelta(minutes=offset + 7 * i), i)
            for i in range(n)]  # fmt: skip


def plan(**kw: object) -> Plan:
    return Plan.from_policy(QaPolicy(**kw), WEEK)  # type: ignore[arg-type]


def ids(picks: list) -> list[str]:  # type: ignore[type-arg]
    return [p.call.linkedid for p in picks]


def test_drawn_twice_gives_the_same_calls_whatever_the_order_they_come_in() -> None:
    pool = calls("agent1", 40) + calls("agent2", 30) + calls("agent1", 6, "callback", 3)
    first = draw(pool, plan())
    again = draw(list(reversed(pool)), plan())
    assert ids(first) == ids(again)
    assert len(first) == 10  # 5 per agent


def test_another_period_or_plan_draws_differently() -> None:
    pool = calls("agent1", 60)
    week = ids(draw(pool, plan()))
    assert ids(draw(pool, Plan.from_policy(QaPolicy(), WEEK + timedelta(days=7)))) != week
    assert ids(draw(pool, plan(min_callbacks=2))) != week  # the plan is part of the seed


def test_at_least_one_callback_and_one_outbound_where_the_agent_has_them() -> None:
    pool = calls("agent1", 50) + calls("agent1", 1, "callback") + calls("agent1", 2, "outbound")
    picks = draw(pool, plan())
    kinds = sorted(p.call.kind for p in picks)
    assert kinds.count("callback") == 1 and kinds.count("outbound") >= 1 and len(picks) == 5
    # an agent with no callbacks or outbound calls simply gets inbound ones
    assert {p.call.kind for p in draw(calls("agent2", 9), plan())} == {"inbound"}


def test_agents_with_low_scores_or_complaints_get_more_calls_reviewed() -> None:
    pool = calls("agent1", 30) + calls("agent2", 30)
    p = Plan.from_policy(QaPolicy(), WEEK, extra_agents={"agent2"})
    picks = draw(pool, p)
    assert sum(c.call.agent == "agent1" for c in picks) == 5
    assert sum(c.call.agent == "agent2" for c in picks) == 8
    assert [c.reason for c in picks if c.call.agent == "agent2"].count("extra") == 3


def test_an_agents_draw_does_not_move_when_another_agents_calls_arrive() -> None:
    base = draw(calls("agent1", 30), plan())
    more = draw(calls("agent1", 30) + calls("agent9", 12), plan())
    assert ids(base) == [i for i in ids(more) if i.startswith("agent1")]


def test_fewer_calls_than_the_quota_are_all_reviewed() -> None:
    assert sorted(ids(draw(calls("agent1", 3), plan()))) == sorted(c.linkedid for c in calls("agent1", 3))

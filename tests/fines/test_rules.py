"""The pure rules on hand-made facts: fallback to who was logged in, dismissal after 3 ignored
requests, pricing by the policy of the violation's time, the champions' tie rule."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from cti.fines.repo import PolicyTimeline
from cti.fines.rules import Call, FineInputs, Login, NamedRequest, derive_ledger, dismissal_flags
from cti.orders.rewards import CreditedOrder, derive_rewards
from cti.policy import load_policy

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=TZ)  # a Monday
LATER = datetime(2026, 12, 31, tzinfo=TZ)


def shipped(_: datetime):  # type: ignore[no-untyped-def]
    return load_policy()


def test_missed_call_without_roster_fines_who_was_logged_in_and_their_supervisor() -> None:
    logins = [
        Login("a1", T0 - timedelta(hours=1), None),
        Login("a2", T0 - timedelta(hours=1), T0 - timedelta(minutes=1)),  # gone before the call
        Login("a3", T0 - timedelta(minutes=5), T0 + timedelta(hours=1)),
    ]
    call = Call("L1", T0, "abandoned", agents_logged_in=2, left_queue_at=T0 + timedelta(seconds=20))
    rows = derive_ledger(
        FineInputs(calls=[call], logins=logins, supervisor_of={"a1": "s1", "a3": "s2"}), shipped, TZ, LATER
    )
    missed = [
        (r.person, r.role, r.amount_fen, r.detail["on_shift_basis"]) for r in rows if r.rule == "missed_call"
    ]
    assert missed == [
        ("a1", "agent", 1000, "logged_in"),
        ("a3", "agent", 1000, "logged_in"),
        ("s1", "supervisor", 5000, "logged_in"),
        ("s2", "supervisor", 5000, "logged_in"),
    ]
    # abandoned after 20 s: not a slow-response (30 s) row; a 31 s wait is
    assert not [r for r in rows if r.rule == "slow_response"]
    slow = Call("L2", T0, "timeout", agents_logged_in=0, left_queue_at=T0 + timedelta(seconds=31))
    rows = derive_ledger(FineInputs(calls=[slow]), shipped, TZ, LATER)
    assert [(r.rule, r.amount_fen) for r in rows] == [("slow_response", 0)]


def test_third_ignored_request_in_a_month_flags_dismissal_unless_one_is_waived() -> None:
    calls = [Call(f"L{i}", T0 + timedelta(days=i), "answered", answered_by="a2") for i in range(4)]
    reqs = [NamedRequest(f"L{i}", T0 + timedelta(days=i), "a1", "did") for i in range(3)]
    reqs.append(NamedRequest("L3", T0 + timedelta(days=3), "a2", "requested"))  # a2 took it: no violation
    rows = derive_ledger(FineInputs(calls=calls, requests=reqs), shipped, TZ, LATER)
    assert [(r.person, r.amount_fen) for r in rows] == [("a1", 3000)] * 3
    (flag,) = dismissal_flags(rows, set(), shipped, TZ)
    assert (flag.agent, flag.count, flag.month, flag.flagged_at) == (
        "a1",
        3,
        date(2026, 11, 1),
        rows[2].occurred_at,
    )
    assert dismissal_flags(rows, {rows[0].id}, shipped, TZ) == []
    # order-owner routing is not an explicit request: never a violation
    owner = [NamedRequest("L0", T0, "a1", "order_owner")]
    assert derive_ledger(FineInputs(calls=calls[:1], requests=owner), shipped, TZ, LATER) == []


def test_each_violation_is_priced_by_the_policy_of_its_time() -> None:
    change = T0 + timedelta(hours=1)
    timeline = PolicyTimeline([(change, "fines.agent_hung_up_first.agent", "25.50")])
    calls = [
        Call(
            "before",
            T0,
            "answered",
            answered_by="a1",
            hung_up_first="agent",
            ended_at=T0 + timedelta(minutes=1),
        ),
        Call(
            "after",
            change,
            "answered",
            answered_by="a1",
            hung_up_first="agent",
            ended_at=change + timedelta(1),
        ),
    ]
    rows = derive_ledger(FineInputs(calls=calls), timeline, TZ, LATER)
    assert [(r.source_id, r.amount_fen) for r in rows] == [("before", 2000), ("after", 2550)]
    # removing the override (value None) restores the shipped figure from then on
    back = PolicyTimeline(
        [
            (change, "fines.agent_hung_up_first.agent", "25.50"),
            (change + timedelta(2), "fines.agent_hung_up_first.agent", None),
        ]
    )
    assert (
        back(change + timedelta(3)).fines["agent_hung_up_first"].agent
        == load_policy().fines["agent_hung_up_first"].agent
    )


def test_champion_tie_goes_to_who_reached_the_count_first_and_periods_close_before_paying() -> None:
    def o(i: int, agent: str, minutes: int, status: str = "new", dup: int | None = None) -> CreditedOrder:
        return CreditedOrder(i, agent, T0 + timedelta(minutes=minutes), status, dup)

    orders = [
        o(1, "b", 0), o(2, "a", 10), o(3, "b", 30), o(4, "a", 20),  # a reaches 2 at +20, b at +30
        o(5, "c", 1), o(6, "c", 2, dup=5), o(7, "c", 3, status="cancelled"),  # c has 1 effective order
    ]  # fmt: skip
    day_end = datetime(2026, 11, 3, tzinfo=TZ)
    got = {(r.id, r.agent, r.orders, r.amount_fen) for r in derive_rewards(orders, shipped, TZ, day_end)}
    assert got == {
        ("champion:day:2026-11-02", "a", 2, 1000),
        ("commission:day:2026-11-02:a", "a", 2, 40),
        ("commission:day:2026-11-02:b", "b", 2, 40),
        ("commission:day:2026-11-02:c", "c", 1, 20),
    }
    # the day is not over: nothing is paid yet
    assert derive_rewards(orders, shipped, TZ, day_end - timedelta(seconds=1)) == []
    assert derive_rewards(list(reversed(orders)), shipped, TZ, day_end) == derive_rewards(
        orders, shipped, TZ, day_end
    )


def test_utc_input_times_are_grouped_by_the_site_day() -> None:
    # 2026-11-02 17:00 UTC is 2026-11-03 01:00 in Shanghai: a day-3 order
    orders = [CreditedOrder(1, "a", datetime(2026, 11, 2, 17, 0, tzinfo=UTC), "new")]
    (champ, _comm) = [r for r in derive_rewards(orders, shipped, TZ, LATER) if r.period == "day"]
    assert champ.period_start == date(2026, 11, 3)


def test_late_is_known_at_the_login_and_early_only_once_the_shift_ended() -> None:
    from cti.fines.rules import RosterEntry

    day = T0.date()
    roster = [RosterEntry(day, "morning", "default", "s1", ("a1", "a2"))]
    logins = [
        Login("a1", datetime(2026, 11, 2, 8, 20, tzinfo=TZ), datetime(2026, 11, 2, 16, 0, tzinfo=TZ)),
        Login("a2", datetime(2026, 11, 2, 7, 50, tzinfo=TZ), None),  # never logs out
    ]
    inp = FineInputs(roster=roster, logins=logins)
    mid = datetime(2026, 11, 2, 9, 0, tzinfo=TZ)
    assert [(r.rule, r.person, r.detail) for r in derive_ledger(inp, shipped, TZ, mid)] == [
        ("late", "a1", {"shift": "morning", "late_s": 1200.0})
    ]
    evening = datetime(2026, 11, 2, 20, 0, tzinfo=TZ)
    got = [
        (r.rule, r.person, r.amount_fen, r.points, r.occurred_at)
        for r in derive_ledger(inp, shipped, TZ, evening)
    ]
    assert got == [
        ("late", "a1", 500, 0, datetime(2026, 11, 2, 8, 20, tzinfo=TZ)),
        ("late", "a1", 500, 0, datetime(2026, 11, 2, 16, 0, tzinfo=TZ)),  # left an hour early
        # still logged in 15 min (logout_grace_min) after the shift: R-STATUS, 2 points
        ("status_violation", "a2", 0, 2, datetime(2026, 11, 2, 17, 15, tzinfo=TZ)),
    ]


def test_sending_the_customer_to_the_survey_with_the_key_is_not_hanging_up_on_them() -> None:
    """R-HANGUP-LAST fines an agent who hangs up on the customer; one who presses *0 to hand the
    customer to the satisfaction survey followed the house's procedure. A site can fine it anyway."""
    ended = T0 + timedelta(minutes=3)
    calls = [
        Call("hung-up", T0, "answered", "a1", hung_up_first="agent", ended_at=ended),
        Call("survey", T0, "answered", "a1", hung_up_first="agent", ended_at=ended, to_survey=True),
    ]
    rows = derive_ledger(FineInputs(calls=calls), shipped, TZ, LATER)
    assert [(r.rule, r.source_id) for r in rows] == [("agent_hung_up_first", "hung-up")]
    strict = PolicyTimeline([(T0 - timedelta(days=1), "survey.key_excuses_hangup", False)])
    rows = derive_ledger(FineInputs(calls=calls), strict, TZ, LATER)
    assert sorted(r.source_id for r in rows) == ["hung-up", "survey"]

"""Inbound routing decisions: pure functions, exhaustive where the input space is small."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from cti.policy import load_policy
from cti.routing.inbound import (
    AgentEntry,
    CallToRoute,
    Directory,
    NumberKind,
    Order,
    Route,
    classify_number,
    decide_route,
    next_night_due,
    order_owner,
    per_agent_ring_s,
)
from cti.routing.snapshot import Availability, StaticSnapshot, no_live_state

TZ = ZoneInfo("Asia/Shanghai")
POLICY = load_policy()
DAY = datetime(2026, 11, 23, 10, 0, tzinfo=TZ)
T0 = datetime(2026, 1, 1, tzinfo=UTC)
DIRECTORY = Directory.of(
    [
        AgentEntry("agent1"),
        AgentEntry("agent2", did="4008001002"),
        AgentEntry("agent3", did="4008001003"),
        AgentEntry("agent9", active=False),
    ]
)
ALL_FREE = StaticSnapshot({a: Availability.AVAILABLE for a in ("agent1", "agent2", "agent3")})
CALLER = classify_number("13812345678")


def _order(i: int, owner: str | None, status: str = "new", minutes: int = 0, **kw: int) -> Order:
    return Order(i, owner, status, T0 + timedelta(minutes=minutes), **kw)


def test_classify_number() -> None:
    assert classify_number("13812345678") == classify_number(" 138-1234-5678 ")
    assert classify_number("+8613812345678").number == "+8613812345678"
    for withheld in (None, "", "unknown", "Anonymous", "<unknown>", "Restricted"):
        assert classify_number(withheld).kind is NumberKind.WITHHELD
    for bad in (
        "138abc45678",
        "1' OR '1'='1",
        "13812345678; DROP TABLE callers",
        "12",
        "1" * 30,
    ):
        assert classify_number(bad).kind is NumberKind.INVALID
    assert CALLER.masked == "138****5678"
    assert classify_number("1' OR 1=1").masked == "unknown"


def test_ring_time_is_max_rings_times_cadence() -> None:
    assert per_agent_ring_s(POLICY) == 10  # 2 rings of 1 s on + 4 s off (China)
    three = load_policy(overrides={"ring.max_rings": 3})
    assert per_agent_ring_s(three) == 15


# --- R-FIRST-OWNER --------------------------------------------------------------------------------
def test_open_order_owner_first() -> None:
    assert order_owner([_order(1, "agent1")]) == "agent1"


def test_duplicate_orders_belong_to_the_first_entered() -> None:
    orders = [_order(1, "agent1", minutes=0), _order(2, "agent2", minutes=5, duplicate_of=1)]
    assert order_owner(orders) == "agent1"
    # even unmarked: the earliest open order wins
    assert order_owner([_order(2, "agent2", minutes=5), _order(1, "agent1", minutes=0)]) == "agent1"


def test_add_on_orders_stay_with_the_original_agent_even_after_the_original_is_received() -> None:
    orders = [_order(1, "agent1", "received"), _order(2, "agent3", "new", minutes=60, parent_order_id=1)]
    assert order_owner(orders) == "agent1"


def test_after_every_order_is_received_the_caller_is_nobodys() -> None:
    assert order_owner([_order(1, "agent1", "received"), _order(2, "agent2", "cancelled")]) is None
    assert order_owner([]) is None


def test_shipped_but_not_received_still_has_an_owner() -> None:
    assert order_owner([_order(1, "agent2", "shipped")]) == "agent2"


def test_link_cycles_do_not_hang() -> None:
    orders = [_order(1, "agent1", duplicate_of=2), _order(2, "agent2", minutes=1, duplicate_of=1)]
    assert order_owner(orders) in ("agent1", "agent2")


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["agent1", "agent2", "agent3", None]),
            st.sampled_from(["new", "confirmed", "shipped", "received", "cancelled", "returned"]),
            st.integers(0, 1000),
            st.one_of(st.none(), st.integers(0, 7)),
        ),
        max_size=8,
    )
)
def test_owner_is_always_an_owner_of_some_order_and_none_iff_nothing_open_is_owned(rows) -> None:  # type: ignore[no-untyped-def]
    orders = [
        _order(i, owner, status, minutes, parent_order_id=parent if parent != i else None)
        for i, (owner, status, minutes, parent) in enumerate(rows)
    ]
    owner = order_owner(orders)
    owners = {o.owner_agent for o in orders}
    if owner is not None:
        assert owner in owners
    if all(o.status in ("received", "cancelled", "returned") for o in orders):
        assert owner is None


# --- decide_route ---------------------------------------------------------------------------------
def _route(call: CallToRoute, snapshot=ALL_FREE, now: datetime = DAY, **kw):  # type: ignore[no-untyped-def]
    return decide_route(call, DIRECTORY, snapshot, POLICY, now, TZ, **kw)


def test_order_owner_rung_first_for_two_rings_then_queue() -> None:
    d = _route(CallToRoute(CALLER, did="4008001234", orders=(_order(1, "agent1"),)))
    assert (d.route, d.preferred, d.preferred_reason, d.preferred_timeout_s) == (
        Route.QUEUE,
        "agent1",
        "order_owner",
        10,
    )
    assert d.queue == "sales" and d.masked == "138****5678"
    assert d.variables("/r.wav") == {
        "CTI_QUEUE": "sales",
        "CTI_PREFERRED": "agent1",
        "CTI_PREFERRED_TIMEOUT": "10",
        "CTI_MASKED": "138****5678",
        "CTI_RECORD": "/r.wav",
    }


def test_explicit_request_beats_the_order_owner() -> None:
    d = _route(CallToRoute(CALLER, requested_agent="agent3", orders=(_order(1, "agent1"),)))
    assert (d.preferred, d.preferred_reason) == ("agent3", "requested")
    d = _route(CallToRoute(CALLER, did="4008001002", orders=(_order(1, "agent1"),)))
    assert (d.preferred, d.preferred_reason) == ("agent2", "did")


def test_unavailable_preferred_agent_is_skipped_with_the_reason() -> None:
    snap = StaticSnapshot({"agent1": Availability.PAUSED, "agent2": Availability.AVAILABLE})
    d = _route(CallToRoute(CALLER, did="4008001002", orders=(_order(1, "agent1"),)), snap)
    assert d.preferred == "agent2"
    d = _route(CallToRoute(CALLER, orders=(_order(1, "agent1"),)), snap)
    assert (d.route, d.preferred, d.skipped) == (Route.QUEUE, None, (("agent1", "paused"),))


def test_without_live_state_the_preferred_agent_is_still_tried() -> None:
    d = _route(CallToRoute(CALLER, orders=(_order(1, "agent1"),)), no_live_state())
    assert d.preferred == "agent1"


def test_unknown_inactive_or_malformed_requested_agents_are_skipped() -> None:
    for who in ("agent77", "agent9", "x'; DROP TABLE agents; --"):
        d = _route(CallToRoute(CALLER, requested_agent=who))
        assert d.preferred is None and d.skipped[0][1] == "unknown_agent"
    assert _route(CallToRoute(CALLER, requested_agent="x'; DROP")).skipped[0][0] == "?"


def test_withheld_caller_goes_to_the_queue_masked_as_unknown() -> None:
    d = _route(CallToRoute(classify_number("anonymous"), orders=(_order(1, "agent1"),)))
    assert (d.route, d.preferred, d.masked) == (Route.QUEUE, None, "unknown")


def test_outside_service_hours_is_night() -> None:
    for hour, minute in ((22, 0), (23, 59), (0, 0), (5, 59)):
        d = _route(CallToRoute(CALLER, requested_agent="agent1"), now=DAY.replace(hour=hour, minute=minute))
        assert (d.route, d.preferred) == (Route.NIGHT, None)
    for hour in (6, 12, 21):
        assert _route(CallToRoute(CALLER), now=DAY.replace(hour=hour)).route is Route.QUEUE


def test_peak_offer_only_without_a_ringable_preferred_agent_and_never_for_withheld() -> None:
    assert _route(CallToRoute(CALLER), offer_callback=True).route is Route.CALLBACK_OFFER
    assert _route(CallToRoute(CALLER, requested_agent="agent1"), offer_callback=True).route is Route.QUEUE
    withheld = CallToRoute(classify_number(""))
    assert _route(withheld, offer_callback=True).route is Route.QUEUE


@given(
    number=st.text(max_size=25),
    requested=st.one_of(st.none(), st.text(max_size=10), st.sampled_from(["agent1", "agent2", "agent9"])),
    did=st.one_of(st.none(), st.sampled_from(["4008001234", "4008001002", "4008001003"])),
    minute_of_day=st.integers(0, 24 * 60 - 1),
    states=st.dictionaries(
        st.sampled_from(["agent1", "agent2", "agent3"]), st.sampled_from(list(Availability))
    ),
    offer=st.booleans(),
)
def test_every_decision_is_safe(number, requested, did, minute_of_day, states, offer) -> None:  # type: ignore[no-untyped-def]
    now = DAY.replace(hour=minute_of_day // 60, minute=minute_of_day % 60)
    caller = classify_number(number)
    d = _route(
        CallToRoute(caller, did=did, requested_agent=requested),
        StaticSnapshot(states),
        now,
        offer_callback=offer,
    )
    open_ = POLICY.service_hours.is_open(now.time())
    assert (d.route is Route.NIGHT) == (not open_)
    assert d.queue == "sales"
    # the display never carries more than the masked number
    assert d.masked == (caller.masked if caller.number else "unknown")
    assert caller.number is None or caller.number not in d.masked or len(caller.number) <= 4
    if d.preferred is not None:
        assert d.preferred in DIRECTORY.agents and DIRECTORY.agents[d.preferred].active
        # rung only when free, or when live state has no opinion about them
        assert states.get(d.preferred, Availability.OFFLINE) in (Availability.AVAILABLE, Availability.UNKNOWN)
        assert d.preferred_timeout_s == 10
    if d.route is Route.CALLBACK_OFFER:
        assert caller.kind is NumberKind.VALID and offer


def test_next_night_due() -> None:
    due = time(8, 30)
    assert next_night_due(datetime(2026, 11, 23, 23, 0, tzinfo=TZ), TZ, due) == datetime(
        2026, 11, 24, 8, 30, tzinfo=TZ
    )
    assert next_night_due(datetime(2026, 11, 24, 2, 0, tzinfo=TZ), TZ, due) == datetime(
        2026, 11, 24, 8, 30, tzinfo=TZ
    )
    # from a UTC instant: 15:30 UTC is 23:30 in Shanghai
    got = next_night_due(datetime(2026, 11, 23, 15, 30, tzinfo=UTC), TZ, due)
    assert got == datetime(2026, 11, 24, 8, 30, tzinfo=TZ)


# --- item 14 (capture 19): by day an empty queue is not night --------------------------------------
def test_day_with_no_reachable_member_offers_a_callback_not_the_night_script() -> None:
    empty = StaticSnapshot({}, reachable_queues={"sales": False})
    d = decide_route(CallToRoute(CALLER), DIRECTORY, empty, POLICY, DAY, TZ)
    assert d.route is Route.CALLBACK_OFFER and "day" in d.reason
    # a withheld number cannot be called back: the queue (and whatever it answers) is all we have
    d = decide_route(CallToRoute(classify_number("")), DIRECTORY, empty, POLICY, DAY, TZ)
    assert d.route is Route.QUEUE


def test_reachable_queue_or_no_opinion_still_queues_and_night_stays_night() -> None:
    ok = StaticSnapshot({}, reachable_queues={"sales": True})
    assert decide_route(CallToRoute(CALLER), DIRECTORY, ok, POLICY, DAY, TZ).route is Route.QUEUE
    # AMI down: no opinion, the queue decides (never a callback offer on stale state)
    assert decide_route(CallToRoute(CALLER), DIRECTORY, no_live_state(), POLICY, DAY, TZ).route is Route.QUEUE
    night = DAY.replace(hour=23)
    empty = StaticSnapshot({}, reachable_queues={"sales": False})
    assert decide_route(CallToRoute(CALLER), DIRECTORY, empty, POLICY, night, TZ).route is Route.NIGHT

"""Score forms as data: weights, a fatal item that zeroes the call, bad definitions named."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cti.quality.forms import DEFAULT_FORM, FormError, parse_form, score

FORM = {
    "title": "测试表",
    "sections": [
        {"title": "开场", "items": [{"id": "greeting", "text": "问候", "weight": 20}]},
        {"title": "处理", "items": [{"id": "accuracy", "text": "准确", "weight": 60},
                                    {"id": "close", "text": "道别", "weight": 20}]},
        {"title": "致命", "items": [{"id": "full_number", "text": "泄露完整号码", "fatal": True}]},
    ],
}  # fmt: skip


def test_weighted_items_make_a_percentage() -> None:
    got = score(parse_form(FORM), {"greeting": 20, "accuracy": 45, "close": 10})
    assert got.score == Decimal("75.00") and got.fatal is None


def test_a_fatal_item_zeroes_the_call_whatever_else_was_good() -> None:
    got = score(parse_form(FORM), {"greeting": 20, "accuracy": 60, "close": 20, "full_number": True})
    assert got.score == Decimal("0.00") and got.fatal == "full_number"


def test_answers_that_do_not_fit_the_form_are_refused_with_the_item_named() -> None:
    f = parse_form(FORM)
    with pytest.raises(FormError, match="accuracy"):
        score(f, {"greeting": 20, "close": 20})
    with pytest.raises(FormError, match="greeting must be 0-20"):
        score(f, {"greeting": 25, "accuracy": 1, "close": 1})
    with pytest.raises(FormError, match="no such item bogus"):
        score(f, {"greeting": 1, "accuracy": 1, "close": 1, "bogus": 1})


def _one(*items: dict) -> dict:  # type: ignore[type-arg]
    return {"title": "x", "sections": [{"title": "s", "items": list(items)}]}


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ({"title": "x", "sections": []}, "sections"),
        (_one({"id": "a", "text": "t", "weight": 0}), "weight"),
        (_one({"id": "a", "text": "t", "fatal": True}), "weighted"),
        (_one({"id": "a", "text": "t", "weight": 5}, {"id": "a", "text": "u", "weight": 5}), "twice"),
        (_one({"id": "a b", "text": "t", "weight": 5}), "id must be"),
    ],
)
def test_bad_definitions_are_refused(bad: dict, says: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(FormError, match=says):
        parse_form(bad)


def test_the_shipped_form_has_the_fatal_items_the_rulebooks_name() -> None:
    f = parse_form(DEFAULT_FORM)
    assert {i.id for i in f.items if i.fatal} == {"full_number", "rude"} and f.total_weight == 100

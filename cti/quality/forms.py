"""QA score forms as data (QueueMetrics-style): sections of items with weights, and fatal items
that zero the whole call (revealing a full number, being rude). Pure: validate a definition a
manager saved, score a reviewer's answers against it.

A definition: {"title": str, "sections": [{"title": str, "items": [
    {"id": "greeting", "text": "标准开场白", "weight": 10},
    {"id": "full_number", "text": "泄露完整号码", "fatal": true}]}]}
Answers: item id -> points (0..weight) for a weighted item, true/false (happened) for a fatal one.
Score: 100 × points given / weights, 0 when any fatal item happened.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class FormError(ValueError):
    """A form definition or a set of answers that cannot be used; the message says which part."""


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    text: str
    section: str
    weight: int  # 0 for a fatal item
    fatal: bool


@dataclass(frozen=True, slots=True)
class Form:
    title: str
    items: tuple[Item, ...]

    @property
    def total_weight(self) -> int:
        return sum(i.weight for i in self.items)


@dataclass(frozen=True, slots=True)
class Scored:
    score: Decimal  # 0.00 .. 100.00
    fatal: str | None  # the id of the fatal item that zeroed it
    answers: dict[str, Any]


def parse_form(definition: Any) -> Form:
    if not isinstance(definition, dict):
        raise FormError("a form is an object with title and sections / 评分表格式错误")
    title = definition.get("title")
    sections = definition.get("sections")
    if not isinstance(title, str) or not title.strip():
        raise FormError("form: title is required / 缺少标题")
    if not isinstance(sections, list) or not sections:
        raise FormError("form: sections must be a non-empty list / 至少一个部分")
    items: list[Item] = []
    seen: set[str] = set()
    for si, sec in enumerate(sections, 1):
        if not isinstance(sec, dict) or not isinstance(sec.get("title"), str) or not sec["title"].strip():
            raise FormError(f"form: section {si} needs a title")
        if not isinstance(sec.get("items"), list) or not sec["items"]:
            raise FormError(f"form: section {si} ({sec['title']}) has no items")
        for ii, it in enumerate(sec["items"], 1):
            where = f"form: section {si} item {ii}"
            if not isinstance(it, dict):
                raise FormError(f"{where} is not an object")
            iid, text = it.get("id"), it.get("text")
            if not isinstance(iid, str) or not _ID.match(iid):
                raise FormError(f"{where}: id must be 1-64 letters, digits, . _ - (got {iid!r})")
            if iid in seen:
                raise FormError(f"{where}: id {iid!r} used twice")
            seen.add(iid)
            if not isinstance(text, str) or not text.strip():
                raise FormError(f"{where} ({iid}): text is required")
            fatal = it.get("fatal", False)
            if not isinstance(fatal, bool):
                raise FormError(f"{where} ({iid}): fatal must be true or false")
            weight = it.get("weight", 0)
            if fatal:
                if weight not in (0, None):
                    raise FormError(f"{where} ({iid}): a fatal item zeroes the call and has no weight")
                weight = 0
            elif not isinstance(weight, int) or isinstance(weight, bool) or not 1 <= weight <= 100:
                raise FormError(f"{where} ({iid}): weight must be a whole number 1-100 (got {weight!r})")
            items.append(Item(iid, text.strip(), sec["title"].strip(), weight, fatal))
    form = Form(title.strip(), tuple(items))
    if form.total_weight == 0:
        raise FormError("form: at least one weighted (non-fatal) item is needed")
    return form


def score(form: Form, answers: Any) -> Scored:
    """Every weighted item needs points 0..weight; a fatal item not answered did not happen."""
    if not isinstance(answers, dict):
        raise FormError("answers must be an object of item id -> points / 评分格式错误")
    known = {i.id for i in form.items}
    unknown = sorted(set(answers) - known)
    if unknown:
        raise FormError(f"answers: no such item {', '.join(unknown)} on this form")
    given = 0
    fatal: str | None = None
    clean: dict[str, Any] = {}
    for it in form.items:
        v = answers.get(it.id)
        if it.fatal:
            if v not in (None, True, False):
                raise FormError(f"answers: {it.id} is a fatal item: true (happened) or false")
            clean[it.id] = bool(v)
            if v and fatal is None:
                fatal = it.id
            continue
        if v is None:
            raise FormError(f"answers: {it.id} ({it.text}) is not scored / 未评分")
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= it.weight:
            raise FormError(f"answers: {it.id} must be 0-{it.weight} points (got {v!r})")
        clean[it.id] = v
        given += v
    if fatal is not None:
        return Scored(Decimal("0.00"), fatal, clean)
    pct = (Decimal(str(given)) * 100 / form.total_weight).quantize(Decimal("0.01"), ROUND_HALF_UP)
    return Scored(pct, None, clean)


# What a site starts with (managers edit it into new versions): seed 002's 电话礼仪 and R-MASK.
DEFAULT_FORM: dict[str, Any] = {
    "title": "通话质检表 Call review",
    "sections": [
        {
            "title": "开场 Opening",
            "items": [
                {
                    "id": "greeting",
                    "text": "标准问候语并报工号 greeting, staff number",
                    "weight": 10,
                },
                {
                    "id": "confirm_need",
                    "text": "跟读确认客户问题 repeats the question",
                    "weight": 15,
                },
            ],
        },
        {
            "title": "处理 Handling",
            "items": [
                {"id": "accuracy", "text": "信息准确 accurate information", "weight": 30},
                {"id": "resolution", "text": "解决问题或明确跟进 resolved or follow-up agreed", "weight": 25},
            ],
        },
        {
            "title": "结束 Closing",
            "items": [
                {
                    "id": "courtesy",
                    "text": "礼貌道别, 客户先挂机 polite close",
                    "weight": 20,
                },
            ],
        },
        {
            "title": "致命项 Fatal",
            "items": [
                {
                    "id": "full_number",
                    "text": "泄露完整号码 revealed a full number",
                    "fatal": True,
                },
                {"id": "rude", "text": "辱骂、讽刺客户 rude to the customer", "fatal": True},
            ],
        },
    ],
}

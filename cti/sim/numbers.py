"""Caller numbers in Chinese formats and optional UTF-8 caller names (some deliberately hostile)."""

from __future__ import annotations

import random

MOBILE_PREFIXES = (
    "130",
    "131",
    "132",
    "133",
    "134",
    "135",
    "136",
    "137",
    "138",
    "139",
    "147",
    "150",
    "151",
    "152",
    "153",
    "155",
    "156",
    "157",
    "158",
    "159",
    "166",
    "170",
    "176",
    "177",
    "178",
    "180",
    "181",
    "182",
    "183",
    "184",
    "185",
    "186",
    "187",
    "188",
    "189",
    "191",
    "198",
    "199",
)
# area code -> subscriber digits (Beijing/Shanghai/Guangzhou/Shenzhen 8, others 7 or 8)
AREA_CODES = (
    ("010", 8),
    ("021", 8),
    ("020", 8),
    ("0755", 8),
    ("0571", 8),
    ("028", 8),
    ("027", 8),
    ("0512", 8),
    ("0898", 7),
    ("0931", 7),
)
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = (
    "伟",
    "芳",
    "娜",
    "秀英",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
    "秀兰",
    "霞",
)
HOSTILE = ('张"三', "李\\四", '王"; DROP TABLE calls; --', '赵\\"五\\', "O'Brien 王", '"', "\\", '钱 "老板"')


def caller_number(rng: random.Random, landline_chance: float = 0.2) -> str:
    if rng.random() < landline_chance:
        area, n = AREA_CODES[rng.randrange(len(AREA_CODES))]
        first = str(rng.randint(2, 8))
        return area + first + "".join(str(rng.randrange(10)) for _ in range(n - 1))
    return rng.choice(MOBILE_PREFIXES) + "".join(str(rng.randrange(10)) for _ in range(8))


def caller_name(rng: random.Random, name_chance: float = 0.3, hostile_chance: float = 0.0) -> str:
    if rng.random() < hostile_chance:
        return rng.choice(HOSTILE)
    if rng.random() < name_chance:
        return rng.choice(SURNAMES) + rng.choice(GIVEN)
    return ""

from __future__ import annotations

import io
import json
import re

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from cti.log import configure
from cti.masking import mask_number, mask_text


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("13812345678", "138****5678"),
        ("+8613812345678", "+86138****5678"),
        ("010-62345678", "010****5678"),
        ("02162345678", "021****5678"),
        ("62345678", "****5678"),
        ("4008001234", "40****1234"),
        ("95555", "*5555"),
        ("", ""),
    ],
)
def test_mask_number_hides_the_four_before_the_last_four(raw, shown):
    assert mask_number(raw) == shown


@given(st.text(alphabet="0123456789", min_size=8, max_size=15))
def test_masked_numbers_never_keep_a_run_of_the_original_middle(digits):
    m = mask_number(digits)
    assert m.endswith(digits[-4:]) and m.count("*") == 4 and len(m) == len(digits)


@pytest.mark.parametrize(
    "text",
    [
        "caller 13812345678 rang",
        "caller +86 138 1234 5678 rang",
        "caller 138 1234 5678 rang",
        "landline 010-62345678 and (021) 5555 1234",
        "number=8613812345678;",
        '"张三" <13812345678>',
    ],
)
def test_mask_text_finds_numbers_of_several_shapes(text):
    masked = mask_text(text)
    assert "****" in masked
    assert "12345678" not in masked.replace(" ", "").replace("-", "")


def test_mask_text_leaves_ids_and_times_alone():
    text = "uniqueid 1763900000.42 at 2026-11-23 10:00:01 took 12.5 s"
    assert mask_text(text) == text


def test_log_lines_carry_no_full_number_in_any_field():
    out = io.StringIO()
    configure("json", "debug", stream=out)
    log = structlog.get_logger("t")
    log.info(
        "call 13812345678 offered",
        caller="13812345678",
        nested={"cid": '"李四" <+86 139 8765 4321>', "list": ["010-62345678"]},
        as_int=13812345678,
        uniqueid="1763900000.42",
    )
    try:
        raise ValueError("bad number 13912345678")
    except ValueError:
        log.exception("failed")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert not re.search(r"\d{7,}", out.getvalue().replace("1763900000", "")), out.getvalue()
    first = json.loads(lines[0])
    assert first["caller"] == "138****5678" and first["as_int"] == "138****5678"
    assert first["uniqueid"] == "1763900000.42"


def test_digits_inside_file_names_longer_than_a_phone_number_are_left_alone():
    """Issue 10 (17): the spool's segment names (`<time_ns:020d>-<pid>-<n>.jsonl`) came out of the
    log as `017959223431****4655-...jsonl`. E.164 numbers have at most 15 digits."""
    seg = "01795922343146554321-4242-000001.jsonl"
    assert mask_text(f"drained {seg}") == f"drained {seg}"
    out = io.StringIO()
    configure("json", "info", stream=out)
    try:
        structlog.get_logger("t").info("spool_segment_drained", segment=seg, caller="13812345678")
    finally:
        structlog.reset_defaults()
    line = json.loads(out.getvalue())
    assert line["segment"] == seg and line["caller"] == "138****5678"
    assert mask_text("+8613812345678 / 008613812345678") == "+86138****5678 / 0086138****5678"

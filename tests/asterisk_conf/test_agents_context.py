"""The `[agents]` context: every agent id and every feature code reaches exactly one extension.

Capture 18: Originate to `agents,agent1` was refused `Extension does not exist.` because
`_age[n]tX.` needs at least two characters after `agent` (`.` = one or more). The matcher below
follows Asterisk's pattern rules (pbx.c ext_cmp/ex_pattern: `_` starts a pattern; X, Z, N are
[0-9], [1-9], [2-9] in either case; `[...]` a set; `.` one or more, `!` zero or more characters)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cti.agents.prompts import FEATURE_CODES

DIALPLAN = Path(__file__).resolve().parents[2] / "dialplan" / "extensions.conf"


def _regex(pattern: str) -> re.Pattern[str]:
    if not pattern.startswith("_"):
        return re.compile(re.escape(pattern))
    out, i, p = [], 0, pattern[1:]
    while i < len(p):
        c = p[i]
        if c in "xX":
            out.append("[0-9]")
        elif c in "zZ":
            out.append("[1-9]")
        elif c in "nN":
            out.append("[2-9]")
        elif c == "[":
            j = p.index("]", i)
            out.append("[" + p[i + 1 : j] + "]")
            i = j
        elif c == ".":
            out.append(".+")
        elif c == "!":
            out.append(".*")
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out))


def _extensions(context: str) -> list[str]:
    text = DIALPLAN.read_text(encoding="utf-8")
    body = text[text.index(f"[{context}]") + len(context) + 2 :]
    body = body[: body.find("\n[")] if "\n[" in body else body
    return [m.group(1) for m in re.finditer(r"^exten\s*=>\s*([^,]+),1,", body, re.M)]


def _matches(context: str, exten: str) -> list[str]:
    return [p for p in _extensions(context) if _regex(p).fullmatch(exten)]


def test_the_matcher_reproduces_capture_18() -> None:
    assert not _regex("_age[n]tX.").fullmatch("agent1")  # the shipped pattern, refused in capture 18
    assert _regex("_age[n]tX.").fullmatch("agent12")
    assert not _regex("_agentX").fullmatch("agent1")  # capture 09: n is [2-9]


@pytest.mark.parametrize("agent", ["agent1", "agent9", "agent10", "agent42", "agent999"])
def test_every_agent_id_matches_exactly_one_extension(agent: str) -> None:
    assert len(_matches("agents", agent)) == 1, _matches("agents", agent)


@pytest.mark.parametrize("exten", ["agent", "agentx", "agent1000", "8001"])
def test_other_numbers_do_not_dial_a_phone(exten: str) -> None:
    assert _matches("agents", exten) == []


def test_feature_codes_reach_the_cti() -> None:
    for code, op in FEATURE_CODES.items():
        assert len(_matches("agents", code)) == 1, code
        assert _matches("cti-agent-feature", op), op
    assert len(_matches("agents", "*132")) == 1  # pause with reason 2
    text = DIALPLAN.read_text(encoding="utf-8")
    assert "AGI(${CTI_AGI}/agent_feature,${EXTEN},${CHANNEL(endpoint)}" in text

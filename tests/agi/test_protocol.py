from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cti.agi.protocol import (
    AgiCommandError,
    AgiHangup,
    AgiProtocolError,
    EnvironmentParser,
    ReplyParser,
    command_line,
    parse_200,
    parse_args,
    quote,
)
from tests.agi.fake_asterisk import capture_env
from tests.captures import CAPTURES


def _replies(lines: list[str], command: str = "X") -> list[object]:
    """Feed reply lines; collect each complete Reply or the exception it raised."""
    out: list[object] = []
    parser = ReplyParser(command)
    for line in lines:
        try:
            got = parser.feed_line(line)
        except (AgiCommandError, AgiHangup) as e:
            out.append(e)
            parser = ReplyParser(command)
            continue
        if got is not None:
            out.append(got)
            parser = ReplyParser(command)
    return out


def test_environment_of_capture_01() -> None:
    p = EnvironmentParser()
    for line in [*capture_env("01-inbound-answered"), ""]:
        p.feed_line(line)
    env = p.environment
    assert env.script == "route"
    assert env.get("agi_calleridname") == "张三"
    assert env.get("agi_callerid") == "13812345678"
    assert env.get("agi_accountcode") == ""
    assert env.get("agi_uniqueid") == "1795430750.0"


def test_script_name_ignores_query_string_and_args_are_read() -> None:
    p = EnvironmentParser()
    for line in ["agi_network_script: night?x=1", "agi_arg_1: a b", "agi_arg_2: ", ""]:
        p.feed_line(line)
    assert p.environment.script == "night"
    assert p.environment.args == ["a b", ""]


def test_environment_rejects_non_agi_lines() -> None:
    p = EnvironmentParser()
    with pytest.raises(AgiProtocolError):
        p.feed_line("GET / HTTP/1.1")


def test_every_reply_of_capture_04_parses_in_sync() -> None:
    raw = (CAPTURES / "04-agent-hangs-up-first" / "agi.from-asterisk.raw").read_bytes().decode()
    _env, _, rest = raw.partition("\n\n")
    got = _replies(rest.rstrip("\n").split("\n"))
    # 9 commands -> 9 replies, then Asterisk's HANGUP after the script ended
    assert len(got) == 10
    r0, r1, _r2, _r3, r4, r5, e510, e520, r8, hangup = got
    assert (r0.result, r0.data) == ("1", "13812345678")  # type: ignore[attr-defined]
    assert r1.result == "0" and r1.data is None  # type: ignore[attr-defined]
    assert (r4.result_int, r4.endpos) == (-1, 0)  # type: ignore[attr-defined]
    assert r5.result == "0"  # type: ignore[attr-defined]
    assert isinstance(e510, AgiCommandError) and e510.code == 510
    assert isinstance(e520, AgiCommandError) and e520.code == 520
    assert "Sets a variable to the current channel." in e520.message
    assert r8.result == "1"  # type: ignore[attr-defined]
    assert isinstance(hangup, AgiHangup)


def test_reply_data_may_contain_parentheses_and_utf8() -> None:
    (r,) = _replies(["200 result=1 (张三 (VIP) 李)"])
    assert r.data == "张三 (VIP) 李"  # type: ignore[attr-defined]
    (r,) = _replies(["200 result=0 (timeout) endpos=16000"])
    assert (r.data, r.endpos) == ("timeout", 16000)  # type: ignore[attr-defined]
    (r,) = _replies(["200 result= (timeout)"])
    assert (r.result, r.data) == ("", "timeout")  # type: ignore[attr-defined]


def test_garbage_reply_is_a_protocol_error() -> None:
    with pytest.raises(AgiProtocolError):
        ReplyParser("X").feed_line("hello")


def test_parse_args_matches_res_agi_on_captured_lines() -> None:
    assert parse_args('SET VARIABLE CALLERID(name) "138****5678"') == [
        "SET",
        "VARIABLE",
        "CALLERID(name)",
        "138****5678",
    ]
    assert parse_args('STREAM FILE no-such-prompt ""') == ["STREAM", "FILE", "no-such-prompt", ""]
    noop = 'EXEC NoOp "CTI route for 13812345678"'
    assert parse_args(noop) == ["EXEC", "NoOp", "CTI route for 13812345678"]
    assert parse_args(r"a\ b c") == ["a b", "c"]
    assert parse_args(r'"a \"q\" \\ b"') == ['a "q" \\ b']


@given(st.text(alphabet=st.characters(blacklist_characters="\r\n\x00", blacklist_categories=("Cs",))))
def test_quote_round_trips_through_asterisks_parser(value: str) -> None:
    line = command_line("SET", "VARIABLE", quoted=("CALLERID(name)", value))
    assert parse_args(line) == ["SET", "VARIABLE", "CALLERID(name)", value]


def test_quote_handles_names_that_break_pyst2() -> None:
    for name in ['张"三"', "C:\\dir\\", '\\"', "李四 王五", "'; DROP TABLE x; --"]:
        assert parse_args("X " + quote(name)) == ["X", name]


def test_newlines_cannot_split_a_command() -> None:
    line = command_line("SET", "VARIABLE", quoted=("X", "a\nGET VARIABLE Y"))
    assert "\n" not in line
    assert parse_args(line) == ["SET", "VARIABLE", "X", "a GET VARIABLE Y"]


def test_command_words_must_not_need_quoting() -> None:
    with pytest.raises(ValueError):
        command_line("GET VARIABLE")


@pytest.mark.parametrize(
    ("line", "written"),
    [
        ("200 result=35 (dtmf) endpos=18800", True),  # capture 15, caller A
        ("200 result=0 (timeout) endpos=64080", True),
        ("200 result=-1 (hangup) endpos=9600", True),  # res_agi: what was said is kept
        ("200 result=-1 (writefile)", False),  # capture 15, caller B
        ("200 result=-1 (randomerror) endpos=0", False),  # the beep failed: nothing recorded
    ],
)
def test_record_file_replies_say_whether_a_file_was_written(line: str, written: bool) -> None:
    from cti.agi.session import recorded

    reply = parse_200(line)
    assert reply is not None and recorded(reply) is written

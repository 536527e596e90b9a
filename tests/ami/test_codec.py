"""The sans-IO codec against real bytes: Asterisk 22 captures (byte-exact) and 51 recorded scenarios,
with panoramisk 1.4's parser as the oracle."""

from __future__ import annotations

import pytest
from panoramisk.message import Message as PMessage  # the parser only; never panoramisk.testing

from cti.ami.codec import Banner, Decoder, Message, ProtocolError, encode, parse_frame
from tests.ami.wire import capture_raws, chunks, fixture_files, frame_bytes, load_fixture


def feed_all(data: bytes, pieces: list[bytes] | None = None, expect_banner: bool = True) -> list:
    dec = Decoder(expect_banner=expect_banner)
    out: list = []
    for p in pieces if pieces is not None else [data]:
        out.extend(dec.feed(p))
    assert dec.pending == 0
    return out


@pytest.mark.parametrize("raw", capture_raws(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_capture_parses_byte_exactly(raw) -> None:
    data = raw.read_bytes()
    whole = feed_all(data)
    assert isinstance(whole[0], Banner) and whole[0] == "Asterisk Call Manager/11.0.0"
    # re-encoding every message gives back the received stream, byte for byte
    rebuilt = whole[0].encode() + b"\r\n" + b"".join(encode(m) for m in whole[1:])
    assert rebuilt == data
    # and cutting the stream into tiny pieces changes nothing
    assert feed_all(data, list(chunks(data))) == whole


def test_capture_txt_agrees_with_raw() -> None:
    # ami.txt is an independent rendering (LF, comments): same frames as our parse of ami.raw
    raw = next(p for p in capture_raws() if p.parent.name.startswith("01") and p.name == "ami.raw")
    txt = raw.with_suffix(".txt").read_text("utf-8")
    lines = [ln for ln in txt.split("\n") if not ln.startswith("#")]
    assert lines[0] == "Asterisk Call Manager/11.0.0"
    texts = [b for b in "\n".join(lines[1:]).split("\n\n") if b]
    parsed = feed_all(raw.read_bytes())[1:]
    assert [parse_frame(t.replace("\n", "\r\n")) for t in texts] == parsed


def test_utf8_split_at_every_byte() -> None:
    frame = "Event: Newchannel\r\nCallerIDName: 张三 Zoë Müller\r\nUniqueid: 1.0\r\n\r\n".encode()
    for cut in range(1, len(frame)):
        out = feed_all(frame, [frame[:cut], frame[cut:]], expect_banner=False)
        assert out == [{"Event": "Newchannel", "CallerIDName": "张三 Zoë Müller", "Uniqueid": "1.0"}]


def test_trailing_empty_header_kept() -> None:
    frame = b"Event: VarSet\r\nChannel: PJSIP/trunk-00000000\r\nVariable: ANSWEREDTIME\r\nValue: \r\n\r\n"
    (m,) = feed_all(frame, expect_banner=False)
    assert m["Value"] == ""
    assert encode(m) == frame


def test_duplicate_headers_kept_in_order() -> None:
    frame = (
        b"Response: Success\r\nActionID: 7\r\nMessage: Command output follows\r\n"
        b"Output: a\r\nOutput: \r\nOutput: c\r\n\r\n"
    )
    (m,) = feed_all(frame, expect_banner=False)
    assert m["Output"] == ["a", "", "c"]
    assert encode(m) == frame


def test_bad_banner_is_a_clear_error() -> None:
    with pytest.raises(ProtocolError, match="not an AMI server"):
        Decoder().feed(b"HTTP/1.1 400 Bad Request\r\n\r\n")


def test_invalid_utf8_is_replaced_not_dropped() -> None:
    dec = Decoder(expect_banner=False)
    (m,) = dec.feed(b"Event: X\r\nName: a\xffb\r\n\r\n")
    assert m["Name"] == "a\ufffdb" and dec.decode_errors == 1


def test_header_injection_refused() -> None:
    with pytest.raises(ValueError, match="line break"):
        encode({"Action": "Setvar", "Value": "x\r\nAction: Originate"})


def _oracle(frame_text: str) -> dict:
    pm = PMessage.from_line(frame_text.strip())
    # `content` is panoramisk's body slot (empty for events): the fixtures were recorded with it
    return {k: v for k, v in pm.items() if k != "content"}


def _without_empty_last_line(m: dict) -> dict:
    """What panoramisk returns for a frame whose last line is `Key: ` (its defect 8: line dropped)."""
    d = dict(m)
    k = list(d)[-1]
    v = d[k]
    if v == "":
        del d[k]
    elif isinstance(v, list) and v[-1] == "":
        d[k] = v[:-1] if len(v) > 2 else v[0]
    else:
        raise AssertionError(f"parsers disagree on a frame whose last line is not empty: {m}")
    return d


def test_fixtures_parse_like_the_json_and_like_panoramisk() -> None:
    n = 0
    for path in fixture_files():
        events = load_fixture(path)
        data = b"".join(frame_bytes(e) for e in events)
        ours = feed_all(data, list(chunks(data)), expect_banner=False)
        assert ours == events, path.name
        for e, m in zip(events, ours, strict=True):
            oracle = _oracle(frame_bytes(e).decode())
            ours_d = dict(m)
            if oracle != ours_d:
                # the only allowed difference is panoramisk's defect 8: it drops an empty last header
                assert oracle == _without_empty_last_line(ours_d)
            n += 1
    assert n == 4491  # every recorded event (README: 4,491)


def test_captures_parse_like_panoramisk() -> None:
    for raw in capture_raws():
        body = raw.read_bytes().split(b"\r\n", 1)[1]
        for text, m in zip(
            [t for t in body.decode().split("\r\n\r\n") if t],
            feed_all(body, expect_banner=False),
            strict=True,
        ):
            oracle = _oracle(text)
            if "Response: Follows" in text:
                continue
            ours = dict(m)
            if oracle != ours:
                assert oracle == _without_empty_last_line(ours)


def test_message_helpers() -> None:
    m = Message({"Event": "Hangup", "Uniqueid": "1.0"})
    assert m.name == "Hangup" and m.is_event and not m.is_response and m.first("Nope", "d") == "d"
    r = Message({"Response": "Success"})
    assert r.name == "Success" and r.is_response

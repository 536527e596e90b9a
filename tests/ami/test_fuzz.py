"""Hostile AMI bytes through the codec and the reducer: no crash, no unbounded buffer, rejects counted
by reason (bench.fuzz_ami at a reduced size; the 1M-frame run is the bench)."""

from __future__ import annotations

import pytest

from bench.fuzz_ami import MUTATIONS, run
from cti.ami.codec import MAX_FRAME, Decoder, ProtocolError
from cti.state.model import State
from cti.state.reducer import apply


def test_mutated_capture_frames_never_crash_the_codec_or_the_reducer():
    out = run(30_000, seed=7, huge_every=1000)
    assert out["crashes"] == 0, out["crash_examples"]
    assert set(out["mutations"]) == {*MUTATIONS, "huge_value"}  # every kind of damage was tried
    assert out["rejects"]["invalid UTF-8 (kept as U+FFFD)"] > 0
    assert out["rejects"].get("frame larger than 1048576 bytes without an end", 0) > 0
    assert out["max_decoder_buffer_bytes"] <= out["decoder_buffer_bound_bytes"]
    assert out["events_applied"] == out["messages_decoded"]  # every decoded frame reached the state


def test_a_frame_that_repeats_its_event_name_is_read_as_the_first():
    st = apply(State(), {"Event": ["Newchannel", "Hangup"], "Uniqueid": "1.1", "Linkedid": "1.1",
                         "Channel": "PJSIP/trunk-1", "ChannelState": "4"}, 1.0)  # fmt: skip
    assert "1.1" in st.channels


@pytest.mark.timeout(30)
def test_a_peer_trickling_a_large_frame_a_byte_at_a_time_costs_linear_work():
    """~1 MB one byte per read: a copy and rescan of the buffer per byte takes minutes (measured:
    30 KB in 0.12 s before the fix, so 1 MB ~2 min), linear work about a second."""
    frame = b"Event: Newchannel\r\nCallerIDName: " + "张".encode() * 330_000 + b"\r\n\r\n"
    d = Decoder(expect_banner=False)
    got = [m for i in range(len(frame)) for m in d.feed(frame[i : i + 1])]
    assert len(got) == 1 and got[0]["CallerIDName"] == "张" * 330_000 and d.pending == 0


def test_an_endless_frame_or_greeting_is_refused_not_buffered():
    d = Decoder(expect_banner=False)
    with pytest.raises(ProtocolError, match="larger than"):
        for _ in range(MAX_FRAME // 65536 + 2):
            d.feed(b"x" * 65536)
    g = Decoder()
    with pytest.raises(ProtocolError, match="greeting"):
        for _ in range(100):
            g.feed(b"Asterisk Call Manager/" + b"9" * 100)

"""AMI fuzz: frames mutated from the real Asterisk 22 captures (cut anywhere, bad UTF-8, 1 MB values,
missing and repeated keys, unknown events, reply/event confusion, CR/LF damage, random bytes) fed in
random-sized reads through the codec (`cti.ami.codec.Decoder`) and the reducer (`cti.state.reducer`).

    python -m bench.fuzz_ami --json [--frames 1000000] [--seed 1]

Judged: no exception other than the codec's own ProtocolError (a reject: the connection would be
reset, a fresh decoder takes over), no frame taking long (max and p99.9 per read), memory bounded
(decoder buffer never above MAX_FRAME plus one read; RSS before and after; live state sizes), and
each reject reason counted. The AMI client's part runs in house-core's sans-IO tests, not here.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
from collections import Counter
from typing import Any

from bench.shared import CAPTURES
from cti.ami.codec import MAX_FRAME, Decoder, Message, ProtocolError
from cti.state.model import State
from cti.state.reducer import apply


def corpus() -> list[bytes]:
    """Every frame of every capture's ami.raw (banner dropped), events and replies alike."""
    frames: list[bytes] = []
    for raw in sorted(CAPTURES.glob("*/ami.raw")):
        body = raw.read_bytes().split(b"\r\n", 1)[-1]
        frames += [f for f in body.split(b"\r\n\r\n") if f.strip()]
    return frames


def _lines(f: bytes) -> list[bytes]:
    return f.split(b"\r\n")


def mutate(f: bytes, rnd: random.Random, kind: str | None = None) -> tuple[str, bytes]:
    """One mutation of frame `f`, named; the result has no terminator (the caller adds one or not)."""
    kind = kind or rnd.choice(MUTATIONS)
    lines = _lines(f)
    if kind == "cut":
        return kind, f[: rnd.randrange(len(f) + 1)]
    if kind == "bad_utf8":
        i = rnd.randrange(len(f) + 1)
        return kind, f[:i] + rnd.choice([b"\xff", b"\xc3", b"\xe4\xb8", b"\xed\xa0\x80", b"\x00"]) + f[i:]
    if kind == "huge_value":
        i = rnd.randrange(len(lines))
        return kind, b"\r\n".join([*lines[:i], b"CallerIDName: " + b"\xe5\xbc\xa0" * (350_000), *lines[i:]])
    if kind == "missing_key" and len(lines) > 1:
        del lines[rnd.randrange(len(lines))]
        return kind, b"\r\n".join(lines)
    if kind == "repeated_key":
        i = rnd.randrange(len(lines))
        return kind, b"\r\n".join([*lines[: i + 1], *[lines[i]] * rnd.randint(1, 50), *lines[i + 1 :]])
    if kind == "unknown_event":
        return kind, b"Event: Zz" + str(rnd.randrange(10**6)).encode() + b"\r\n" + b"\r\n".join(lines[1:])
    if kind == "reply_event_confusion":
        if lines[0].startswith(b"Event: "):
            lines[0] = b"Response: " + lines[0][7:]
        else:
            lines[0] = b"Event: " + lines[0].split(b": ", 1)[-1]
        if rnd.random() < 0.5:
            lines.append(b"Response: Success" if rnd.random() < 0.5 else b"Event: Hangup")
        return kind, b"\r\n".join(lines)
    if kind == "crlf_damage":
        return kind, f.replace(b"\r\n", rnd.choice([b"\n", b"\r", b"\r\r\n", b"\n\r"]), rnd.randint(1, 5))
    if kind == "junk_values":
        out = []
        for ln in lines:
            k, sep, _v = ln.partition(b": ")
            junk = rnd.choice(JUNK)
            out.append(k + sep + junk if sep and rnd.random() < 0.5 else ln)
        return kind, b"\r\n".join(out)
    if kind == "no_colon":
        return kind, b"\r\n".join(ln.replace(b": ", b"", 1) if rnd.random() < 0.3 else ln for ln in lines)
    return "random_bytes", bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 300)))


JUNK = (b"", b"-1", b"99999999999999999999", b"nan", b"\x00\x01", b"(null)", b"<unknown>")
MUTATIONS = ("cut", "bad_utf8", "missing_key", "repeated_key", "unknown_event",
             "reply_event_confusion", "crlf_damage", "junk_values", "no_colon", "random_bytes")  # fmt: skip


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(frames: int, seed: int = 1, huge_every: int = 2000) -> dict[str, Any]:
    """Feed `frames` frames (a share of them mutated) and return what happened."""
    rnd = random.Random(seed)
    base = corpus()
    state = State()
    dec = Decoder(expect_banner=False)
    rejects: Counter[str] = Counter()
    mutations: Counter[str] = Counter()
    crashes: list[str] = []
    messages = events_applied = 0
    max_pending = 0
    slow: list[float] = []
    rss0 = _rss_mb()
    t_start = time.perf_counter()
    ts = 1.0e9
    for n in range(frames):
        f = base[rnd.randrange(len(base))]
        if n % huge_every == huge_every - 1:  # 1 MB values are costly to build: one in `huge_every`
            kind, f = mutate(f, rnd, "huge_value")
            mutations[kind] += 1
        elif rnd.random() < 0.5:
            kind, f = mutate(f, rnd)
            mutations[kind] += 1
        data = f + (b"\r\n\r\n" if rnd.random() < 0.97 else b"")
        # random-sized reads, as TCP delivers them
        pos = 0
        while pos < len(data):
            step = rnd.choice((1, 7, 64, 1500, 65536))
            chunk = data[pos : pos + step]
            pos += step
            t0 = time.perf_counter()
            try:
                out = dec.feed(chunk)
            except ProtocolError as e:
                rejects[str(e).split(":")[0][:60]] += 1
                dec = Decoder(expect_banner=False)  # the client would reset the connection
                continue
            max_pending = max(max_pending, dec.pending)
            for m in out:
                if not isinstance(m, Message):
                    continue
                messages += 1
                ts += 0.001
                try:
                    apply(state, m, ts)
                    events_applied += 1
                except Exception as e:  # a crash: the listener would lose its state
                    crashes.append(f"{type(e).__name__}: {e!s:.120} in {m.name[:40]!r}")
            dt = time.perf_counter() - t0
            if dt > 0.001:
                slow.append(dt)
        if dec.decode_errors:
            rejects["invalid UTF-8 (kept as U+FFFD)"] += dec.decode_errors
            dec.decode_errors = 0
    elapsed = time.perf_counter() - t_start
    slow.sort()
    return {
        "frames": frames,
        "seed": seed,
        "corpus_frames": len(base),
        "messages_decoded": messages,
        "events_applied": events_applied,
        "mutations": dict(mutations),
        "rejects": dict(rejects),
        "crashes": len(crashes),
        "crash_examples": sorted(set(crashes))[:10],
        "elapsed_s": round(elapsed, 2),
        "frames_per_s": round(frames / elapsed),
        "slowest_read_ms": round(slow[-1] * 1000, 2) if slow else 0.0,
        "reads_over_1ms": len(slow),
        "max_decoder_buffer_bytes": max_pending,
        "decoder_buffer_bound_bytes": MAX_FRAME + 65536,
        "rss_start_mb": round(rss0, 1),
        "rss_peak_mb": round(_rss_mb(), 1),
        "state_sizes": {
            "channels": len(state.channels),
            "calls": len(state.calls),
            "members": len(state.members),
            "callers": len(state.callers),
        },
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    out = run(a.frames, a.seed)
    print(json.dumps(out, ensure_ascii=False) if a.json else json.dumps(out, ensure_ascii=False, indent=2))
    sys.exit(1 if out["crashes"] else 0)


if __name__ == "__main__":
    main()

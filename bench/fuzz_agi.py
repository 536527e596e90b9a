"""FastAGI fuzz: hostile sessions against the real server (`cti.agi.server.FastAgiServer`, the `route`
script): junk environments, endless lines, one line that never ends, binary, slowloris, silence, early
close, and calls whose caller names and numbers are hostile.

    python -m bench.fuzz_agi --json [--sessions 100000] [--concurrency 200] [--seed 1]

Judged per session: a call (a complete agi_ block) ends with CTI_ROUTE set to a route the dialplan
knows (queue / night / callback_offer / hangup), or unset (the dialplan's cti-fallback: the queue),
never anything else; the masked name never
carries the full number; and no connection is held past its deadline (header timeout, then session
timeout + fallback + close wait). At the end no session task or connection is left in the server.
Deadlines are shortened (0.5 s) so the run is about the server, not about waiting. The load generator
runs on the server's own event loop: when the machine is saturated its lag counts against the server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import re
import statistics
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from bench.shared import CAPTURES
from cti.agi.context import AgiContext
from cti.agi.protocol import parse_args
from cti.agi.server import FastAgiServer
from cti.clock import ManualClock
from cti.config import Settings
from cti.store.sink import MemoryEvents

SAFE_ROUTES = frozenset({"queue", "night", "callback_offer", "hangup"})
HEADER_S = SESSION_S = 0.5
FALLBACK_S = CLOSE_WAIT_S = 0.25
DEADLINE_S = HEADER_S + SESSION_S + FALLBACK_S + CLOSE_WAIT_S + 1.0  # + scheduling slack


def _capture_env() -> list[str]:
    hits = sorted(CAPTURES.glob("01-*/agi.from-asterisk.raw"))
    if hits:
        return hits[0].read_bytes().decode().partition("\n\n")[0].split("\n")
    raise SystemExit("capture 01 not found (../shared/asterisk-captures)")


ENV = _capture_env()
HOSTILE_NAMES = ['"; DROP TABLE calls; --', "张三\u202e\u0000", "\\\\\\", "'" * 300, "😀" * 200,
                 "${SHELL(rm -rf /)}", "a\tb\x1b[31m", "<script>alert(1)</script>", "", " "]  # fmt: skip
HOSTILE_NUMBERS = ["13812345678", "+8613812345678", "0" * 200, "anonymous", "", "1381234567a",
                   "-1", "${CALLERID(num)}", "13812345678\x00", "١٣٨١٢٣٤٥٦٧٨", "1" * 20]  # fmt: skip
KINDS = ("call", "call", "call", "junk_env", "endless_lines", "endless_line", "binary", "slowloris",
         "silent", "early_close", "close_mid_session")  # fmt: skip


def _env(rnd: random.Random) -> tuple[bytes, str]:
    number = rnd.choice(HOSTILE_NUMBERS)
    name = rnd.choice(HOSTILE_NAMES)
    lines = []
    for line in ENV:
        key, _, value = line.partition(": ")
        if key == "agi_callerid":
            value = number
        elif key == "agi_calleridname":
            value = name
        elif key == "agi_dnid" and rnd.random() < 0.2:
            value = rnd.choice(["", "x" * 5000, "4008001234\xff"])
        lines.append(f"{key}: {value}")
    return ("\n".join(lines) + "\n\n").encode("utf-8", "surrogatepass"), number


def _reply(line: str, vars_: dict[str, str]) -> bytes:
    argv = parse_args(line)
    words = [a.upper() for a in argv]
    if words[:2] == ["SET", "VARIABLE"] and len(argv) == 4:
        vars_[argv[2]] = argv[3]
        return b"200 result=1\n"
    if words[:3] == ["GET", "FULL", "VARIABLE"]:
        return b"200 result=1 ()\n"
    if words[:2] == ["GET", "VARIABLE"]:
        return b"200 result=0\n"
    if words[:1] == ["HANGUP"]:
        return b"200 result=1\n"
    return b"200 result=0\n"


async def _until_closed(reader: asyncio.StreamReader, limit_s: float) -> bool:
    """Read until the server closes; False if it still holds the connection after limit_s."""
    try:
        async with asyncio.timeout(limit_s):
            while await reader.read(65536):
                pass
        return True
    except TimeoutError:
        return False
    except ConnectionError:
        return True


async def _call(port: int, rnd: random.Random, kind: str) -> dict[str, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    env, number = _env(rnd)
    vars_: dict[str, str] = {}
    writer.write(env)
    try:
        async with asyncio.timeout(DEADLINE_S):
            while True:
                line = await reader.readline()
                if not line:
                    break
                if kind == "close_mid_session":
                    writer.close()
                    return {"left_early": True}
                writer.write(_reply(line.decode("utf-8", "replace").rstrip("\n"), vars_))
                if line.startswith(b"HANGUP"):
                    break
        writer.write(b"HANGUP\n")  # what Asterisk writes when the server half-closes (capture 01)
        writer.close()
        held = False
    except TimeoutError:
        held = True
        writer.close()
    except ConnectionError:
        held = False
    route = vars_.get("CTI_ROUTE")
    masked = vars_.get("CTI_MASKED", "")
    digits = re.sub(r"\D", "", number)
    leak = len(digits) >= 7 and digits in re.sub(r"\D", "", masked)
    return {"route": route, "held": held, "leak": leak}


async def _hostile(port: int, rnd: random.Random, kind: str) -> dict[str, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    held = False
    try:
        if kind == "junk_env":
            junk = [b"agi_" + bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 40))).replace(b"\n", b"")
                    for _ in range(rnd.randint(1, 30))]  # fmt: skip
            writer.write(b"\n".join(junk) + b"\n\n")
            vars_: dict[str, str] = {}
            async with asyncio.timeout(DEADLINE_S):
                while line := await reader.readline():
                    writer.write(_reply(line.decode("utf-8", "replace").rstrip("\n"), vars_))
            return {"route": vars_.get("CTI_ROUTE"), "held": False, "junk": True}
        if kind in ("endless_lines", "endless_line", "binary"):
            t_end = time.monotonic() + DEADLINE_S
            while time.monotonic() < t_end:
                if kind == "endless_lines":
                    chunk = b"agi_x: " + b"y" * 100 + b"\n"
                elif kind == "endless_line":
                    chunk = b"z" * 4096
                else:
                    chunk = bytes(rnd.getrandbits(8) for _ in range(512)).replace(b"\n\n", b"\n")
                writer.write(chunk * 16)
                await writer.drain()
                if reader.at_eof():
                    break
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.01):
                        if not await reader.read(65536):
                            break
            else:
                held = True
        elif kind == "slowloris":
            env, _ = _env(rnd)
            t_end = time.monotonic() + DEADLINE_S
            for b in env[:-2]:
                if time.monotonic() > t_end:
                    held = True
                    break
                writer.write(bytes([b]))
                await writer.drain()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.05):
                        if not await reader.read(65536):
                            break
        elif kind == "silent":
            held = not await _until_closed(reader, DEADLINE_S)
        elif kind == "early_close":
            env, _ = _env(rnd)
            writer.write(env[: rnd.randrange(len(env) - 2)])
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()
    return {"held": held}


async def _one(port: int, rnd: random.Random, kind: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    if kind in ("call", "close_mid_session"):
        out = await _call(port, rnd, kind)
    else:
        out = await _hostile(port, rnd, kind)
    out["kind"] = kind
    out["s"] = time.perf_counter() - t0
    return out


async def run(sessions: int, concurrency: int = 200, seed: int = 1) -> dict[str, Any]:
    settings = Settings(agi={"port": 0, "session_timeout_s": SESSION_S})
    ctx = AgiContext(
        settings=settings, clock=ManualClock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC)), events=MemoryEvents()
    )  # type: ignore[arg-type]
    server = FastAgiServer(ctx, host="127.0.0.1", port=0, header_timeout_s=HEADER_S,
                           fallback_timeout_s=FALLBACK_S, close_wait_s=CLOSE_WAIT_S)  # fmt: skip
    await server.start()
    rnd = random.Random(seed)
    results: list[dict[str, Any]] = []
    errors: Counter[str] = Counter()
    sem = asyncio.Semaphore(concurrency)

    async def task(i: int) -> None:
        async with sem:
            r = random.Random(rnd.random() + i)
            try:
                results.append(await _one(server.port, r, r.choice(KINDS)))
            except Exception as e:  # the load generator's own trouble, reported, not hidden
                errors[type(e).__name__] += 1

    t0 = time.perf_counter()
    pending: set[asyncio.Task[None]] = set()
    for i in range(sessions):
        pending.add(asyncio.create_task(task(i)))
        if len(pending) >= concurrency * 4:
            _done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
    await asyncio.gather(*pending)
    elapsed = time.perf_counter() - t0
    await asyncio.sleep(CLOSE_WAIT_S + 0.5)
    leftover_tasks, leftover_conns = len(server._tasks), len(server._conns)
    await server.close()
    calls = [r for r in results if r["kind"] == "call"]
    # no CTI_ROUTE at all: the decision never came (a handler and its fallback both timed out) and the
    # dialplan's own fallback sends the call to the queue (dialplan/extensions.conf: cti-fallback)
    dialplan_fallback = [r for r in calls if r.get("route") is None]
    unsafe = [r for r in calls if r.get("route") is not None and r.get("route") not in SAFE_ROUTES]
    durations = sorted(r["s"] for r in results)
    by_kind: dict[str, dict[str, Any]] = {}
    for k in sorted({r["kind"] for r in results}):
        ds = sorted(r["s"] for r in results if r["kind"] == k)
        by_kind[k] = {"n": len(ds), "median_s": round(statistics.median(ds), 3), "max_s": round(ds[-1], 3)}
    return {
        "sessions": sessions,
        "completed": len(results),
        "client_errors": dict(errors),
        "elapsed_s": round(elapsed, 1),
        "sessions_per_s": round(len(results) / elapsed),
        "calls": len(calls),
        "calls_unsafe_route": len(unsafe),
        "calls_left_to_the_dialplan_fallback": len(dialplan_fallback),
        "unsafe_examples": unsafe[:5],
        "routes": dict(Counter(r.get("route") for r in calls)),
        "masked_name_leaks_full_number": sum(1 for r in calls if r.get("leak")),
        "held_past_deadline": sum(1 for r in results if r.get("held")),
        "deadline_s": DEADLINE_S,
        "max_session_s": round(durations[-1], 3) if durations else 0,
        "by_kind": by_kind,
        "server_stats": vars(server.stats),
        "leftover_server_tasks": leftover_tasks,
        "leftover_connections": leftover_conns,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sessions", type=int, default=100_000)
    p.add_argument("--concurrency", type=int, default=200)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    from cti.log import configure
    from cti.runloop import run as run_loop

    configure("console", "warning")  # a probe per hostile session at debug: not the figures
    out = run_loop(run(a.sessions, a.concurrency, a.seed))
    print(json.dumps(out, ensure_ascii=False, default=str, indent=None if a.json else 2))


if __name__ == "__main__":
    main()

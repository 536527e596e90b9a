"""Benchmark: N realistic AMI-shaped events through the event store, against a bare asyncpg COPY of
the same rows into an unpartitioned table in the same run (the limit).

    python -m bench.event_store --json [--events 200000] [--repeat 3]

Both sides start from the same Python dicts and pay for JSON encoding, and both are connected before
the clock starts; the store also pays for validation, its natural key (a digest), the bounded
buffer, a commit per batch, and the partitioned table with its primary key and defaults. The clock
stops when the store is closed (everything committed). Medians of --repeat runs; the machine is
noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from cti import runloop
from cti.db.scratch import ScratchServer, with_database
from cti.log import configure
from cti.store.events import Event, EventStore, encode_payload

T0 = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
SHAPES = ("Newchannel", "VarSet", "Newexten", "QueueCallerJoin", "AgentCalled", "DialBegin",
          "DialState", "AgentConnect", "BridgeEnter", "Hangup")  # fmt: skip


def ami_events(n: int) -> Iterator[Event]:
    """AMI-shaped: 10 events per call, ~20 headers each, UTF-8 caller names, Uniqueid/Linkedid."""
    for i in range(n):
        call = i // 10
        uid = f"{1763900000 + call // 50}.{call}"
        ts = T0 + timedelta(microseconds=i * 900)
        etype = SHAPES[i % 10]
        payload = {
            "Event": etype, "Privilege": "call,all", "Timestamp": f"{ts.timestamp():.6f}",
            "Channel": f"PJSIP/trunk-{call:08x}", "ChannelState": "6", "ChannelStateDesc": "Up",
            "CallerIDNum": f"138{call:08d}", "CallerIDName": "张三", "ConnectedLineNum": "<unknown>",
            "ConnectedLineName": "<unknown>", "Language": "zh", "AccountCode": "", "Context": "from-trunk",
            "Exten": "4008001234", "Priority": "3", "Uniqueid": uid, "Linkedid": uid,
            "Queue": "sales", "Interface": f"PJSIP/agent{call % 40 + 1}",
            "MemberName": f"坐席{call % 40 + 1}",
        }  # fmt: skip
        yield Event(ts, "ami", etype, payload, uniqueid=uid, linkedid=uid, queue="sales")


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run_store(url: str, n: int, spool: Path) -> float:
    store = EventStore(url, spool)
    await store.start()
    await store.flush()  # connected (and partitions made) before the clock starts, as the baseline is
    t = time.perf_counter()
    for ev in ami_events(n):
        await store.append(ev)
    await store.close()
    return n / (time.perf_counter() - t)


async def run_baseline(url: str, n: int) -> float:
    conn = await asyncpg.connect(url)
    await conn.execute(
        "CREATE TABLE bare (ts timestamptz, key text, source text, type text, uniqueid text, "
        "linkedid text, agent text, queue text, payload jsonb)"
    )

    def rows() -> Iterator[tuple[Any, ...]]:
        for i, ev in enumerate(ami_events(n)):
            yield (ev.ts, str(i), ev.source, ev.type, ev.uniqueid, ev.linkedid, ev.agent, ev.queue,
                   encode_payload(ev.payload).decode())  # fmt: skip

    t = time.perf_counter()
    await conn.copy_records_to_table("bare", records=rows())
    rate = n / (time.perf_counter() - t)
    await conn.close()
    return rate


async def main(n: int, repeat: int) -> dict[str, Any]:
    server = ScratchServer(prefix="cti_bench")
    await server.start()
    store_rates, base_rates, lost = [], [], 0
    try:
        for _ in range(repeat):
            name = await server.new_database()
            url = with_database(server.url, name)
            with tempfile.TemporaryDirectory() as spool:
                base_rates.append(await run_baseline(url, n))
                store_rates.append(await run_store(url, n, Path(spool)))
            conn = await asyncpg.connect(url)
            stored = await conn.fetchval("SELECT count(*) FROM events")
            await conn.close()
            lost += n - stored
            await server.drop_database(name)
    finally:
        await server.stop()
    ev, base = statistics.median(store_rates), statistics.median(base_rates)
    return {
        "benchmark": "event_store",
        "loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
        "events": n,
        "repeat": repeat,
        "events_per_s": round(ev),
        "baseline_per_s": round(base),
        "ratio": round(ev / base, 3),
        "lost": lost,
        "peak_rss_mb": round(rss_mb(), 1),
        "runs_events_per_s": [round(r) for r in store_rates],
        "runs_baseline_per_s": [round(r) for r in base_rates],
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="print one JSON object (the default output)")
    a = ap.parse_args()
    configure("json", "warning", stream=sys.stderr)  # stdout carries only the JSON figures
    result = runloop.run(main(a.events, a.repeat))  # the product's loop (uvloop), both sides on it
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")

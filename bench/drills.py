"""Benchmark: reliability drills during the shipped TV-ad evening at speed, one fault at a time
(cti.drill.runner): PostgreSQL restarted then blackholed, the AMI link cut then half-open, the CTI
process SIGKILLed and started again, the spool disk full while PostgreSQL is away.

    python -m bench.drills --json [--size full|ci] [--drill postgres --drill ami ...]

Prints one JSON object: per drill lost_callers, lost_events (split undelivered / delivered),
originates_sent_twice and recovery_s per fault.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from cti.drill.runner import DRILLS, SIZES, run_drills
from cti.log import configure

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="full")
    ap.add_argument("--drill", action="append", choices=sorted(DRILLS), help="default: all, in order")
    ap.add_argument("--json", action="store_true", help="print one JSON object (the default output)")
    a = ap.parse_args()
    configure("json", "error", stream=sys.stderr)
    size = SIZES[a.size]
    results = asyncio.run(run_drills(a.drill or list(DRILLS), size))
    out = {"benchmark": "drills", "size": size.name, "speed": size.speed, "outage_s": size.outage_s,
           "drills": results}  # fmt: skip
    json.dump(out, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")

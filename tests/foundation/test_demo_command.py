"""The README's first command, `cti demo`, as a newcomer runs it: a real subprocess on the product's
event loop, simulated PBX + CTI + monitor, ending with the evening's summary."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from cti.db.scratch import ScratchServer

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "quiet_morning.toml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_demo_runs_a_scenario_and_reports_nobody_lost(pg_server: ScratchServer, tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": pg_server.url,  # the demo makes (and remakes) its own database, cti_demo
        "CTI_DATA_DIR": str(tmp_path),
        "CTI_DEMO_PASSWORD": "demo-pass-123",
    }
    env.pop("CTI_EVENT_LOOP", None)  # the product's loop, as a user gets it
    r = subprocess.run(
        [sys.executable, "-m", "cti", "demo", "--scenario", str(SCENARIO), "--speed", "300",
         "--web-port", str(free_port())],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert "monitor 监控: http://" in r.stdout and "demo-pass-123" in r.stdout
    summary = json.loads(r.stdout.split("Evening summary", 1)[1])
    assert summary["offered"] > 20, summary
    assert summary["lost_callable"] == 0 and summary["ami_reconnects"] == 0, summary
    assert summary["cti_seen_offered"] == summary["offered"], summary
    # nobody is in the queue unless the CTI logged them in (R-LOGIN): callers were answered, so it did
    assert summary["answered"] > 0, summary

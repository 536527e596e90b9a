"""The pyst2 degraded-mode script, run as Asterisk runs it: a subprocess fed an AGI transcript on stdin."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg

from cti.agi.protocol import parse_args
from cti.degraded import route_agi
from cti.store.events import EventStore
from cti.store.spool import Spool
from tests.agi.fake_asterisk import env_lines

SCRIPT = Path(route_agi.__file__)
TZ = ZoneInfo("Asia/Shanghai")


def _stdin(env: list[str], replies: list[str], status: str = "200 result=6") -> str:
    """`status` answers the script's first command, CHANNEL STATUS (6: up)."""
    return "\n".join(env) + "\n\n" + "".join(r + "\n" for r in [status, *replies])


def _policy_open_now(tmp_path: Path, open_: bool) -> Path:
    """A policy file whose service hours contain (or exclude) the current minute."""
    now = datetime.now(TZ)
    a, b = (now - timedelta(hours=2)).strftime("%H:%M"), (now + timedelta(hours=2)).strftime("%H:%M")
    start, end = (a, b) if open_ else (b, a)
    tmp_path.mkdir(parents=True, exist_ok=True)
    p = tmp_path / "policy.toml"
    p.write_text(f'[service_hours]\nstart = "{start}"\nend = "{end}"\nnight_callback_due = "08:30"\n')
    return p


def _run(tmp_path: Path, stdin: str, *, open_: bool = True) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CTI_SPOOL_DIR": str(tmp_path / "spool"),
        "CTI_POLICY_FILE": str(_policy_open_now(tmp_path, open_)),
        "PYTHONPATH": str(SCRIPT.parents[2]),
    }
    env.pop("CTI_CONFIG", None)
    return subprocess.run(
        [sys.executable, str(SCRIPT)], input=stdin, capture_output=True, text=True, env=env, timeout=30
    )


def _commands(stdout: str) -> list[list[str]]:
    return [parse_args(line) for line in stdout.splitlines()]


def test_day_call_is_masked_queued_and_spooled(tmp_path: Path) -> None:
    replies = ["200 result=1 (4008001234)", "200 result=1 (1795430750.0)"] + ["200 result=1"] * 6
    p = _run(tmp_path, _stdin(env_lines(agi_calleridname='张"三\\'), replies))
    assert p.returncode == 0
    assert len(p.stderr) < 200  # pyst2's ~2 KB of debug per call is silenced
    cmds = _commands(p.stdout)
    sets = {c[2]: c[3] for c in cmds if c[:2] == ["SET", "VARIABLE"]}
    assert sets["CALLERID(name)"] == sets["CTI_MASKED"] == "138****5678"
    assert sets["CTI_QUEUE"] == "sales" and sets["CTI_ROUTE"] == "queue"
    assert sets["CTI_RECORD"].endswith("/1795430750.0.wav")
    assert cmds[-1] == ["SET", "VARIABLE", "CTI_ROUTE", "queue"]
    (seg,) = Spool(tmp_path / "spool").segments()
    (row,) = list(Spool.read(seg))
    ts, key, source, type_, uniqueid, linkedid, _agent, queue, payload = row
    assert (key, source, type_, uniqueid, linkedid, queue) == (
        "agi:degraded_route:1795430750.0",
        "agi",
        "degraded_route",
        "1795430750.0",
        "1795430750.0",
        "sales",
    )
    body = json.loads(payload)
    assert body["number"] == "13812345678" and body["did"] == "4008001234" and body["degraded"] is True
    assert abs(ts - datetime.now(UTC)) < timedelta(minutes=1)


def test_hangup_and_eof_end_quietly(tmp_path: Path) -> None:
    for replies in (["HANGUP"], [], ["200 result=1 (4008001234)"]):
        p = _run(tmp_path, _stdin(env_lines(), replies))
        assert p.returncode == 0, p.stderr
        assert "Traceback" not in p.stderr and "ValueError" not in p.stderr
    # EOF inside the environment block: nothing to route, still exit 0
    p = _run(tmp_path, "agi_network: yes\nagi_chan")
    assert p.returncode == 0 and p.stdout == ""


def test_no_fact_for_a_caller_who_is_gone(tmp_path: Path) -> None:
    """Issue 10 item 5: run on a channel whose caller already left (511 on a dead channel, HANGUP, or a
    channel that is down), the script records nothing and sets nothing."""
    replies = ["200 result=1 (4008001234)", "200 result=1 (1795430750.0)"] + ["200 result=1"] * 6
    for i, status in enumerate(
        ("511 Command Not Permitted on a dead channel or intercept routine", "HANGUP", "200 result=0")
    ):
        p = _run(tmp_path / str(i), _stdin(env_lines(), replies, status=status))
        assert p.returncode == 0, p.stderr
        assert _commands(p.stdout) == [["CHANNEL", "STATUS"]]
        assert not Spool(tmp_path / str(i) / "spool").segments()


def test_withheld_and_sql_numbers(tmp_path: Path) -> None:
    for callerid in ("anonymous", "1'; DROP TABLE x; --"):
        replies = ["200 result=0", "200 result=0"] + ["200 result=1"] * 6
        p = _run(tmp_path / callerid[:2], _stdin(env_lines(agi_callerid=callerid), replies))
        sets = {c[2]: c[3] for c in _commands(p.stdout) if c[:2] == ["SET", "VARIABLE"]}
        assert sets["CALLERID(name)"] == "unknown" and sets["CTI_ROUTE"] == "queue"


def test_night_takes_name_and_number_and_spools_the_callback(tmp_path: Path) -> None:
    replies = [
        "200 result=1 (4008001234)",  # CTI_DNIS
        "200 result=1 (1795430750.0)",  # linkedid
        *["200 result=1"] * 5,  # the five SET VARIABLEs
        "200 result=0",  # ANSWER
        "200 result=-1 endpos=0",  # welcome prompt missing: carry on
        "200 result=0 endpos=100",  # say-name
        "200 result=0 (timeout) endpos=16000",  # RECORD FILE
        "200 result=0 endpos=100",  # number-is
        "200 result=0",  # SAY DIGITS
        "200 result=1",  # GET DATA: keyed 1
        "200 result=0 endpos=100",  # thanks
        "200 result=1",  # SET CTI_ROUTE hangup
    ]
    p = _run(tmp_path, _stdin(env_lines(), replies), open_=False)
    assert p.returncode == 0, p.stderr
    cmds = _commands(p.stdout)
    assert ["SET", "VARIABLE", "CTI_ROUTE", "hangup"] == cmds[-1]
    assert any(c[:2] == ["RECORD", "FILE"] and c[2].endswith("1795430750.0-name") for c in cmds)
    rows = [r for seg in Spool(tmp_path / "spool").segments() for r in Spool.read(seg)]
    assert [r[3] for r in rows] == ["degraded_route", "degraded_night_callback"]
    body = json.loads(rows[1][8])
    assert body["number"] == "13812345678" and body["due_by"].endswith("08:30:00+08:00")


def test_in_process_run_with_a_fixed_clock(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CTI_SPOOL_DIR", str(tmp_path))
    monkeypatch.delenv("CTI_POLICY_FILE", raising=False)
    out = io.StringIO()
    stdin = io.StringIO(_stdin(env_lines(), ["200 result=0", "200 result=0"] + ["200 result=1"] * 6))
    # 10:00 Shanghai with the shipped policy (06:00-22:00): day
    assert route_agi.run(stdin, out, ["x"], now=datetime(2026, 11, 23, 2, 0, tzinfo=UTC)) == 0
    assert out.getvalue().splitlines()[-1] == 'SET VARIABLE "CTI_ROUTE" "queue"'


async def test_spooled_calls_reach_postgresql_through_the_event_store(tmp_path: Path, db_url: str) -> None:
    replies = ["200 result=1 (4008001234)", "200 result=1 (1795430750.0)"] + ["200 result=1"] * 6
    assert _run(tmp_path, _stdin(env_lines(), replies)).returncode == 0
    store = EventStore(db_url, tmp_path / "spool")
    await store.start()
    try:
        for _ in range(50):
            await store.flush()
            if not Spool(tmp_path / "spool").segments():
                break
            await asyncio.sleep(0.1)
    finally:
        await store.close()
    conn = await asyncpg.connect(db_url)
    try:
        row = await conn.fetchrow(
            "SELECT source, type, uniqueid, payload FROM events WHERE type = 'degraded_route'"
        )
    finally:
        await conn.close()
    assert row is not None and row["source"] == "agi" and row["uniqueid"] == "1795430750.0"
    assert json.loads(row["payload"])["number"] == "13812345678"


def test_night_without_prompts_and_a_failed_name_recording_capture_15(tmp_path: Path) -> None:
    """Capture 15 caller B's replies, in degraded mode: prompts missing (-1), RECORD FILE
    `(writefile)`, GET DATA -1 with the caller still there. The script beeps and reads the keys, the
    callback is spooled with the number and without a name file that was never written; the name
    goes to the recordings' fixed directory, not a dated one RECORD FILE cannot create."""
    replies = [
        "200 result=1 (4008001234)",  # CTI_DNIS
        "200 result=1 (1795430750.0)",  # linkedid
        *["200 result=1"] * 5,  # the five SET VARIABLEs
        "200 result=0",  # ANSWER
        "200 result=-1 endpos=0",  # cti/night-welcome missing
        "200 result=-1 endpos=0",  # cti/say-your-name missing
        "200 result=-1 (writefile)",  # RECORD FILE
        "200 result=-1 endpos=0",  # cti/your-number-is missing
        "200 result=0",  # SAY DIGITS (no key)
        "200 result=-1",  # GET DATA on the missing prompt: at once, caller still there
        "200 result=0 endpos=2000",  # beep
        "200 result=49",  # WAIT FOR DIGIT: 1
        "200 result=35",  # WAIT FOR DIGIT: #
        "200 result=-1 endpos=0",  # thanks missing
        "200 result=1",  # SET CTI_ROUTE hangup
    ]
    p = _run(tmp_path, _stdin(env_lines(), replies), open_=False)
    assert p.returncode == 0, p.stderr
    cmds = _commands(p.stdout)
    assert cmds[-1] == ["SET", "VARIABLE", "CTI_ROUTE", "hangup"]
    (record,) = [c for c in cmds if c[:2] == ["RECORD", "FILE"]]
    assert record[2] == "/var/spool/asterisk/monitor/1795430750.0-name"
    (say,) = [c for c in cmds if c[:2] == ["SAY", "DIGITS"]]
    assert "1" in say[3] and "#" in say[3]  # escape digits: a key during the read-back counts
    rows = [r for seg in Spool(tmp_path / "spool").segments() for r in Spool.read(seg)]
    body = json.loads(rows[-1][8])
    assert rows[-1][3] == "degraded_night_callback"
    assert body["number"] == "13812345678" and body["name_file"] is None

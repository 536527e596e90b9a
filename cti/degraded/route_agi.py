#!/usr/bin/env python3
"""Degraded-mode routing: a process-per-call AGI script (pyst2) the dialplan runs when the CTI's
FastAGI server is unreachable (AGISTATUS=FAILURE, capture 08b). It needs no CTI process and no
database: it masks the caller for the agent's phone, picks day or night from the policy file, writes
the call to the event spool (cti.store.spool segments: the CTI drains them into PostgreSQL when it
is back), then lets the dialplan queue the call. At night it takes the caller's name and number
itself; the CTI turns that spooled fact into a callback (cti/agi/degraded_import.py).

    AGI(/opt/cti/cti/degraded/route_agi.py[,<spool dir>])

Settings, all optional (environment of the Asterisk process, or the CTI's TOML file in CTI_CONFIG):
CTI_SPOOL_DIR (else the first AGI argument, else /var/spool/cti/events), CTI_TIMEZONE
(Asia/Shanghai), CTI_POLICY_FILE (the policy.toml shipped beside this package), and
CTI_RECORDING__PATH_PATTERN (as settings.recording.path_pattern).

pyst2 0.5.1 defects wrapped here (docs/decisions/0302-degraded-mode-pyst2.md): ~2 KB of debug on
stderr per run (silenced), arguments quoted without escaping `"` and `\\` (escaped), DATABASE GET
arguments quoted twice (fixed), ValueError from int('') on `HANGUP` or EOF (raised as AGIHangup).
Whatever happens, the script exits 0 with the call pointed at the queue.
"""

from __future__ import annotations

import io
import json
import os
import sys
import tomllib
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from asterisk.agi import AGI, AGIAppError, AGIException, AGIHangup

from cti import defaults
from cti.recording_files import name_file_base, recording_path
from cti.routing.numbers import NumberKind, classify_number
from cti.store.spool import write_segment

DEFAULT_SPOOL = "/var/spool/cti/events"
DEFAULT_TZ = defaults.TIMEZONE
DEFAULT_PATTERN = "/var/spool/asterisk/monitor/%Y/%m/%d/{linkedid}.wav"  # = RecordingSettings default
QUEUE = defaults.QUEUE
PROMPTS = {
    "welcome": "cti/night-welcome",
    "say_name": "cti/say-your-name",
    "number_is": "cti/your-number-is",
    "confirm": "cti/press-1-or-enter-number",
    "enter": "cti/enter-number",
    "invalid": "cti/invalid-number",
    "thanks": "cti/thanks-we-call-back",
    "beep": "beep",
}
ESCAPE = "0123456789*#"
ANSWER_TIMEOUT_MS = 6000
MAX_DIGITS = 20


class _Quiet(io.TextIOBase):
    """pyst2 writes every env line, command and result to stderr (~2 KB a call): drop it."""

    def write(self, s: str) -> int:
        return len(s)


class _HangupAwareStdin:
    """pyst2 does int('') on `HANGUP` or EOF and dies with ValueError: end the call cleanly instead."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.in_env = True

    def readline(self) -> str:
        line = self.stream.readline()
        if self.in_env:
            if line == "":
                raise AGIHangup("EOF inside the agi_ environment")
            if line.strip() == "":
                self.in_env = False
            return line
        if line == "":
            raise AGIHangup("EOF from Asterisk")
        if line.strip() == "HANGUP":
            raise AGIHangup("HANGUP from Asterisk")
        return line


class SafeAGI(AGI):
    def __init__(self, stdin: TextIO, stdout: TextIO) -> None:
        super().__init__(stdin=_HangupAwareStdin(stdin), stdout=stdout, stderr=_Quiet())

    def _quote(self, string: Any) -> str:
        s = str(string).replace("\r", " ").replace("\n", " ").replace("\x00", " ")
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

    def database_get(self, family: str, key: str) -> str:
        # pyst2 wraps family/key in quotes and then quotes them again
        result = self.execute("DATABASE GET", self._quote(family), self._quote(key))
        res, value = result["result"]
        return value if res == "1" else ""


def _config() -> dict[str, Any]:
    path = os.environ.get("CTI_CONFIG")
    if not path:
        return {}
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def _service_hours(policy_file: str | None) -> tuple[time, time, time]:
    path = Path(policy_file) if policy_file else Path(__file__).resolve().parents[1] / "policy.toml"
    try:
        sh = tomllib.loads(path.read_text(encoding="utf-8"))["service_hours"]
        return (
            time.fromisoformat(sh["start"]),
            time.fromisoformat(sh["end"]),
            time.fromisoformat(sh["night_callback_due"]),
        )
    except (OSError, KeyError, ValueError, tomllib.TOMLDecodeError):
        return time(6, 0), time(22, 0), time(8, 30)  # SPEC defaults: better than no decision


def is_open(start: time, end: time, local: time) -> bool:
    if start <= end:
        return start <= local < end
    return local >= start or local < end


def _row(type_: str, now: datetime, uniqueid: str, linkedid: str, payload: dict[str, Any]) -> tuple[Any, ...]:
    """A row in cti.store.spool.FIELDS order; the key makes a replayed segment harmless."""
    key = f"agi:{type_}:{uniqueid}" if uniqueid else f"agi:{type_}:{now.isoformat()}"
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return (now, key, "agi", type_, uniqueid or None, linkedid or None, None, QUEUE, body)


def _play(agi: SafeAGI, prompt: str, escape: str = "") -> str:
    """pyst2 raises AGIAppError on `result=-1`, which STREAM FILE also returns for a missing prompt
    (captures 04, 15): a missing sound file must not end the caller's chance to leave a number.
    Returns the escape digit that stopped it ('' if none)."""
    try:
        return agi.stream_file(prompt, escape) or ""
    except AGIHangup:
        raise
    except AGIAppError:
        return ""


def _ask(agi: SafeAGI, prompt: str, early: str = "") -> str:
    """The caller's keys (decision 0305, as cti/agi/handlers/ivr.ask): a key already pressed during
    the read-back starts the answer; GET DATA's -1 is a prompt that could not play (capture 15), not
    a hangup: beep and collect the keys anyway."""
    if not early:
        try:
            return agi.get_data(prompt, ANSWER_TIMEOUT_MS, MAX_DIGITS) or ""
        except AGIHangup:
            raise
        except AGIAppError:
            early = _play(agi, PROMPTS["beep"], ESCAPE)
    keyed = early
    while not keyed.endswith("#") and len(keyed) < MAX_DIGITS:
        try:
            digit = agi.wait_for_digit(ANSWER_TIMEOUT_MS)
        except AGIAppError:
            break  # a caller who left shows on the next command (HANGUP)
        if not digit:
            break
        keyed += digit
    return keyed.removesuffix("#")


def _confirm_number(agi: SafeAGI, number: str | None) -> str | None:
    for _ in range(3):
        if number:
            early = _play(agi, PROMPTS["number_is"], ESCAPE)
            if not early:
                try:  # capture 16: without escape digits a `1` keyed meanwhile is lost
                    early = agi.say_digits(number, ESCAPE) or ""
                except AGIHangup:
                    raise
                except AGIAppError:
                    early = ""
            keyed = _ask(agi, PROMPTS["confirm"], early)
            if keyed == "1":
                return number
        else:
            keyed = _ask(agi, PROMPTS["enter"])
        entered = classify_number(keyed)
        if entered.kind is NumberKind.VALID and entered.number and len(entered.number) >= 5:
            return entered.number
        _play(agi, PROMPTS["invalid"])
    return None


def channel_alive(agi: SafeAGI) -> bool:
    """Is a caller still on this channel? A script run on a channel whose caller is gone must record no
    fact: the CTI (or the CDR sweep) already handles that call, and a `degraded_route` for it is a bogus
    fact (issue 10 item 5). CHANNEL STATUS is refused on a dead channel (511), a hung-up one answers
    HANGUP; 4 ringing, 5 remote ringing, 6 up are a live caller."""
    try:
        result = agi.execute("CHANNEL STATUS")
        return int(result["result"][0] or -1) >= 4
    except (AGIException, ValueError):
        return False


def run(stdin: TextIO, stdout: TextIO, argv: list[str], now: datetime | None = None) -> int:
    cfg = _config()
    spool = os.environ.get("CTI_SPOOL_DIR") or (argv[1] if len(argv) > 1 and argv[1] else DEFAULT_SPOOL)
    tz = ZoneInfo(os.environ.get("CTI_TIMEZONE") or cfg.get("timezone") or DEFAULT_TZ)
    pattern = (
        os.environ.get("CTI_RECORDING__PATH_PATTERN")
        or cfg.get("recording", {}).get("path_pattern")
        or DEFAULT_PATTERN
    )
    start, end, due_at = _service_hours(os.environ.get("CTI_POLICY_FILE") or cfg.get("policy_file"))
    now = now or datetime.now(UTC)

    try:
        agi = SafeAGI(stdin, stdout)
    except AGIException:
        return 0  # Asterisk went away before the environment ended: nothing to route
    env = agi.env
    uniqueid = env.get("agi_uniqueid", "")
    caller = classify_number(env.get("agi_callerid"))
    masked = caller.masked
    local = now.astimezone(tz)
    day = is_open(start, end, local.time())
    if not channel_alive(agi):
        return 0
    try:
        did = agi.get_variable("CTI_DNIS") or env.get("agi_dnid") or None
        linkedid = agi.get_variable("CHANNEL(linkedid)") or uniqueid
        record = recording_path(pattern, local, linkedid, uniqueid) if day else ""
        payload = {
            "route": "queue" if day else "night",
            "queue": QUEUE,
            "number": caller.number,
            "number_kind": caller.kind.value,
            "masked": masked,
            "did": did,
            "record": record or None,
            "degraded": True,
        }
        # the fact first: even if the caller hangs up now, the call is known
        write_segment(Path(spool), [_row("degraded_route", now, uniqueid, linkedid, payload)])
        agi.set_variable("CALLERID(name)", masked)
        agi.set_variable("CTI_MASKED", masked)
        agi.set_variable("CTI_QUEUE", QUEUE)
        agi.set_variable("CTI_PREFERRED", "")
        agi.set_variable("CTI_RECORD", record)
        if day:
            agi.set_variable("CTI_ROUTE", "queue")
            return 0
        _night(agi, caller.number, did, linkedid, uniqueid, now, local, due_at, tz, pattern, Path(spool))
    except AGIHangup:
        pass
    except Exception as e:  # never leave the call without a route
        try:
            agi.verbose(f"cti degraded route failed: {type(e).__name__}", 1)
            agi.set_variable("CALLERID(name)", masked)
            agi.set_variable("CTI_MASKED", masked)
            agi.set_variable("CTI_ROUTE", "queue")
        except (AGIException, OSError):
            pass
    return 0


def _night(
    agi: SafeAGI,
    number: str | None,
    did: str | None,
    linkedid: str,
    uniqueid: str,
    now: datetime,
    local: datetime,
    due_at: time,
    tz: ZoneInfo,
    pattern: str,
    spool: Path,
) -> None:
    agi.answer()
    _play(agi, PROMPTS["welcome"])
    _play(agi, PROMPTS["say_name"])
    name_base = name_file_base(pattern, local, linkedid, uniqueid)
    name_file: str | None = name_base + ".wav"
    try:
        agi.execute("RECORD FILE", agi._quote(name_base), "wav", '"#"', 8000, "BEEP", "s=2")
    except AGIHangup:
        raise
    except AGIAppError:
        name_file = None  # `(writefile)` (capture 15): nothing written, so nothing to point at
    confirmed = _confirm_number(agi, number)
    due = datetime.combine(local.date(), due_at, tzinfo=tz)
    if due <= local:
        due = datetime.combine(local.date() + timedelta(days=1), due_at, tzinfo=tz)
    payload = {
        "number": confirmed,
        "did": did,
        "due_by": due.isoformat(),
        "name_file": name_file,
        "degraded": True,
    }
    write_segment(spool, [_row("degraded_night_callback", now, uniqueid, linkedid, payload)])
    _play(agi, PROMPTS["thanks"])
    agi.set_variable("CTI_ROUTE", "hangup")


def main() -> int:
    return run(sys.stdin, sys.stdout, sys.argv)


if __name__ == "__main__":
    sys.exit(main())

"""What Asterisk's cdr_pgsql writes for the simulated PBX running the project's dialplan (db/034).

Rows follow captures 11-20 (`cdr-pgsql.csv`), not the older captures of a one-context dialplan:
- `dcontext` is the context where the caller's channel ENDED (`cti-queue` for the queue and the preferred
  Dial, `cti-night`, `cti-hangup`, `cti-inbound`/`cti-callback-offer` when the caller hung up during
  the script) and `dst` is `s`: the DID appears nowhere in an inbound row (11-15, 19, 20);
- `clid` is `"<CALLERID(name)>" <number>`: the masked name the route script or `[cti-queue]` set;
- every inbound row is ANSWERED (Answer() runs first), an abandon shows only as `dstchannel = ''`
  (14, 20); `billsec` includes queue time;
- a preferred Dial that timed out before the queue gives TWO rows with the same uniqueid: `NO ANSWER`
  with the agent as dstchannel (calldate = call start), then the queue row (calldate = when the Dial
  ended), sequences n and n+2 (13: the agent leg took n+1);
- a callback (agent first, `[callback-did]`) is one row on the agent's channel: `clid "" <DID>`,
  `src` = DID, `dst` = customer number, uniqueid = linkedid = ChannelId, ANSWERED because the agent
  answered, `billsec` 0 and `dstchannel ''` when no customer channel was created (16, 18, 19);
- `calldate` has second precision, `amaflags` 3;
- `cti_did`: `[from-trunk]` sets `CDR(cti_did)=${EXTEN}` and cdr_pgsql fills any extra column of the
  table from the CDR variable of that name (cdr_pgsql.c, "Arbitrary field"); later rows of the same
  channel carry the variable too. No capture shows it: captures 11-20 predate the column (db/046), and
  without it a caller missed while no CTI watched was called back from the default DID.
Rows are written in small batches by a background task, like the module's own connection. When the
database is gone (a restart), the module reconnects and tries once more; rows it still cannot write
are dropped and counted, as cdr_pgsql drops a record it cannot insert ("Unable to reconnect to
database server ... Some calls will not be logged!", cdr_pgsql.c; no capture shows an outage)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from datetime import UTC, datetime
from typing import Any

import asyncpg

COLUMNS = ("calldate", "clid", "src", "dst", "dcontext", "channel", "dstchannel", "lastapp", "lastdata",
           "duration", "billsec", "disposition", "amaflags", "accountcode", "uniqueid", "userfield",
           "linkedid", "sequence", "cti_did")  # fmt: skip

QUEUE_DATA = "{queue},b(cti-agent-leg^s^1({masked})),,,{timeout},,cti-agent-connect"
DIAL_DATA = "PJSIP/{agent},{timeout},b(cti-agent-leg^s^1({masked}))U(cti-agent-connect)"


def _calldate(t: float) -> datetime:
    return datetime.fromtimestamp(int(t), UTC)


def _masked(number: str) -> str:
    return f"{number[:3]}****{number[-4:]}"


def _row(**kw: Any) -> tuple[Any, ...]:
    base = {"accountcode": "", "userfield": "", "amaflags": 3, "dstchannel": "", "cti_did": ""}
    base.update(kw)
    return tuple(base[c] for c in COLUMNS)


def inbound_end(rec: dict[str, Any]) -> tuple[str, str, str]:
    """(dcontext, lastapp, lastdata) where the project's dialplan left the caller's channel."""
    masked = rec.get("masked") or _masked(rec["number"])
    pref = rec.get("preferred")
    url = rec.get("agi_url", "agi://127.0.0.1:4573")
    if rec.get("queue"):
        data = QUEUE_DATA.format(queue=rec["queue"], masked=masked, timeout=rec.get("queue_timeout", 600))
        return "cti-queue", "Queue", data
    if pref is not None:
        data = DIAL_DATA.format(agent=pref["agent"], timeout=pref["timeout"], masked=masked)
        return "cti-queue", "Dial", data
    script, hung_by_dialplan = rec.get("script", "route"), rec.get("dialplan_hangup", False)
    if script == "night":
        return ("cti-night", "Hangup", "") if hung_by_dialplan else ("cti-night", "AGI", f"{url}/night")
    if hung_by_dialplan:  # CTI_ROUTE=hangup (route, or an accepted callback offer): [cti-hangup]
        return "cti-hangup", "Hangup", ""
    ctx = "cti-callback-offer" if script == "callback_offer" else "cti-inbound"
    return ctx, "AGI", f"{url}/{script}"


def cdr_rows(rec: dict[str, Any], sequence: int = 0) -> list[tuple[Any, ...]]:
    """The cdr rows of one finished inbound call (the record of cti.sim.inbound.InboundFlow._finish)."""
    number, started, ended = rec["number"], float(rec["started"]), float(rec["ended"])
    masked = rec.get("masked") or _masked(number)
    ctx, app, data = inbound_end(rec)
    # [cti-queue] sets CALLERID(name)=CTI_MASKED; elsewhere the name the route script set stays
    name = masked if ctx == "cti-queue" else rec.get("clid_name", masked)
    if name == "<unknown>":
        name = ""
    common = {
        "clid": f'"{name}" <{number}>'[:80], "src": number[:80], "dst": "s", "channel": rec["channel"],
        "uniqueid": rec["uniqueid"], "linkedid": rec["uniqueid"], "cti_did": (rec.get("did") or "")[:80],
    }  # fmt: skip
    rows = []
    pref = rec.get("preferred")
    start = started
    if pref is not None and pref.get("status") == "NOANSWER" and rec.get("queue"):
        secs = int(pref["ended"] - started)
        dial = DIAL_DATA.format(agent=pref["agent"], timeout=pref["timeout"], masked=masked)
        rows.append(_row(**common, calldate=_calldate(started), dcontext="cti-queue",
                         dstchannel=pref["channel"], lastapp="Dial", lastdata=dial[:80], duration=secs,
                         billsec=secs, disposition="NO ANSWER", sequence=sequence))  # fmt: skip
        sequence += 2  # the agent leg's own record took one number (13: 0 then 2)
        start = float(pref["ended"])
    secs = max(0, int(ended - start))
    rows.append(_row(**common, calldate=_calldate(start), dcontext=ctx,
                     dstchannel=rec.get("agent_channel") or "", lastapp=app, lastdata=data[:80],
                     duration=secs, billsec=secs, disposition="ANSWERED", sequence=sequence))  # fmt: skip
    return rows


def callback_row(rec: dict[str, Any], sequence: int = 0) -> tuple[Any, ...]:
    """The row of one agent-first callback Originate (`[callback-did]`, captures 16, 18, 19)."""
    created, ended = float(rec["created"]), float(rec["ended"])
    answered = rec.get("customer_answered")
    return _row(
        calldate=_calldate(created), clid=f'"" <{rec["did"]}>', src=rec["did"], dst=rec["number"],
        dcontext="callback-did", channel=rec["channel"], dstchannel=rec.get("customer_channel") or "",
        lastapp="Dial", lastdata=f"PJSIP/{rec['number']}@{rec['trunk']},{rec['ring_s']}"[:80],
        duration=max(0, int(ended - created)),
        billsec=max(0, int(ended - float(answered))) if answered is not None else 0,
        disposition="ANSWERED", uniqueid=rec["uniqueid"], linkedid=rec["uniqueid"], sequence=sequence,
    )  # fmt: skip


class CdrWriter:
    def __init__(self, dsn: str, interval_s: float = 0.2) -> None:
        self.dsn = dsn
        self.interval_s = interval_s
        self._rows: list[tuple[Any, ...]] = []
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._seq = itertools.count()
        self.written = 0
        self.dropped = 0  # rows lost while the database was unreachable, as cdr_pgsql loses them

    def record(self, rec: dict[str, Any]) -> None:
        """The core's on_call_record hook (synchronous): a call or a callback Originate ended."""
        if rec.get("kind") == "callback":
            self._rows.append(callback_row(rec, next(self._seq)))
            return
        rows = cdr_rows(rec, next(self._seq))
        if len(rows) > 1:
            next(self._seq), next(self._seq)
        self._rows.extend(rows)

    async def start(self) -> None:
        self._conn = await asyncpg.connect(self.dsn)
        self._task = asyncio.create_task(self._loop(), name="sim-cdr-writer")

    async def _flush(self) -> None:
        rows, self._rows = self._rows, []
        if not rows:
            return
        for _attempt in (1, 2):  # cdr_pgsql: one reconnect, one retry
            try:
                if self._conn is None or self._conn.is_closed():
                    self._conn = await asyncpg.connect(self.dsn, timeout=5)
                await self._conn.copy_records_to_table("cdr", records=rows, columns=COLUMNS)
                self.written += len(rows)
                return
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                if self._conn is not None:
                    self._conn.terminate()
                self._conn = None
        self.dropped += len(rows)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self._flush()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._flush()
        if self._conn is not None:
            await self._conn.close()

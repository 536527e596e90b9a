"""Callers nobody watched: Asterisk's CDRs (cdr_pgsql, db/034) → the missed-call decision.

While no CTI process is connected to AMI (a restart, a crash), a caller can come and go without one
event reaching us. Asterisk still writes their CDR. Every minute (and at start) the CTI looks at recent
inbound calls in `cdr` that no process has decided yet (`missed_calls`) and passes the unanswered ones
through the same decision as a live one (MissedCallWatcher), so each call is decided once, whoever
sees it first.

What the rows look like for our dialplan (captures 11-20, decision 0410):
- an inbound caller's row has the caller's own channel, `PJSIP/<trunk endpoint>-…`, uniqueid =
  linkedid; `dcontext` is wherever the dialplan left the channel (`cti-queue`, `cti-night`, …) and
  `dst` is `s`, so neither says "inbound" and both change whenever the dialplan does. The trunk
  endpoint is configuration (pjsip.conf, `ami.trunk_endpoints`): that is what we match;
- our callbacks are on the AGENT's channel with uniqueid = linkedid = `cti-cb-…` and the trunk only as
  dstchannel; a customer-first Originate would have the trunk channel but a `cti-` linkedid: both out;
- every inbound row is ANSWERED (the IVR's Answer()); a person answered only when a row is ANSWERED
  *and* has a dstchannel. A preferred Dial that timed out is a `NO ANSWER` row with the agent as
  dstchannel, followed by the queue's row: rows are grouped by linkedid (13);
- the DID is not in Asterisk's own columns (`dst = s`): `[from-trunk]` copies it into the extra column
  `cti_did` (CDR variable, db/046), so the callback presents the DID the caller dialled (R-OUT-CID).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from cti.callbacks.missed import MissedCallWatcher, WatchedCall, missed_call_decision
from cti.callbacks.offer import callable_number

# Inbound caller legs (a trunk channel, their own linkedid), ended at least `settle` ago so the live
# watcher has had its chance, not yet decided, and never bridged to a person.
_UNANSWERED = """
SELECT linkedid, min(calldate) AS started, max(calldate + make_interval(secs => duration)) AS ended,
       min(src) AS src, min(dst) AS dst, max(cti_did) AS cti_did
FROM cdr
WHERE calldate >= $1 AND channel LIKE ANY($2::text[]) AND linkedid <> '' AND uniqueid = linkedid
  AND linkedid NOT LIKE 'cti-%'
  AND NOT EXISTS (SELECT 1 FROM missed_calls m WHERE m.linkedid = cdr.linkedid)
GROUP BY linkedid
HAVING NOT bool_or(disposition = 'ANSWERED' AND dstchannel <> '')
   AND max(calldate + make_interval(secs => duration)) <= $3
"""


def trunk_channel_patterns(trunk_endpoints: Sequence[str]) -> list[str]:
    """LIKE patterns for the channels of the given PJSIP endpoints (`_`/`%` in names escaped)."""
    out = []
    for ep in trunk_endpoints:
        esc = ep.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        out.append(f"PJSIP/{esc}-%")
    return out


def _did(cti_did: str | None, dst: str | None) -> str | None:
    """The DID the caller dialled: `[from-trunk]` puts it in CDR(cti_did) (db/046), since `dst` is `s`
    in every row our dialplan leaves (captures 11-15); `dst` still serves a dialplan that ends in the DID."""
    for v in (cti_did, dst):
        if v and v.isdigit():
            return v
    return None


async def sweep_cdr(
    conn: object,
    watcher: MissedCallWatcher,
    *,
    since: datetime,
    settled_before: datetime,
    trunk_endpoints: Sequence[str] = ("trunk",),
) -> int:
    """Decide every unanswered inbound call in `cdr` since `since` that no one decided; returns how many."""
    rows = await conn.fetch(_UNANSWERED, since, trunk_channel_patterns(trunk_endpoints), settled_before)  # type: ignore[attr-defined]
    for r in rows:
        did = _did(r["cti_did"], r["dst"])
        call = WatchedCall(r["linkedid"], r["started"].timestamp(), callable_number(r["src"]), did)
        ended = r["ended"].timestamp()
        d = missed_call_decision(call, ended, min_wait_s=watcher.policy.peak.abandon_callback_after_s)
        await watcher.apply(call, ended, d)
    return len(rows)

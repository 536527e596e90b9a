"""Callers nobody watched: Asterisk's CDRs (cdr_pgsql, db/034) → the missed-call decision.

While no CTI process is connected to AMI (a restart, a crash), a caller can come and go without one
event reaching us. Asterisk still writes their CDR. Every minute (and at start) the CTI looks at recent
inbound calls in `cdr` that no process has decided yet (`missed_calls`): a call a person answered has
a CDR with disposition ANSWERED *and* a destination channel (the IVR's own Answer() makes an abandoned
caller's CDR ANSWERED too, with no dstchannel: capture 03); any other is missed and goes through the
same decision as a live one (MissedCallWatcher), so each call is decided once, whoever sees it first.
"""

from __future__ import annotations

from datetime import datetime

from cti.callbacks.missed import InboundCall, MissedCallWatcher, missed_call_decision
from cti.callbacks.offer import callable_number

# Inbound caller legs (their own linkedid, from the trunk context), ended at least `settle` ago so the
# live watcher has had its chance, not yet decided, and never bridged to a person.
_UNANSWERED = """
SELECT linkedid, min(calldate) AS started, max(calldate + make_interval(secs => duration)) AS ended,
       min(src) AS src, min(dst) AS dst
FROM cdr
WHERE calldate >= $1 AND dcontext = ANY($2::text[]) AND linkedid <> '' AND uniqueid = linkedid
  AND linkedid NOT LIKE 'cti-%'
  AND NOT EXISTS (SELECT 1 FROM missed_calls m WHERE m.linkedid = cdr.linkedid)
GROUP BY linkedid
HAVING NOT bool_or(disposition = 'ANSWERED' AND dstchannel <> '')
   AND max(calldate + make_interval(secs => duration)) <= $3
"""

INBOUND_CONTEXTS = ("from-trunk",)


async def sweep_cdr(
    conn: object, watcher: MissedCallWatcher, *, since: datetime, settled_before: datetime
) -> int:
    """Decide every unanswered inbound call in `cdr` since `since` that no one decided; returns how many."""
    rows = await conn.fetch(_UNANSWERED, since, list(INBOUND_CONTEXTS), settled_before)  # type: ignore[attr-defined]
    for r in rows:
        call = InboundCall(
            r["linkedid"], r["started"].timestamp(), callable_number(r["src"]), r["dst"] or None
        )
        ended = r["ended"].timestamp()
        d = missed_call_decision(call, ended, min_wait_s=watcher.policy.peak.abandon_callback_after_s)
        await watcher.apply(call, ended, d)
    return len(rows)

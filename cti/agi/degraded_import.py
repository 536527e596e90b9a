"""Turn what the degraded-mode script (cti/degraded/route_agi.py) left in the event log into callbacks.

While the CTI process was down, night callers still left a number: the script spooled a
`degraded_night_callback` event, which the event store has since drained into PostgreSQL. This
makes each such event a callback, once: the agi_degraded_imports row (db/022), written in the same
transaction, marks it done, so running this again, or from two processes at once, is harmless.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import structlog

from cti.callbacks.repo import InvalidCallbackNumber, create_or_join, normalise_number
from cti.policy import Policy
from cti.routing.inbound import DEFAULT_QUEUE

log = structlog.get_logger(__name__)

_PENDING = """
SELECT e.ts, e.linkedid, e.uniqueid, e.payload
FROM events e
WHERE e.source = 'agi' AND e.type = 'degraded_night_callback' AND e.ts >= $1
  AND NOT EXISTS (SELECT 1 FROM agi_degraded_imports i WHERE i.linkedid = COALESCE(e.linkedid, e.uniqueid))
ORDER BY e.ts
"""


async def import_degraded_callbacks(conn: Any, policy: Policy, since: datetime) -> int:
    """Create (or join) a callback per spooled night capture since `since`; returns how many."""
    made = 0
    for row in await conn.fetch(_PENDING, since):
        payload = row["payload"]
        body = json.loads(payload) if isinstance(payload, str) else payload
        number = body.get("number")
        linkedid = row["linkedid"] or row["uniqueid"]
        if not number:
            log.warning("degraded night capture without a number", linkedid=linkedid)
            continue
        due = body.get("due_by")
        try:
            normalise_number(number)
        except InvalidCallbackNumber:
            log.warning("degraded night capture with an unusable number", linkedid=linkedid)
            await conn.execute(
                "INSERT INTO agi_degraded_imports (linkedid) VALUES ($1) ON CONFLICT DO NOTHING", linkedid
            )
            continue
        async with conn.transaction():
            # the marker first: a concurrent importer blocks on it, then finds it and skips
            claimed = await conn.fetchval(
                "INSERT INTO agi_degraded_imports (linkedid) VALUES ($1) "
                "ON CONFLICT DO NOTHING RETURNING linkedid",
                linkedid,
            )
            if claimed is None:
                continue
            ref = await create_or_join(
                conn,
                number=number,
                did=body.get("did"),
                kind="night",
                now=row["ts"],
                priority=policy.callbacks.night_priority,
                due_by=datetime.fromisoformat(due) if due else None,
                caller_name_file=body.get("name_file"),
                source_linkedid=linkedid,
                queue=DEFAULT_QUEUE,
            )
            await conn.execute(
                "UPDATE agi_degraded_imports SET callback_id = $2 WHERE linkedid = $1", linkedid, ref.id
            )
        made += 1
    if made:
        log.info("night callbacks imported from degraded mode", count=made)
    return made

"""The inbound half of a line test, inside the route AGI: a call from our own test caller number is
no customer. It is answered by nothing and nobody (CTI_ROUTE=hangup), marked on the channel
(CTI_LINETEST, which facts read from VarSet to leave the call out), given its `missed_calls` row so
neither the missed-call watcher nor the CDR sweep calls it back, and passes the DID's waiting test.
No `route` event: routing figures count customers."""

from __future__ import annotations

import structlog

from cti.agi.context import AgiContext
from cti.agi.session import AgiSession
from cti.linetest import repo
from cti.masking import mask_number

log = structlog.get_logger(__name__)


async def handle(session: AgiSession, ctx: AgiContext, *, did: str | None, linkedid: str | None) -> None:
    now = ctx.clock.now()
    test_id: int | None = None
    duration: float | None = None
    await session.set_variable("CTI_LINETEST", "1")
    if ctx.pool is not None and did and linkedid:
        try:
            async with ctx.pool.acquire() as conn:
                row = await repo.pass_inbound(conn, did, linkedid, now)
            if row is not None:
                test_id, duration = int(row["id"]), float(row["duration_s"])
        except Exception as e:  # the test then fails by its timeout; the call is still no customer
            log.warning("line_test_inbound_not_recorded", did=mask_number(did), error=type(e).__name__)
    await session.set_variable("CTI_ROUTE", "hangup")
    if test_id is None:
        log.warning("line_test_call_without_a_waiting_test", did=mask_number(did))
    await ctx.emit(
        "line_test_inbound",
        {"did": did, "test_id": test_id, "duration_s": duration},
        key=f"agi:line_test:{session.uniqueid}" if session.uniqueid else None,
        uniqueid=session.uniqueid,
        linkedid=linkedid,
    )

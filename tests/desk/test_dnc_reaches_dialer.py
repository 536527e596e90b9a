"""An agent's "never call again" or complaint disposition stops the outbound dialer at once: the
request is kept with its call, and the number is on the list the dialer's eligibility reads."""

from __future__ import annotations

from datetime import UTC, datetime

from cti.desk import repo
from cti.outbound import dnc

AT = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


async def test_a_never_call_disposition_puts_the_number_on_the_outbound_list(pool) -> None:  # type: ignore[no-untyped-def]
    async with pool.acquire() as conn:
        await repo.add_dnc(conn, "13812345678", "do_not_disturb", "", "1795923519.0", "agent1", AT)
        await repo.add_dnc(conn, "13812345678", "complaint", "rude", "1795923519.0", "agent1", AT)
        assert await dnc.active(conn, "+8613812345678") == ["complaint", "do_not_disturb"]
        req = await conn.fetch("SELECT linkedid, added_by FROM dnc_requests ORDER BY category")
        assert [(r["linkedid"], r["added_by"]) for r in req] == [("1795923519.0", "agent1")] * 2


async def test_a_number_that_cannot_be_dialled_keeps_only_the_request(pool) -> None:  # type: ignore[no-untyped-def]
    async with pool.acquire() as conn:
        await repo.add_dnc(conn, "10086", "complaint", "", "1795923519.1", "agent2", AT)
        assert await conn.fetchval("SELECT count(*) FROM dnc") == 0
        assert await conn.fetchval("SELECT count(*) FROM dnc_requests") == 1

"""R-HANGUP-LAST against the database: the ledger rebuilt from call_facts and survey_results fines the
agent who hung up on a customer, not the one who sent the customer to the survey with *0."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from cti.fines import repo

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 16, 10, 0, tzinfo=TZ)


async def test_ledger_spares_the_agent_who_sent_the_customer_to_the_survey(db: asyncpg.Connection) -> None:
    for lid, agent in (("100.1", "agent1"), ("100.2", "agent2"), ("100.3", "agent3")):
        await db.execute(
            """INSERT INTO call_facts (linkedid, started_at, ended_at, outcome, answered_by, queue,
                                       hung_up_first)
               VALUES ($1, $2, $3, 'answered', $4, 'sales', 'agent')""",
            lid, T0, T0 + timedelta(minutes=3), agent,
        )  # fmt: skip
    # agent2 pressed *0: the customer rated the call; agent3's customer reached the survey because
    # agent3 simply hung up (via 'hangup'), which is still hanging up first
    await db.execute(
        """INSERT INTO survey_results (linkedid, agent, queue, call_kind, scale, keyed, score, outcome,
                                       at, via)
           VALUES ('100.2', 'agent2', 'sales', 'inbound', 'five', '5', 5, 'rated', $1, 'key'),
                  ('100.3', 'agent3', 'sales', 'inbound', 'five', '4', 4, 'rated', $1, 'hangup')""",
        T0 + timedelta(minutes=4),
    )  # fmt: skip
    await repo.rebuild(db, T0 - timedelta(hours=1), T0 + timedelta(hours=1), TZ)
    fined = await db.fetch(
        "SELECT person, amount_fen FROM fine_ledger WHERE rule = 'agent_hung_up_first' ORDER BY person"
    )
    assert [(r["person"], r["amount_fen"]) for r in fined] == [("agent1", 2000), ("agent3", 2000)]

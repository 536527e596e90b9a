from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import time

import asyncpg
import pytest

from cti.outbound import campaigns
from cti.outbound.rules import RuleSet, Window
from cti.policy import load_policy

TZ = "Asia/Shanghai"


def rules_for(
    windows: tuple[Window, ...] = (Window("default", time(0), time(23, 59, 59)),), **over: object
) -> RuleSet:
    policy = load_policy(overrides={k: v for k, v in over.items()})
    return RuleSet.from_policy(policy, TZ, windows)


@pytest.fixture
def make_campaign(db: asyncpg.Connection) -> Callable[..., Awaitable[int]]:
    async def make(name: str = "c1", product: str = "broadband", **kw: object) -> int:
        kw.setdefault("windows", (Window("default", time(0), time(23, 59, 59)),))
        kw.setdefault("max_attempts", 1000)
        kw.setdefault("retry_backoff_s", 0)
        cid = await campaigns.create(
            db, name=name, product=product, queue="sales", did="4008001234", mode="progressive", by="t", **kw
        )
        await campaigns.set_status(db, cid, "running", by="t")
        return cid

    return make


async def add_contact(
    db: asyncpg.Connection, number: str, campaign_ids: list[int], segment: str = "default"
) -> int:
    cid = await db.fetchval(
        """INSERT INTO contacts (number, segment) VALUES ($1, $2)
           ON CONFLICT (number) DO UPDATE SET segment = EXCLUDED.segment RETURNING id""",
        number,
        segment,
    )
    for k in campaign_ids:
        await db.execute("INSERT INTO campaign_contacts (campaign_id, contact_id) VALUES ($1, $2)", k, cid)
    return int(cid)

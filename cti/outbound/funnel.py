"""R-FUNNEL (seed 001 附件4, 外呼营销运营效率管理模型): seats, calls per seat, dials, connect rate,
connects, effective-talk rate, effective talks, success rate, orders — per campaign, agent, hour or
day (site time zone)."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import asyncpg

GROUPINGS = {
    "campaign": "k.name",
    "agent": "coalesce(d.connected_agent, d.agent, '-')",
    "hour": "to_char(d.dialed_at AT TIME ZONE $3, 'YYYY-MM-DD HH24:00')",
    "day": "to_char(d.dialed_at AT TIME ZONE $3, 'YYYY-MM-DD')",
}

# 座席数 / 座席平均外呼量 / 外呼量 / 接通率 / 接通量 / 有效通话率 / 有效通话量 / 成功率 / 订单量
HEADERS_ZH = {
    "group": "分组",
    "seats": "座席数",
    "calls_per_seat": "座席平均外呼量",
    "dials": "外呼量",
    "connect_rate": "接通率",
    "connects": "接通量",
    "effective_rate": "有效通话率",
    "effective_talks": "有效通话量",
    "success_rate": "成功率",
    "orders": "订单量",
}


@dataclass(frozen=True)
class FunnelRow:
    group: str
    seats: int
    calls_per_seat: float
    dials: int
    connect_rate: float
    connects: int
    effective_rate: float
    effective_talks: int
    success_rate: float
    orders: int


def _ratio(a: int, b: int) -> float:
    return round(a / b, 4) if b else 0.0


async def funnel(
    conn: asyncpg.Connection,
    by: str,
    since: datetime,
    until: datetime,
    tz: str,
    effective_talk_s: int,
    campaign_id: int | None = None,
) -> list[FunnelRow]:
    if by not in GROUPINGS:
        raise ValueError(f"unknown grouping {by!r} (one of: {', '.join(GROUPINGS)})")
    rows = await conn.fetch(
        f"""SELECT {GROUPINGS[by]} AS g,
                   count(DISTINCT coalesce(d.connected_agent, d.agent)) AS seats,
                   count(*) AS dials,
                   count(*) FILTER (WHERE d.connected_at IS NOT NULL) AS connects,
                   count(*) FILTER (WHERE d.connected_at IS NOT NULL AND d.talk_s >= $4) AS effective,
                   count(*) FILTER (WHERE d.disposition = 'sale') AS orders
            FROM dials d JOIN campaigns k ON k.id = d.campaign_id
            WHERE d.dialed_at >= $1 AND d.dialed_at < $2 AND $3::text IS NOT NULL
              AND ($5::bigint IS NULL OR d.campaign_id = $5)
            GROUP BY 1 ORDER BY 1""",
        since,
        until,
        tz,
        effective_talk_s,
        campaign_id,
    )
    return [
        FunnelRow(
            group=r["g"],
            seats=r["seats"],
            calls_per_seat=round(r["dials"] / r["seats"], 2) if r["seats"] else 0.0,
            dials=r["dials"],
            connect_rate=_ratio(r["connects"], r["dials"]),
            connects=r["connects"],
            effective_rate=_ratio(r["effective"], r["connects"]),
            effective_talks=r["effective"],
            success_rate=_ratio(r["orders"], r["effective"]),
            orders=r["orders"],
        )
        for r in rows
    ]


def to_csv(rows: list[FunnelRow]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(HEADERS_ZH))
    w.writerow(HEADERS_ZH)  # Chinese first row of headers, as the house reports do
    for r in rows:
        w.writerow(asdict(r))
    return buf.getvalue()


def to_json(rows: list[FunnelRow]) -> list[dict[str, Any]]:
    return [asdict(r) for r in rows]

"""Orders from the order system: parsed from CSV/XLSX (or the HTTP API's JSON), validated as a whole
(one bad line names itself and nothing is imported), stored idempotently by external id, credited by
R-FIRST-OWNER: a duplicate belongs to the first entry, an add-on to the original order's owner."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

import asyncpg

from cti.routing.numbers import NumberKind, classify_number  # the project's one number parser

STATUSES = ("new", "confirmed", "shipped", "received", "cancelled", "returned")
COLUMNS = ("external_id", "number", "agent", "created_at", "status", "product", "duplicate_of", "parent")


class OrderImportError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class OrderIn:
    external_id: str
    number: str
    agent: str
    created_at: datetime
    status: str = "new"
    product: str | None = None
    duplicate_of: str | None = None  # external id of the first entry
    parent: str | None = None  # external id of the original order (add-on)


def parse_row(row: Mapping[str, Any], where: str, tz: tzinfo) -> OrderIn:
    def s(k: str) -> str:
        v = row.get(k)
        return "" if v is None else str(v).strip()

    ext = s("external_id")
    if not ext:
        raise OrderImportError(f"{where}: external_id is empty")
    num = classify_number(s("number"))
    if num.kind is not NumberKind.VALID or num.number is None:
        raise OrderImportError(f"{where}: number is not a phone number ({num.kind.value})")
    agent = s("agent")
    if not agent:
        raise OrderImportError(f"{where}: agent is empty")
    raw = row.get("created_at")
    if isinstance(raw, datetime):
        at = raw
    else:
        try:
            at = datetime.fromisoformat(s("created_at"))
        except ValueError:
            raise OrderImportError(
                f"{where}: created_at {s('created_at')!r} is not an ISO date/time"
            ) from None
    if at.tzinfo is None:  # the order system writes site-local times
        at = at.replace(tzinfo=tz)
    status = s("status") or "new"
    if status not in STATUSES:
        raise OrderImportError(f"{where}: status {status!r} is not one of {', '.join(STATUSES)}")
    return OrderIn(
        ext,
        num.number,
        agent,
        at,
        status,
        s("product") or None,
        s("duplicate_of") or None,
        s("parent") or None,
    )


def parse_csv(text: str, tz: tzinfo) -> list[OrderIn]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    _check_header(reader.fieldnames)
    return [parse_row(r, f"line {n}", tz) for n, r in enumerate(reader, start=2)]


def parse_xlsx(path: Path, tz: tzinfo) -> list[OrderIn]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises several types for a file that is not a workbook
        raise OrderImportError(f"{path.name} is not an XLSX workbook ({type(e).__name__})") from None
    try:
        rows = wb.worksheets[0].iter_rows(values_only=True)
        header = [str(h).strip() if h is not None else "" for h in next(rows, ())]
        _check_header(header)
        out = []
        for n, values in enumerate(rows, start=2):
            if all(v is None for v in values):
                continue
            out.append(parse_row(dict(zip(header, values, strict=False)), f"row {n}", tz))
        return out
    finally:
        wb.close()


def _check_header(names: Iterable[str] | None) -> None:
    need = {"external_id", "number", "agent", "created_at"}
    got = set(names or ())
    if not need <= got:
        raise OrderImportError(f"orders need the columns {sorted(need)} (missing {sorted(need - got)})")


async def store(conn: asyncpg.Connection, orders: list[OrderIn], source: str) -> dict[str, int]:
    """Insert new orders, update the status of known ones; all or nothing."""
    known = {r["id"] for r in await conn.fetch("SELECT id FROM agents")}
    for o in orders:
        if o.agent not in known:
            raise OrderImportError(f"order {o.external_id}: unknown agent {o.agent!r}")
    inserted = updated = 0
    async with conn.transaction():
        for o in sorted(orders, key=lambda o: (o.created_at, o.external_id)):
            cust = await conn.fetchval(
                """INSERT INTO customers (number) VALUES ($1)
                   ON CONFLICT (number) DO UPDATE SET number = EXCLUDED.number RETURNING id""",
                o.number,
            )
            ref = o.duplicate_of or o.parent
            ref_id = owner = None
            if ref:
                r = await conn.fetchrow("SELECT id, owner_agent FROM orders WHERE external_id = $1", ref)
                if r is None:
                    raise OrderImportError(f"order {o.external_id}: refers to unknown order {ref!r}")
                ref_id, owner = r["id"], r["owner_agent"]
            owner = owner or o.agent  # R-FIRST-OWNER: the original's owner, else who entered it
            got = await conn.fetchrow(
                """INSERT INTO orders (customer_id, owner_agent, status, parent_order_id, duplicate_of,
                                       product,
                                       created_at, updated_at, external_id, entered_by, source)
                   VALUES ($1,$2,$3,$4,$5,$6,$7,$7,$8,$9,$10)
                   ON CONFLICT (external_id) DO UPDATE SET status = EXCLUDED.status, updated_at = now()
                   RETURNING (xmax = 0) AS inserted""",
                cust,
                owner,
                o.status,
                ref_id if o.parent else None,
                ref_id if o.duplicate_of else None,
                o.product,
                o.created_at,
                o.external_id,
                o.agent,
                source,
            )
            if got["inserted"]:
                inserted += 1
            else:
                updated += 1
    return {"inserted": inserted, "updated": updated}

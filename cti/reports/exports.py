"""Downloads: CSV in UTF-8 with a BOM (Excel on a Chinese Windows reads it as UTF-8, not GBK) and
XLSX written by openpyxl's write-only mode (rows go to disk as they come: memory stays flat for a
100k-row log). Numbers are masked unless the viewer may see them; every download is logged."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

import asyncpg

from cti.masking import mask_number

BOM = "\ufeff"
CALL_LOG_COLUMNS = (
    "开始时间 started",
    "主叫 caller",
    "被叫 DID",
    "队列 queue",
    "坐席 agent",
    "结果 outcome",
    "等待 wait_s",
    "通话 talk_s",
    "先挂机 hung_up_first",
)


def csv_chunks(
    header: Sequence[str], rows: Iterable[Sequence[Any]], every: int = 1000, *, bom: bool = True
) -> Iterable[str]:
    """CSV text in chunks; the BOM and header only at the start of a file (a streamed download writes
    later batches with bom=False and no header)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    if bom:
        buf.write(BOM)
    if header:
        w.writerow(header)
    for i, r in enumerate(rows, 1):
        w.writerow(r)
        if i % every == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def write_xlsx(
    path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]], title: str = "report"
) -> int:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title[:31])
    ws.append(list(header))
    n = 0
    for r in rows:
        ws.append(list(r))
        n += 1
    wb.save(path)
    return n


async def write_xlsx_stream(
    path: Path,
    header: Sequence[str],
    rows: AsyncIterator[list[Any]],
    title: str = "report",
    batch: int = 5000,
) -> int:
    """XLSX from an async row source: batches are appended in a worker thread (openpyxl is CPU-bound
    and would stall the event loop) and written-only, so memory holds one batch, not the file."""
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title[:31])
    ws.append(list(header))
    n, buf = 0, []

    def append(rows_: list[list[Any]]) -> None:
        for r in rows_:
            ws.append(r)

    async for r in rows:
        buf.append(r)
        if len(buf) >= batch:
            await asyncio.to_thread(append, buf)
            n, buf = n + len(buf), []
    await asyncio.to_thread(append, buf)
    n += len(buf)
    await asyncio.to_thread(wb.save, path)
    return n


async def call_log_rows(
    conn: asyncpg.Connection,
    since: datetime,
    until: datetime,
    tz: tzinfo,
    full_numbers: bool,
    batch: int = 5000,
) -> AsyncIterator[list[Any]]:
    """The call log (seed 000 §18), streamed from a cursor; masked unless `full_numbers`."""
    async with conn.transaction():
        cur = conn.cursor(
            """SELECT started_at, caller_num, did, queue, answered_by, outcome, hold_s, talk_s, hung_up_first
               FROM call_facts WHERE started_at >= $1 AND started_at < $2 ORDER BY started_at, linkedid""",
            since,
            until,
            prefetch=batch,
        )
        async for r in cur:
            yield [
                r["started_at"].astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"),
                r["caller_num"] if full_numbers else mask_number(r["caller_num"]),
                r["did"] or "",
                r["queue"] or "",
                r["answered_by"] or "",
                r["outcome"],
                "" if r["hold_s"] is None else f"{r['hold_s']:.1f}",
                "" if r["talk_s"] is None else f"{r['talk_s']:.1f}",
                r["hung_up_first"] or "",
            ]


async def log_download(
    conn: asyncpg.Connection,
    at: datetime,
    username: str,
    role: str,
    report: str,
    full_numbers: bool,
    rows: int,
) -> None:
    await conn.execute(
        """INSERT INTO report_downloads (at, username, role, report, full_numbers, rows)
           VALUES ($1,$2,$3,$4,$5,$6)""",
        at,
        username,
        role,
        report,
        full_numbers,
        rows,
    )

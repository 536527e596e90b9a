"""Orders and roster through the CLI (CSV and XLSX), bad input refused whole with a line number, and
the call-log downloads: CSV with a UTF-8 BOM, XLSX, numbers masked."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
from click.testing import CliRunner, Result
from openpyxl import Workbook, load_workbook

from cti.cli import main

TZ = ZoneInfo("Asia/Shanghai")


async def invoke(db_url: str, *args: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, main, list(args), env={"CTI_DATABASE_URL": db_url})


async def agents(db: asyncpg.Connection) -> None:
    await db.execute(
        """INSERT INTO agents (id, name, interface, role) VALUES ('sup1', 's', 'PJSIP/sup1', 'supervisor'),
           ('agent1', 'a', 'PJSIP/agent1', 'agent'), ('agent2', 'b', 'PJSIP/agent2', 'agent')"""
    )


async def test_orders_csv_and_xlsx_import_credit_the_first_owner(
    db_url: str, db: asyncpg.Connection, tmp_path: Path
) -> None:
    await agents(db)
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "external_id,number,agent,created_at\nx1,13900000001,agent1,2026-11-16T09:00\nx2,1390abc,agent1,2026-11-16T09:05\n",
        encoding="utf-8",
    )
    r = await invoke(db_url, "orders", "import", str(bad))
    assert (
        r.exit_code == 2
        and "line 3: number is not a phone number" in r.output
        and "Traceback" not in r.output
    )
    assert await db.fetchval("SELECT count(*) FROM orders") == 0  # nothing from a refused file

    good = tmp_path / "orders.csv"
    good.write_text(
        "\ufeffexternal_id,number,agent,created_at,status,duplicate_of,parent\n"
        "x1,13900000001,agent1,2026-11-16T09:00,new,,\n"
        "x2,13900000001,agent2,2026-11-16T09:30,new,x1,\n",
        encoding="utf-8",
    )
    r = await invoke(db_url, "orders", "import", str(good))
    assert r.exit_code == 0 and "2 new, 0 updated" in r.output, r.output
    wb = Workbook()
    ws = wb.active
    ws.append(["external_id", "number", "agent", "created_at", "status", "parent"])
    ws.append(["x3", "13900000001", "agent2", datetime(2026, 11, 16, 10, 0), "new", "x1"])  # add-on to x1
    ws.append(
        ["x1", "13900000001", "agent1", datetime(2026, 11, 16, 9, 0), "cancelled", None]
    )  # status update
    wb.save(tmp_path / "more.xlsx")
    r = await invoke(db_url, "orders", "import", str(tmp_path / "more.xlsx"))
    assert r.exit_code == 0 and "1 new, 1 updated" in r.output, r.output
    rows = await db.fetch(
        "SELECT external_id, owner_agent, entered_by, status, created_at FROM orders ORDER BY 1"
    )
    assert [tuple(r)[:4] for r in rows] == [
        ("x1", "agent1", "agent1", "cancelled"),
        ("x2", "agent1", "agent2", "new"),  # duplicate: the first entry's owner
        ("x3", "agent1", "agent2", "new"),  # add-on: the original order's owner
    ]
    assert rows[2]["created_at"] == datetime(2026, 11, 16, 10, 0, tzinfo=TZ)  # naive = site-local


async def test_roster_import_refuses_unknown_agents_and_shifts(
    db_url: str, db: asyncpg.Connection, tmp_path: Path
) -> None:
    await agents(db)
    f = tmp_path / "roster.csv"
    f.write_text(
        "day,shift,group,supervisor,agents\n2026-11-16,morning,default,sup1,agent1 agent9\n", encoding="utf-8"
    )
    r = await invoke(db_url, "roster", "import", str(f))
    assert r.exit_code == 2 and "unknown agent(s) agent9" in r.output
    f.write_text(
        "day,shift,group,supervisor,agents\n2026-11-16,night,default,sup1,agent1\n", encoding="utf-8"
    )
    r = await invoke(db_url, "roster", "import", str(f))
    assert r.exit_code == 2 and "shift 'night' is not one of" in r.output
    f.write_text(
        "day,shift,group,supervisor,agents\n2026-11-16,morning,default,sup1,agent1;agent2\n", encoding="utf-8"
    )
    assert (await invoke(db_url, "roster", "import", str(f))).exit_code == 0
    r = await invoke(db_url, "roster", "show", "2026-11-16")
    assert "2026-11-16 morning  default    supervisor=sup1 agents=agent1 agent2" in r.output


async def test_call_log_csv_has_a_bom_and_masked_numbers_and_xlsx_matches(
    db_url: str, db: asyncpg.Connection, tmp_path: Path
) -> None:
    await db.execute(
        """INSERT INTO call_facts (linkedid, started_at, did, caller_num, caller_masked, queue, outcome,
                                   answered_by, hold_s, talk_s, hung_up_first)
           VALUES ('1.1', '2026-11-16T01:00:00Z', '4008001234', '13812345678', '138****5678', 'sales',
                   'answered', 'agent1', 2.0, 60.0, 'caller')"""
    )
    r = await invoke(db_url, "reports", "call-log", "2026-11-16", str(tmp_path / "log.csv"))
    assert r.exit_code == 0, r.output
    raw = (tmp_path / "log.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    text = raw.decode("utf-8-sig")
    assert "2026-11-16 09:00:00,138****5678,4008001234,sales,agent1,answered,2.0,60.0,caller" in text
    assert "13812345678" not in text
    r = await invoke(db_url, "reports", "call-log", "2026-11-16", str(tmp_path / "log.xlsx"))
    assert r.exit_code == 0, r.output
    ws = load_workbook(tmp_path / "log.xlsx", read_only=True).worksheets[0]
    rows = list(ws.iter_rows(values_only=True))
    assert rows[1][:3] == ("2026-11-16 09:00:00", "138****5678", "4008001234")
    r = await invoke(db_url, "reports", "call-log", "16/11/2026", str(tmp_path / "x.csv"))
    assert r.exit_code == 2 and "is not a date" in r.output

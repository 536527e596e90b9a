"""The outbound CLI as a supervisor uses it: create a campaign, import a list (bad rows named with
their row number, exit 2 and one line for a bad file), DNC add/check, funnel, compliance audit."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from cti.cli import main
from cti.outbound import outcomes
from cti.outbound.eligibility import rule_set_id, try_claim
from tests.outbound.conftest import rules_for


async def test_supervisor_flow(db_url, db, tmp_path: Path):
    runner = CliRunner()
    env = {"CTI_DATABASE_URL": db_url, "CTI_TIMEZONE": "Asia/Shanghai"}

    def cli(*args: str):
        return runner.invoke(main, list(args), env=env, catch_exceptions=False)

    r = await asyncio.to_thread(
        cli,
        "campaigns",
        "create",
        "--name",
        "宽带夏季",
        "--product",
        "broadband",
        "--queue",
        "sales",
        "--did",
        "4008001234",
        "--mode",
        "progressive",
        "--window",
        "default=00:00-23:59",
        "--window",
        "boss=10:00-11:30",
    )
    assert r.exit_code == 0, r.output
    r = await asyncio.to_thread(
        cli,
        "campaigns",
        "create",
        "--name",
        "x",
        "--product",
        "p",
        "--queue",
        "q",
        "--did",
        "400",
        "--mode",
        "progressive",
        "--window",
        "boss=11:30-10:00",
    )
    assert r.exit_code == 2 and "end must be after the start" in r.output
    f = tmp_path / "名单.csv"
    f.write_bytes("姓名,手机号码\n张三,13812345678\n李四,12345\n王五,13900001111\n".encode("gbk"))
    r = await asyncio.to_thread(
        cli, "contacts", "import", str(f), "--list", "spring", "--errors", str(tmp_path / "bad.csv")
    )
    assert r.exit_code == 0, r.output
    assert "3 rows: 2 added to spring" in r.output and "row 3:" in r.output
    bad_lines = (tmp_path / "bad.csv").read_text(encoding="utf-8-sig").splitlines()
    assert bad_lines[1].startswith("3,") and "12345" not in bad_lines[1]
    nonum = tmp_path / "nonum.csv"
    nonum.write_text("姓名\n张三\n", encoding="utf-8")
    r = await asyncio.to_thread(cli, "contacts", "import", str(nonum), "--list", "spring")
    assert r.exit_code == 2 and "no phone number column" in r.output and "Traceback" not in r.output
    r = await asyncio.to_thread(cli, "campaigns", "attach", "1", "--list", "spring")
    assert "2 contacts added to campaign 1" in r.output
    r = await asyncio.to_thread(cli, "campaigns", "start", "1")
    assert r.exit_code == 0
    r = await asyncio.to_thread(cli, "dnc", "add", "139 0000 1111", "--category", "complaint")
    assert "139****1111 added to the complaint list" in r.output and "13900001111" not in r.output
    r = await asyncio.to_thread(cli, "dnc", "check", "13900001111")
    assert "complaint" in r.output
    r = await asyncio.to_thread(cli, "dnc", "add", "not-a-number", "--category", "complaint")
    assert r.exit_code == 2

    # one dial through the claim, then a rule-breaking one written straight into the log
    rules = rules_for()
    rs = await rule_set_id(db, rules)
    now = datetime.now(UTC)
    zhang = await db.fetchval("SELECT id FROM contacts WHERE number = '+8613812345678'")
    c = await try_claim(
        db, campaign_id=1, contact_id=zhang, now=now, rules=rules, rule_set=rs, process="t", agent="agent1"
    )
    assert c is not None
    await outcomes.record_end(
        db,
        c.dial_id,
        "answered",
        now + timedelta(seconds=90),
        connected_at=now + timedelta(seconds=5),
        talk_s=85,
    )
    await outcomes.record_disposition(db, c.dial_id, "sale", now, by="agent1")
    since = (now - timedelta(hours=1)).isoformat()
    r = await asyncio.to_thread(cli, "compliance", "audit", "--since", since)
    assert r.exit_code == 0 and "0 violation(s)" in r.output
    wang = await db.fetchval("SELECT id FROM contacts WHERE number = '+8613900001111'")
    await db.execute(
        """INSERT INTO dials (campaign_id, contact_id, number, product, segment, did, rule_set_id, claimed_by,
                              channel_id, dialed_at, ended_at)
           VALUES (1, $1, '+8613900001111', 'broadband', 'default', '4008001234', $2, 'buggy', 'raw-1',
                   $3, $3)""",
        wang,
        rs,
        now + timedelta(seconds=1),
    )
    r = await asyncio.to_thread(cli, "compliance", "audit", "--since", since, "--json")
    assert r.exit_code == 1
    out = json.loads(r.output)
    assert [(v["rule"], v["number"]) for v in out["violations"]] == [("R-DNC", "+86139****1111")]
    r = await asyncio.to_thread(cli, "compliance", "audit", "--since", "yesterday")
    assert r.exit_code == 2 and "is not a date" in r.output

    r = await asyncio.to_thread(cli, "campaigns", "funnel", "--since", since, "--format", "json")
    [row] = json.loads(r.output)
    assert row["group"] == "宽带夏季" and row["dials"] == 2 and row["connects"] == 1 and row["orders"] == 1
    assert row["connect_rate"] == 0.5 and row["success_rate"] == 1.0 and row["seats"] == 1
    r = await asyncio.to_thread(
        cli, "campaigns", "funnel", "--since", since, "--by", "agent", "--format", "csv"
    )
    assert r.output.splitlines()[0].startswith("分组,座席数,座席平均外呼量,外呼量,接通率")
    events = await db.fetchval("SELECT count(*) FROM events WHERE type LIKE 'Campaign%'")
    assert events == 2  # created, started


async def test_dnc_import_file_adds_good_numbers_and_names_bad_rows(db_url, db, tmp_path: Path):
    runner = CliRunner()
    env = {"CTI_DATABASE_URL": db_url}
    f = tmp_path / "公用电话.csv"
    f.write_bytes("电话\n010-62345678\n13812345678\n垃圾\n13812345678\n".encode("gbk"))
    r = await asyncio.to_thread(
        runner.invoke,
        main,
        ["dnc", "import", str(f), "--category", "public_phone"],
        env=env,
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    assert "2 numbers added to the public_phone list, 1 bad rows" in r.output and "row 4:" in r.output
    rows = await db.fetch("SELECT number FROM dnc WHERE category = 'public_phone' ORDER BY 1")
    assert [x["number"] for x in rows] == ["+861062345678", "+8613812345678"]

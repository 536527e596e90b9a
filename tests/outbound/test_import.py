"""Contact-list import: the encodings Chinese Excel writes, XLSX, column mapping, bad rows reported
with their row number, nothing imported twice, bad files refused with one clear line."""

from __future__ import annotations

import random
import re
from pathlib import Path

import openpyxl
import pytest

from cti.outbound.imports import ImportFileError, import_file, parse_mapping

ROWS = "姓名,手机号码,客户类型\n张三,13812345678,boss\n李四,010-62345678,\n王五,+86 139 0000 1111,worker\n"


async def _members(db) -> list[str]:
    rows = await db.fetch(
        "SELECT c.number FROM list_members m JOIN contacts c ON c.id = m.contact_id ORDER BY 1"
    )
    return [r["number"] for r in rows]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
async def test_csv_in_each_encoding_imports_the_same_contacts(db, tmp_path: Path, encoding: str):
    f = tmp_path / "list.csv"
    f.write_bytes(ROWS.encode(encoding))
    rep = await import_file(db, f, list_name="spring", by="sup1")
    assert (rep.rows_total, rep.rows_added, rep.bad_count) == (3, 3, 0)
    assert await _members(db) == ["+861062345678", "+8613812345678", "+8613900001111"]
    names = {r["name"] for r in await db.fetch("SELECT name FROM contacts")}
    assert names == {"张三", "李四", "王五"}
    seg = await db.fetchval("SELECT segment FROM contacts WHERE number = '+8613812345678'")
    assert seg == "boss"


async def test_same_file_twice_and_overlapping_file_add_nothing_twice(db, tmp_path: Path):
    f = tmp_path / "a.csv"
    f.write_text(ROWS, encoding="utf-8")
    await import_file(db, f, list_name="spring", by="sup1")
    again = await import_file(db, f, list_name="spring", by="sup1")
    assert again.already_imported_at is not None and again.rows_added == 0
    g = tmp_path / "b.csv"
    g.write_text("手机号码\n13812345678\n13812345678\n13700001111\n", encoding="utf-8")
    rep = await import_file(db, g, list_name="spring", by="sup1")
    assert (rep.rows_added, rep.rows_duplicate) == (1, 2)
    assert await db.fetchval("SELECT count(*) FROM contacts") == 4
    assert await db.fetchval("SELECT count(*) FROM list_members") == 4


async def test_gbk_file_read_as_utf8_is_refused_with_the_line(db, tmp_path: Path):
    f = tmp_path / "gbk.csv"
    f.write_bytes(ROWS.encode("gbk"))
    with pytest.raises(ImportFileError, match="not valid utf-8"):
        await import_file(db, f, list_name="x", by="sup1", encoding="utf-8")


async def test_utf16_file_is_refused_naming_the_encodings(db, tmp_path: Path):
    f = tmp_path / "u16.csv"
    f.write_bytes(ROWS.encode("utf-16"))
    with pytest.raises(ImportFileError, match="neither UTF-8 nor GBK"):
        await import_file(db, f, list_name="x", by="sup1")
    assert await db.fetchval("SELECT count(*) FROM contacts") == 0


async def test_missing_number_column_is_refused_before_anything_is_written(db, tmp_path: Path):
    f = tmp_path / "nonum.csv"
    f.write_text("姓名,地址\n张三,北京\n", encoding="utf-8")
    with pytest.raises(ImportFileError, match="no phone number column"):
        await import_file(db, f, list_name="x", by="sup1")
    with pytest.raises(ImportFileError, match=r"'电话' .* is not in the header"):
        await import_file(db, f, list_name="x", by="sup1", mapping=parse_mapping("number=电话"))
    assert await db.fetchval("SELECT count(*) FROM contact_lists") == 0


async def test_column_mapping_names_an_unusual_header(db, tmp_path: Path):
    f = tmp_path / "m.csv"
    f.write_text("客户,联络方式\n张三,13812345678\n", encoding="utf-8")
    rep = await import_file(
        db, f, list_name="x", by="sup1", mapping=parse_mapping("number=联络方式,name=客户")
    )
    assert rep.rows_added == 1
    assert await db.fetchval("SELECT name FROM contacts") == "张三"


async def test_ten_thousand_garbage_rows_are_reported_and_the_good_rows_kept(db, tmp_path: Path):
    rnd = random.Random(7)
    lines = ["手机号码,姓名"]
    good_rows = {}
    for i in range(10_000):
        kind = i % 5
        if kind == 0:
            lines.append(f"{rnd.randint(10**4, 10**6)},x")  # too short for any number
        elif kind == 1:
            lines.append("'; DROP TABLE contacts; --,y")
        elif kind == 2:
            lines.append(",empty")
        elif kind == 3:
            lines.append(f"12{rnd.randint(10**8, 10**9 - 1)},bad-prefix")
        else:
            n = f"139{i:08d}"
            lines.append(f"{n},ok")
            good_rows[len(lines)] = n
    f = tmp_path / "garbage.csv"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rep = await import_file(db, f, list_name="x", by="sup1", batch_rows=997)
    assert rep.rows_added == len(good_rows) == 2000
    assert rep.bad_count == 8000
    stored = await db.fetch("SELECT row_no, reason FROM contact_import_errors ORDER BY row_no")
    assert len(stored) == 8000
    assert stored[0]["row_no"] == 2 and "not a valid number" in stored[0]["reason"]
    assert stored[2]["row_no"] == 4 and "no number" in stored[2]["reason"]
    assert not set(good_rows) & {r["row_no"] for r in stored}
    # raw numbers never appear in the reasons (R-MASK)
    assert not [r["reason"] for r in stored if re.search(r"\d{5}", r["reason"])]


async def test_xlsx_numbers_stored_as_floats_import_and_formulas_are_reported(db, tmp_path: Path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["姓名", "手机号码"])
    ws.append(["张三", 13812345678])  # Excel keeps it as a number
    ws.append(["李四", "=A1+1"])  # a formula, not a number
    ws.append(["王五", "0755-86013388"])
    f = tmp_path / "list.xlsx"
    wb.save(f)
    rep = await import_file(db, f, list_name="x", by="sup1")
    assert rep.rows_added == 2
    assert [(b.row_no, b.reason) for b in rep.bad] == [(3, "cell B3 is a formula (=A1+1), not a value")]
    assert await _members(db) == ["+8613812345678", "+8675586013388"]


async def test_not_an_xlsx_is_refused(db, tmp_path: Path):
    f = tmp_path / "fake.xlsx"
    f.write_text("hello", encoding="utf-8")
    with pytest.raises(ImportFileError, match="not a readable XLSX"):
        await import_file(db, f, list_name="x", by="sup1")

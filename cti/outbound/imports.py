"""Contact-list import (CSV in UTF-8 / UTF-8 with BOM / GBK, and XLSX), streamed: rows are read one
at a time and written in batches through COPY into a staging table, so a 1M-row file imports with
bounded memory. A bad row is reported with its row number and reason and skipped; good rows are
kept; a number already in the list (from this file or an earlier one) is not added again, and the
same file imported into the same list twice adds nothing."""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from cti.routing.numbers import NotAPhoneNumber, normalise_dialable

BATCH_ROWS = 10_000
MAX_REPORTED_ERRORS = 100_000  # stored per import; beyond this only counted

# header aliases Chinese and English sheets use, by target field
ALIASES: dict[str, tuple[str, ...]] = {
    "number": (
        "号码",
        "电话",
        "手机",
        "手机号",
        "手机号码",
        "电话号码",
        "联系电话",
        "phone",
        "number",
        "mobile",
        "tel",
    ),
    "name": ("姓名", "名字", "客户名称", "客户姓名", "name"),
    "segment": ("客户类型", "类型", "客户属性", "segment", "type"),
}
FIELDS = tuple(ALIASES)


class ImportFileError(Exception):
    """The file as a whole cannot be imported (encoding, missing column, unreadable): one line."""


@dataclass(frozen=True)
class BadRow:
    row_no: int
    reason: str


@dataclass
class ImportReport:
    file_name: str
    list_name: str
    rows_total: int = 0
    rows_added: int = 0
    rows_duplicate: int = 0
    bad: list[BadRow] = field(default_factory=list)
    bad_count: int = 0
    already_imported_at: str | None = None
    import_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file_name,
            "list": self.list_name,
            "rows_total": self.rows_total,
            "rows_added": self.rows_added,
            "rows_duplicate": self.rows_duplicate,
            "rows_bad": self.bad_count,
            "already_imported_at": self.already_imported_at,
        }


def parse_mapping(spec: str | None) -> dict[str, str]:
    """`number=手机号码,name=姓名` -> {"number": "手机号码", "name": "姓名"}."""
    out: dict[str, str] = {}
    for part in (spec or "").split(","):
        if not part.strip():
            continue
        key, sep, header = part.partition("=")
        key = key.strip()
        if not sep or key not in FIELDS or not header.strip():
            raise ImportFileError(
                f"bad column mapping {part.strip()!r}: use field=header, fields: {', '.join(FIELDS)}"
            )
        out[key] = header.strip()
    return out


def resolve_columns(headers: list[str], mapping: Mapping[str, str]) -> dict[str, int]:
    norm = [h.strip().lower() for h in headers]
    cols: dict[str, int] = {}
    for f in FIELDS:
        wanted = [mapping[f]] if f in mapping else list(ALIASES[f])
        for w in wanted:
            if w.strip().lower() in norm:
                cols[f] = norm.index(w.strip().lower())
                break
        else:
            if f in mapping:
                raise ImportFileError(
                    f"column {mapping[f]!r} (mapped to {f}) is not in the header: {', '.join(headers)}"
                )
    if "number" not in cols:
        raise ImportFileError(
            f"no phone number column in the header ({', '.join(h for h in headers if h) or 'empty'}); "
            "name it with --map number=<header>"
        )
    return cols


def detect_encoding(path: Path, sample_bytes: int = 1 << 20) -> str:
    with path.open("rb") as f:
        head = f.read(sample_bytes)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    for enc in ("utf-8", "gb18030"):
        try:
            # a multi-byte character may be cut at the end of the sample: decode incrementally
            codecs.getincrementaldecoder(enc)().decode(head, final=False)
            return enc
        except UnicodeDecodeError:
            continue
    raise ImportFileError(f"{path.name}: neither UTF-8 nor GBK; save it as CSV UTF-8 or pass --encoding")


# A row as the reader yields it: (row number as the user sees it, cells as text or a BadRow reason)
Row = tuple[int, list[str] | str]


def _csv_rows(
    path: Path, encoding: str, progress: Callable[[int], None] | None
) -> tuple[list[str], Iterator[Row]]:
    raw = path.open("rb")
    text = io.TextIOWrapper(raw, encoding=encoding, errors="strict", newline="")
    reader = csv.reader(text)
    try:
        headers = next(reader)
    except StopIteration:
        raw.close()
        raise ImportFileError(f"{path.name} is empty") from None
    except UnicodeDecodeError:
        raw.close()
        raise ImportFileError(
            f"{path.name}: header is not valid {encoding}; pass the right --encoding"
        ) from None

    def rows() -> Iterator[Row]:
        last = 0
        try:
            while True:
                try:
                    cells = next(reader)
                except StopIteration:
                    return
                except UnicodeDecodeError:
                    raise ImportFileError(
                        f"{path.name}: line {reader.line_num + 1} is not valid {encoding}; rows before it "
                        "were imported, nothing after it; pass the right --encoding"
                    ) from None
                except csv.Error as e:
                    yield reader.line_num, f"unreadable CSV line ({e})"
                    continue
                if progress is not None and reader.line_num % 2000 == 0:
                    pos = raw.tell()
                    progress(pos - last)
                    last = pos
                yield reader.line_num, cells
        finally:
            if progress is not None:
                progress(max(0, path.stat().st_size - last))
            raw.close()

    return headers, rows()


def _xlsx_rows(path: Path, progress: Callable[[int], None] | None) -> tuple[list[str], Iterator[Row], int]:
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        # read_only streams the sheet; data_only=False so a formula stays a formula (reported, not used)
        wb = openpyxl.load_workbook(path, read_only=True, data_only=False)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError) as e:
        raise ImportFileError(f"{path.name} is not a readable XLSX workbook ({e})") from None
    ws = wb.worksheets[0]
    it = ws.iter_rows()
    try:
        header_cells = next(it)
    except StopIteration:
        wb.close()
        raise ImportFileError(f"{path.name}: the first sheet is empty") from None
    headers = ["" if c.value is None else str(c.value) for c in header_cells]
    total = max(0, (ws.max_row or 1) - 1)

    def rows() -> Iterator[Row]:
        try:
            for i, cells in enumerate(it, start=2):
                out: list[str] = []
                bad = None
                for c in cells:
                    v = c.value
                    if c.data_type == "f" or (isinstance(v, str) and v.startswith("=")):
                        bad = f"cell {c.coordinate} is a formula ({str(v)[:40]}), not a value"
                    if v is None:
                        out.append("")
                    elif isinstance(v, float) and v.is_integer():
                        out.append(str(int(v)))  # Excel stores 13812345678 as a float
                    else:
                        out.append(str(v))
                if progress is not None:
                    progress(1)
                yield i, (bad if bad is not None else out)
        finally:
            wb.close()

    return headers, rows(), total


@dataclass(frozen=True)
class Parsed:
    row_no: int
    number: str
    name: str | None
    segment: str


def parse_rows(
    headers: list[str], rows: Iterator[Row], mapping: Mapping[str, str]
) -> Iterator[Parsed | BadRow]:
    """Checks the columns now (before anything is written), then parses lazily."""
    cols = resolve_columns(headers, mapping)
    return _parse(headers, rows, cols)


def _parse(headers: list[str], rows: Iterator[Row], cols: dict[str, int]) -> Iterator[Parsed | BadRow]:
    n_i, name_i, seg_i = cols["number"], cols.get("name"), cols.get("segment")
    for row_no, cells in rows:
        if isinstance(cells, str):
            yield BadRow(row_no, cells)
            continue
        if not any(c.strip() for c in cells):
            continue  # blank line: not a row
        if n_i >= len(cells) or not cells[n_i].strip():
            yield BadRow(row_no, f"no number in column {headers[n_i]!r}")
            continue
        try:
            number = normalise_dialable(cells[n_i])
        except NotAPhoneNumber as e:
            yield BadRow(row_no, str(e))
            continue
        name = cells[name_i].strip() if name_i is not None and name_i < len(cells) else None
        seg = cells[seg_i].strip() if seg_i is not None and seg_i < len(cells) else ""
        yield Parsed(row_no, number, name or None, seg or "default")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def open_rows(
    path: Path, encoding: str | None, progress: Callable[[int], None] | None = None
) -> tuple[list[str], Iterator[Row], int]:
    """(headers, rows, progress length): bytes for CSV, rows for XLSX."""
    if not path.is_file():
        raise ImportFileError(f"{path} does not exist")
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return _xlsx_rows(path, progress)
    if suffix in (".csv", ".txt"):
        enc = encoding or detect_encoding(path)
        try:
            codecs.lookup(enc)
        except LookupError:
            raise ImportFileError(f"unknown encoding {enc!r}") from None
        headers, rows = _csv_rows(path, enc, progress)
        return headers, rows, path.stat().st_size
    raise ImportFileError(f"{path.name}: only .csv and .xlsx files can be imported")


_STAGE = """CREATE TEMP TABLE IF NOT EXISTS contact_stage (
    row_no integer, number text, name text, segment text) ON COMMIT DELETE ROWS"""


async def import_file(
    conn: asyncpg.Connection,
    path: Path,
    *,
    list_name: str,
    by: str,
    mapping: Mapping[str, str] | None = None,
    encoding: str | None = None,
    progress: Callable[[int], None] | None = None,
    batch_rows: int = BATCH_ROWS,
) -> ImportReport:
    report = ImportReport(path.name, list_name)
    headers, rows, _ = open_rows(path, encoding, progress)
    parsed = parse_rows(headers, rows, mapping or {})  # checks the columns before anything is written
    sha = file_sha256(path)
    list_id = await conn.fetchval(
        """INSERT INTO contact_lists (name, created_by) VALUES ($1, $2)
           ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id""",
        list_name,
        by,
    )
    prior = await conn.fetchval(
        "SELECT imported_at FROM contact_imports WHERE list_id = $1 AND sha256 = $2 AND complete",
        list_id,
        sha,
    )
    if prior is not None:
        report.already_imported_at = prior.isoformat()
        for _ in rows:  # let the progress bar finish and the file close
            pass
        return report
    import_id = await conn.fetchval(
        """INSERT INTO contact_imports (list_id, file_name, sha256, imported_by)
           VALUES ($1, $2, $3, $4) RETURNING id""",
        list_id,
        path.name,
        sha,
        by,
    )
    report.import_id = import_id
    await conn.execute(_STAGE)
    batch: list[tuple[int, str, str | None, str]] = []
    errors: list[tuple[int, int, str]] = []

    async def flush() -> None:
        async with conn.transaction():
            if batch:
                await conn.copy_records_to_table("contact_stage", records=batch)
                await conn.execute(
                    """INSERT INTO contacts (number, name, segment)
                       SELECT DISTINCT ON (number) number, name, segment FROM contact_stage
                       ORDER BY number, row_no
                       ON CONFLICT (number) DO NOTHING"""
                )
                added = await conn.fetchval(
                    """WITH ins AS (
                         INSERT INTO list_members (list_id, contact_id)
                         SELECT DISTINCT $1::bigint, c.id FROM contact_stage s JOIN contacts c USING (number)
                         ON CONFLICT DO NOTHING RETURNING 1)
                       SELECT count(*) FROM ins""",
                    list_id,
                )
                report.rows_added += added
                report.rows_duplicate += len(batch) - added
            if errors:
                await conn.copy_records_to_table(
                    "contact_import_errors", records=errors, columns=["import_id", "row_no", "reason"]
                )
            await conn.execute(
                "UPDATE contact_imports SET rows_total = $2, rows_added = $3, rows_bad = $4 WHERE id = $1",
                import_id,
                report.rows_total,
                report.rows_added,
                report.bad_count,
            )
        batch.clear()
        errors.clear()

    try:
        for item in parsed:
            report.rows_total += 1
            if isinstance(item, BadRow):
                report.bad_count += 1
                if len(report.bad) < 1000:
                    report.bad.append(item)
                if report.bad_count <= MAX_REPORTED_ERRORS:
                    errors.append((import_id, item.row_no, item.reason))
            else:
                batch.append((item.row_no, item.number, item.name, item.segment))
            if len(batch) >= batch_rows or len(errors) >= batch_rows:
                await flush()
    finally:
        await flush()  # rows read before a mid-file error are kept
    await conn.execute("UPDATE contact_imports SET complete = true WHERE id = $1", import_id)
    return report

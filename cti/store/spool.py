"""On-disk spool for events that could not reach PostgreSQL.

One file per segment, written as `<name>.tmp`, fsynced, then renamed (and the directory fsynced), so
a segment is either wholly there or not there at all. Segment names sort in write order
(`<time_ns>-<pid>-<n>.jsonl`); other processes (the degraded-mode AGI script) may add segments with
`write_segment()` and the store drains them in name order. A segment is deleted only after its
rows are committed; replaying a segment twice is harmless because event rows are idempotent.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

SUFFIX = ".jsonl"
_counter = itertools.count()

# Field order of a spooled row; also the order of columns the store writes.
FIELDS = ("ts", "key", "source", "type", "uniqueid", "linkedid", "agent", "queue", "payload")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def encode_row(row: tuple[Any, ...]) -> str:
    d = dict(zip(FIELDS, row, strict=True))
    d["ts"] = d["ts"].isoformat()
    # payload is already JSON (bytes from the store, text from other writers): keep it verbatim as text
    if isinstance(d["payload"], bytes):
        d["payload"] = d["payload"].decode()
    return json.dumps(d, ensure_ascii=False)


def decode_row(line: str) -> tuple[Any, ...]:
    d = json.loads(line)
    d["ts"] = datetime.fromisoformat(d["ts"])
    if not isinstance(d["payload"], str):  # written by a foreign writer with a JSON object
        d["payload"] = json.dumps(d["payload"], ensure_ascii=False)
    return tuple(d.get(f) for f in FIELDS)


def write_segment(directory: Path, rows: Iterable[tuple[Any, ...]]) -> Path:
    """Durably write one segment; return its path. Raises OSError if the disk refuses."""
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{time.time_ns():020d}-{os.getpid()}-{next(_counter):06d}{SUFFIX}"
    tmp = directory / (name + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(encode_row(row))
                f.write("\n")
            f.flush()
            os.fsync(f.fileno())
    except OSError:
        tmp.unlink(missing_ok=True)  # a half-written segment only takes the space the next one needs
        raise
    final = directory / name
    os.replace(tmp, final)
    _fsync_dir(directory)
    return final


class Spool:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def segments(self) -> list[Path]:
        return sorted(self.directory.glob("*" + SUFFIX))

    def has_segments(self) -> bool:
        return any(True for _ in self.directory.glob("*" + SUFFIX))

    def write(self, rows: list[tuple[Any, ...]]) -> Path:
        return write_segment(self.directory, rows)

    @staticmethod
    def read(path: Path) -> Iterator[tuple[Any, ...]]:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    yield decode_row(line)

    def remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        _fsync_dir(self.directory)

    def dead_letter(self, rows: list[tuple[Any, ...]], error: str) -> Path:
        """Rows PostgreSQL refused even after cleaning: kept on disk with the reason, never dropped."""
        dead = self.directory / "dead"
        path = write_segment(dead, rows)
        path.with_suffix(".error.txt").write_text(error, encoding="utf-8")
        return path

"""Database rows into the dataclasses the rest of the code reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, fields
from typing import Any, TypeVar

T = TypeVar("T")


def from_row(cls: type[T], row: Mapping[str, Any], **given: Any) -> T:
    """`cls` (a dataclass) with each field taken from the row's column of the same name, unless
    `given` names it. A field with a default may be missing from the row."""
    keys = set(row.keys())
    values: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name in given:
            values[f.name] = given[f.name]
        elif f.name in keys:
            values[f.name] = row[f.name]
        elif f.default is MISSING and f.default_factory is MISSING:
            raise KeyError(f"{cls.__name__}.{f.name}: no column {f.name!r} in the row")
    return cls(**values)

"""Changing the house figures (fines in 元, quotas, ring cadence, caps) from now on: what `cti policy`
and the managers' web page share.

The policy is the shipped (or site) file plus the `policy_values` overrides; a trigger keeps every
change in `policy_value_history`, so fines are priced by the figures of their own day (decision 0600).
A value is checked by loading the whole policy with it before it is stored: a bad one raises
`PolicyChangeError` naming the key and the reason, and nothing changes."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cti.config import ConfigError
from cti.policy import apply_overrides, load_policy, policy_raw


class PolicyChangeError(ValueError):
    """A change refused: the message names the key and why."""


@dataclass(frozen=True)
class Figure:
    key: str
    value: Any
    overridden_by: str | None  # who set the database override in force; None: the file's figure


def _lookup(raw: dict[str, Any], key: str) -> Any:
    node: Any = raw
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _flat(node: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """(dotted key, value) of every leaf; lists (e.g. [[shifts]]) are one value."""
    if isinstance(node, dict):
        return [kv for k, v in node.items() for kv in _flat(v, f"{prefix}.{k}" if prefix else k)]
    return [(prefix, node)]


def parse_value(text: str, current: Any) -> Any:
    """The stored JSON value for `text`: a string where the file has a string (money stays exact:
    "25.50", not 25.5), otherwise a TOML value (3, true, 0.15, ["sales"])."""
    if isinstance(current, str):
        return text
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text  # a bare word: the policy's own validation says whether it fits


async def _overrides(conn: Any) -> dict[str, tuple[Any, str]]:
    rows = await conn.fetch("SELECT key, value, updated_by FROM policy_values")
    return {r["key"]: (json.loads(r["value"]), r["updated_by"]) for r in rows}


async def figures(conn: Any, path: Path | None, prefix: str = "") -> list[Figure]:
    """Every figure in force (or those under `prefix`), in the file's order."""
    over = await _overrides(conn)
    raw = apply_overrides(policy_raw(path), {k: v for k, (v, _) in over.items()})
    return [
        Figure(k, v, over[k][1] if k in over else None)
        for k, v in _flat(raw)
        if not prefix or k == prefix or k.startswith(prefix + ".")
    ]


async def set_figure(conn: Any, path: Path | None, key: str, text: str, by: str) -> Any:
    """Store `key` = `text` from now on; returns the value stored."""
    if not by.strip():
        raise PolicyChangeError("who made the change must be named")
    over = {k: v for k, (v, _) in (await _overrides(conn)).items()}
    parsed = parse_value(text, _lookup(policy_raw(path), key))
    over[key] = parsed
    try:
        checked = load_policy(path, over)
    except ConfigError as e:
        raise PolicyChangeError(str(e)) from None
    if _lookup(checked.model_dump(mode="json"), key) is None:
        raise PolicyChangeError(f"{key} is not a policy figure")
    await conn.execute(
        """INSERT INTO policy_values (key, value, updated_by) VALUES ($1, $2::jsonb, $3)
           ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now(),
                                           updated_by = EXCLUDED.updated_by""",
        key,
        json.dumps(parsed, ensure_ascii=False),
        by,
    )
    return parsed


async def unset_figure(conn: Any, key: str, by: str) -> None:
    """Drop the override of `key`: the file's figure is in force again from now on."""
    async with conn.transaction():
        if await conn.execute("DELETE FROM policy_values WHERE key = $1", key) == "DELETE 0":
            raise PolicyChangeError(f"{key} has no override")
        # the trigger's history row names the last writer of the value: name the remover instead
        await conn.execute(
            """UPDATE policy_value_history SET changed_by = $2 WHERE id =
               (SELECT max(id) FROM policy_value_history WHERE key = $1 AND value IS NULL)""",
            key,
            by,
        )


async def history(conn: Any, key: str | None = None) -> list[dict[str, Any]]:
    """Every change (of `key`, or of all): when it took effect, the value (None: removed), by whom."""
    rows = await conn.fetch(
        """SELECT key, value, effective_from, changed_by FROM policy_value_history
           WHERE $1::text IS NULL OR key = $1 ORDER BY effective_from, id""",
        key,
    )
    return [
        {"key": r["key"], "value": None if r["value"] is None else json.loads(r["value"]),
         "effective_from": r["effective_from"], "changed_by": r["changed_by"]}
        for r in rows
    ]  # fmt: skip

"""`cti policy`: the house figures (ring cadence, fines in 元, quotas, caps) as a manager changes them.

The policy is the shipped (or site) file plus the `policy_values` overrides; a trigger keeps every
change in `policy_value_history`, so fines are priced by the figures of their own day (decision 0600).
A value is checked by loading the whole policy with it before it is stored: a bad one is refused with
the key and the reason, and nothing changes."""

from __future__ import annotations

import json
import tomllib
from typing import Any

import asyncpg
import click

from cti.commands.common import settings_from, with_conn
from cti.config import ConfigError
from cti.policy import load_policy, shipped_policy_text


def _file_raw(path: Any) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8") if path else shipped_policy_text()
    return tomllib.loads(text)


def _lookup(raw: dict[str, Any], key: str) -> Any:
    node: Any = raw
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def parse_value(text: str, current: Any) -> Any:
    """The stored JSON value for `text`: a string where the file has a string (money stays exact:
    "25.50", not 25.5), otherwise a TOML value (3, true, 0.15, ["sales"], "10:00")."""
    if isinstance(current, str):
        return text
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text  # a bare word: let the policy's own validation say whether it fits


def _flat(node: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """(dotted key, value) of every leaf; lists (e.g. [[shifts]]) are one value."""
    if isinstance(node, dict):
        return [kv for k, v in node.items() for kv in _flat(v, f"{prefix}.{k}" if prefix else k)]
    return [(prefix, node)]


@click.group()
def policy() -> None:
    """The house figures (ring cadence, fines in 元, quotas, caps): show, set, unset, history."""


@policy.command("show")
@click.argument("prefix", required=False, default="")
@click.pass_context
def show(ctx: click.Context, prefix: str) -> None:
    """Every figure in force (or those under PREFIX, e.g. `fines`), `*` marking a database override."""
    settings = settings_from(ctx)

    async def go(conn: asyncpg.Connection) -> list[tuple[str, Any, str | None]]:
        rows = await conn.fetch("SELECT key, value, updated_by FROM policy_values")
        over = {r["key"]: (json.loads(r["value"]), r["updated_by"]) for r in rows}
        raw = _file_raw(settings.policy_file)
        for k, (v, _) in over.items():
            node = raw
            *parents, leaf = k.split(".")
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = v
        return [(k, v, over[k][1] if k in over else None) for k, v in _flat(raw)]

    for key, value, by in with_conn(settings, go):
        if key == prefix or key.startswith(prefix + ".") or not prefix:
            mark = f"  * {by}" if by is not None else ""
            click.echo(f"{key} = {json.dumps(value, ensure_ascii=False, default=str)}{mark}")


@policy.command("set")
@click.argument("key")
@click.argument("value")
@click.option("--by", required=True, help="Who decided the change (kept in the history).")
@click.pass_context
def set_(ctx: click.Context, key: str, value: str, by: str) -> None:
    """Set KEY (dotted, e.g. fines.agent_hung_up_first.agent) to VALUE from now on."""
    settings = settings_from(ctx)

    async def go(conn: asyncpg.Connection) -> Any:
        rows = await conn.fetch("SELECT key, value FROM policy_values")
        over = {r["key"]: json.loads(r["value"]) for r in rows}
        current = _lookup(_file_raw(settings.policy_file), key)
        parsed = parse_value(value, current)
        over[key] = parsed
        try:
            load_policy(settings.policy_file, over)
        except ConfigError as e:
            raise click.BadParameter(str(e), param_hint="VALUE") from None
        if _lookup(load_policy(settings.policy_file, over).model_dump(mode="json"), key) is None:
            raise click.BadParameter(f"{key} is not a policy figure", param_hint="KEY")
        await conn.execute(
            """INSERT INTO policy_values (key, value, updated_by) VALUES ($1, $2::jsonb, $3)
               ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now(),
                                               updated_by = EXCLUDED.updated_by""",
            key,
            json.dumps(parsed, ensure_ascii=False),
            by,
        )
        return parsed

    parsed = with_conn(settings, go)
    shown = json.dumps(parsed, ensure_ascii=False)
    click.echo(f"{key} = {shown} from now on (a running cti serve reads it when it next starts)")


@policy.command("unset")
@click.argument("key")
@click.option("--by", required=True, help="Who decided the change (kept in the history).")
@click.pass_context
def unset(ctx: click.Context, key: str, by: str) -> None:
    """Drop the override of KEY: the file's figure is in force again from now on."""
    settings = settings_from(ctx)

    async def go(conn: asyncpg.Connection) -> bool:
        async with conn.transaction():
            if await conn.execute("DELETE FROM policy_values WHERE key = $1", key) == "DELETE 0":
                return False
            # the trigger's history row names the last writer of the value: name the remover instead
            await conn.execute(
                """UPDATE policy_value_history SET changed_by = $2 WHERE id =
                   (SELECT max(id) FROM policy_value_history WHERE key = $1 AND value IS NULL)""",
                key,
                by,
            )
            return True

    if not with_conn(settings, go):
        raise click.BadParameter(f"{key} has no override", param_hint="KEY")
    click.echo(f"{key}: the file's figure again from now on")


@policy.command("history")
@click.argument("key", required=False)
@click.pass_context
def history(ctx: click.Context, key: str | None) -> None:
    """Every change (of KEY, or of all): when it took effect, the value, who made it."""
    settings = settings_from(ctx)

    async def go(conn: asyncpg.Connection) -> list[asyncpg.Record]:
        return await conn.fetch(
            """SELECT key, value, effective_from, changed_by FROM policy_value_history
               WHERE $1::text IS NULL OR key = $1 ORDER BY effective_from, id""",
            key,
        )

    for r in with_conn(settings, go):
        value = "(the file's figure)" if r["value"] is None else r["value"]
        click.echo(f"{r['effective_from']}  {r['key']} = {value}  by {r['changed_by']}")

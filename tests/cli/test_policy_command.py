"""`cti policy`: a manager changes a house figure from the command line; a bad value is refused with
the key and the reason (exit 2) and nothing is stored; every change is in the history the fines are
priced from, under the name of who made it."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import asyncpg
from click.testing import CliRunner, Result

from cti.cli import main
from cti.policy import load_policy_from_db


async def invoke(db_url: str, *args: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, main, list(args), env={"CTI_DATABASE_URL": db_url})


async def test_set_show_unset_and_history(db_url: str, db: asyncpg.Connection) -> None:
    r = await invoke(db_url, "policy", "set", "fines.agent_hung_up_first.agent", "25.50", "--by", "王经理")
    assert r.exit_code == 0, r.output
    assert (await load_policy_from_db(db)).fines["agent_hung_up_first"].agent == Decimal("25.50")
    r = await invoke(db_url, "policy", "show", "fines.agent_hung_up_first")
    assert 'fines.agent_hung_up_first.agent = "25.50"  * 王经理' in r.output
    assert 'fines.agent_hung_up_first.supervisor = "0.00"\n' in r.output  # the file's, unmarked
    r = await invoke(db_url, "policy", "set", "ring.max_rings", "3", "--by", "王经理")
    assert r.exit_code == 0 and (await load_policy_from_db(db)).ring.max_rings == 3
    r = await invoke(db_url, "policy", "unset", "ring.max_rings", "--by", "李主管")
    assert r.exit_code == 0, r.output
    assert (await load_policy_from_db(db)).ring.max_rings == 2  # the shipped figure again
    hist = await db.fetch("SELECT key, value, changed_by FROM policy_value_history ORDER BY id")
    assert [(h["key"], h["value"], h["changed_by"]) for h in hist] == [
        ("fines.agent_hung_up_first.agent", '"25.50"', "王经理"),
        ("ring.max_rings", "3", "王经理"),
        ("ring.max_rings", None, "李主管"),  # removed, by whom
    ]
    r = await invoke(db_url, "policy", "history", "ring.max_rings")
    assert "ring.max_rings = 3  by 王经理" in r.output and "(the file's figure)  by 李主管" in r.output


async def test_a_bad_figure_is_refused_naming_the_key_and_nothing_changes(
    db_url: str, db: asyncpg.Connection
) -> None:
    for key, value, why in (
        ("ring.max_rings", "abc", "valid integer"),
        ("fines.late.agent", "1.234", "2 decimal places"),  # money is to the fen
        ("fines.late.agent", "-5", "greater than or equal to 0"),
        ("ring.nonsense", "3", "Extra inputs"),
    ):
        r = await invoke(db_url, "policy", "set", "--by", "x", "--", key, value)  # -5 is no option
        assert r.exit_code == 2, (key, r.output)
        assert key in r.output and why in r.output, r.output
        assert len(r.output.strip().splitlines()) == 1  # one line, no traceback
    assert await db.fetchval("SELECT count(*) FROM policy_values") == 0
    assert await db.fetchval("SELECT count(*) FROM policy_value_history") == 0
    r = await invoke(db_url, "policy", "unset", "ring.max_rings", "--by", "x")
    assert r.exit_code == 2 and "no override" in r.output

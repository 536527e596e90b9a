"""The callback queue API and the `cti callbacks` CLI: masked numbers, dispatch order, cancel rules."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from cti.callbacks import queries
from cti.callbacks.offer import open_callback
from cti.cli import main
from cti.policy import load_policy

CB = load_policy().callbacks
T0 = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)


async def test_list_show_cancel(db):
    a = await open_callback(db, number="13812345678", did="4008001234", kind="peak", now=T0, policy=CB)
    b = await open_callback(db, number="13900001111", did="4008001234", kind="night", now=T0, policy=CB)
    rows = await queries.list_callbacks(db)
    assert [r.id for r in rows] == [b.id, a.id]  # night priority first
    assert rows[1].number == "138****5678"
    assert (await queries.list_callbacks(db, full_numbers=True))[1].number == "13812345678"
    with pytest.raises(ValueError, match="status must be"):
        await queries.list_callbacks(db, status="bogus")
    view, attempts = await queries.get_callback(db, a.id)
    assert view.did == "4008001234" and attempts == []
    await queries.cancel_callback(db, a.id, by="王主管", now=T0)
    assert (await queries.counts(db))["cancelled"] == 1
    with pytest.raises(queries.CannotCancel, match="is cancelled"):
        await queries.cancel_callback(db, a.id, by="x", now=T0)
    await db.execute("UPDATE callbacks SET status = 'dialing' WHERE id = $1", b.id)
    with pytest.raises(queries.CannotCancel, match="dialing"):
        await queries.cancel_callback(db, b.id, by="x", now=T0)
    with pytest.raises(queries.CannotCancel, match="no callback"):
        await queries.cancel_callback(db, 999, by="x", now=T0)
    # a cancelled callback frees the number: the next call opens a new one
    c = await open_callback(
        db, number="13812345678", did="4008001234", kind="peak", now=T0 + timedelta(1), policy=CB
    )
    assert c.created


async def test_cli(db_url):
    runner = CliRunner()
    env = {"CTI_DATABASE_URL": db_url}

    def cli(*args: str):
        return runner.invoke(main, ["callbacks", *args], env=env, catch_exceptions=False)

    r = await asyncio.to_thread(cli, "add", "--number", "13812345678", "--did", "4008001234")
    assert r.exit_code == 0 and "added callback 1" in r.output
    r = await asyncio.to_thread(cli, "add", "--number", "138 1234 5678", "--did", "4008001234")
    assert "joined open callback (now 2 calls)" in r.output
    r = await asyncio.to_thread(cli, "add", "--number", "anonymous", "--did", "4008001234")
    assert r.exit_code != 0 and "cannot call back" in r.output
    r = await asyncio.to_thread(cli, "list")
    assert "138****5678" in r.output and "13812345678" not in r.output and "open 1" in r.output
    r = await asyncio.to_thread(cli, "show", "1")
    assert "callback 1: 138****5678 (dialed 4008001234) manual" in r.output
    r = await asyncio.to_thread(cli, "cancel", "1", "--by", "王主管")
    assert r.exit_code == 0
    r = await asyncio.to_thread(cli, "cancel", "1")
    assert r.exit_code != 0 and "only an open callback" in r.output
    r = await asyncio.to_thread(cli, "show", "42")
    assert r.exit_code != 0 and "no callback with id 42" in r.output


async def test_callback_stats(db_url, db):
    import asyncpg

    await open_callback(db, number="13812345678", did="4008001234", kind="peak", now=T0, policy=CB)
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=1)
    try:
        s = await queries.callback_stats(pool, now=T0 + timedelta(seconds=90))
    finally:
        await pool.close()
    assert s["open"] == 1 and s["dialing"] == 0 and s["oldest_wait_s"] == 90

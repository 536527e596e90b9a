"""The leader (decision 0110): one at a time, a successor within 5 s of a SIGKILL, and a deposed
leader's fenced write refused."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
import time

import asyncpg
import pytest

from cti.cluster.leader import LEADER_LOCK_KEY, Deposed, Leadership, fence


class Parts:
    """What on_elected / on_lost would start and stop: here, a record of it."""

    def __init__(self) -> None:
        self.log: list[tuple[str, int | None]] = []

    async def elected(self, token: int) -> None:
        self.log.append(("elected", token))

    async def lost(self) -> None:
        self.log.append(("lost", None))


async def _until(pred, timeout: float = 5.0) -> float:
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            raise AssertionError("timed out")
        await asyncio.sleep(0.02)
    return time.monotonic() - t0


async def test_one_leader_and_a_successor_when_its_session_dies(db_url: str, db: asyncpg.Connection):
    a_parts, b_parts = Parts(), Parts()
    a = Leadership(db_url, process="a", on_elected=a_parts.elected, on_lost=a_parts.lost, poll_s=0.1)
    b = Leadership(db_url, process="b", on_elected=b_parts.elected, on_lost=b_parts.lost, poll_s=0.1)
    ta = asyncio.create_task(a.run())
    await _until(lambda: a.is_leader)
    tb = asyncio.create_task(b.run())
    await asyncio.sleep(0.5)
    assert a.is_leader and not b.is_leader  # never two
    old = a.token
    assert old is not None
    # a's database session is killed (what a crash or a cut link does to the lock)
    await db.execute(
        """SELECT pg_terminate_backend(pid) FROM pg_locks
           WHERE locktype = 'advisory' AND classid::bigint = $1 AND objid::bigint = $2""",
        LEADER_LOCK_KEY >> 32,
        LEADER_LOCK_KEY & 0xFFFFFFFF,
    )
    took = await _until(lambda: b.is_leader)
    assert took < 5.0
    await _until(lambda: ("lost", None) in a_parts.log)  # a stepped down: its parts were stopped
    assert b.token == old + 1
    # a's late write with the old token is refused; b's goes in
    async with db.transaction():
        with pytest.raises(Deposed):
            await fence(db, old)
    async with db.transaction():
        await fence(db, b.token)
    await asyncio.sleep(0.5)
    assert not a.is_leader  # a campaigns again but b holds the lock
    for t in (ta, tb):
        t.cancel()
    await asyncio.gather(ta, tb, return_exceptions=True)
    assert b_parts.log == [("elected", old + 1), ("lost", None)]


CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from cti.cluster.leader import Leadership

    async def main():
        async def elected(token):
            print("elected", token, flush=True)  # the test waits for it
        async def lost():
            pass
        await Leadership(sys.argv[1], process="child", on_elected=elected, on_lost=lost, poll_s=0.1).run()

    asyncio.run(main())
    """
)


async def test_sigkilled_leader_is_replaced_within_five_seconds(db_url: str):
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, db_url, stdout=asyncio.subprocess.PIPE, env={**os.environ}
    )
    assert child.stdout is not None
    try:
        line = b""
        while not line.startswith(b"elected"):  # log lines come first
            line = await asyncio.wait_for(child.stdout.readline(), 20)
            assert line, "the child exited before it was elected"
        parts = Parts()
        us = Leadership(db_url, process="us", on_elected=parts.elected, on_lost=parts.lost, poll_s=0.1)
        task = asyncio.create_task(us.run())
        await asyncio.sleep(0.5)
        assert not us.is_leader
        child.send_signal(signal.SIGKILL)
        t0 = time.monotonic()
        await _until(lambda: us.is_leader)
        assert time.monotonic() - t0 < 5.0
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    finally:
        if child.returncode is None:
            child.kill()
        await child.wait()

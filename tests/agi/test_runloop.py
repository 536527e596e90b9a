"""cti.runloop: uvloop unless CTI_EVENT_LOOP=asyncio."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from cti.runloop import run


async def _loop_type() -> type:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop())


def test_runs_on_uvloop_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CTI_EVENT_LOOP", raising=False)
    assert run(_loop_type()) is uvloop.Loop


def test_the_standard_loop_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTI_EVENT_LOOP", "asyncio")
    assert not issubclass(run(_loop_type()), uvloop.Loop)

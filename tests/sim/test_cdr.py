"""The simulated cdr_pgsql writes rows exactly as the real one did for the project's dialplan
(captures 13, 14, 18 `cdr-pgsql.csv`), and the simulator's calls produce such rows."""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

import pytest

from cti.sim import Simulator
from cti.sim.cdr import COLUMNS, callback_row, cdr_rows
from cti.sim.scenario import QueueConfig, Scenario
from tests.sim.helpers import CAPTURES, FastAgiServer
from tests.sim.test_routing_and_queue import routed


def capture_rows(scenario: str) -> list[dict[str, str]]:
    path = next(CAPTURES.glob(f"{scenario}-*/cdr-pgsql.csv"))
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def as_csv(row: tuple[Any, ...]) -> dict[str, str]:
    out = {}
    for col, v in zip(COLUMNS, row, strict=True):
        if col == "cti_did":  # our extra column (db/046): the captures predate it
            continue
        out[col] = v.strftime("%Y-%m-%d %H:%M:%S+00") if isinstance(v, datetime) else str(v)
    return out


def test_capture_14_abandon_while_cti_down() -> None:
    """Degraded route, queue, abandon after 17 s: cti-queue, dst s, ANSWERED, empty dstchannel."""
    rec = {
        "uniqueid": "1795923519.0", "number": "13812345678", "did": "4008001234", "masked": "138****5678",
        "clid_name": "138****5678", "started": 1795923519.651221, "ended": 1795923536.667689,
        "channel": "PJSIP/trunk-00000000", "agent_channel": "", "queue": "sales", "script": "route",
    }  # fmt: skip
    assert [as_csv(r) for r in cdr_rows(rec)] == capture_rows("14")
    # [from-trunk]'s Set(CDR(cti_did)=${EXTEN}) fills the extra column (cdr_pgsql's arbitrary field)
    assert [r[COLUMNS.index("cti_did")] for r in cdr_rows(rec)] == ["4008001234"]


def test_capture_13_preferred_no_answer_then_queue_gives_two_rows() -> None:
    rec = {
        "uniqueid": "1795923486.0", "number": "13612345678", "did": "4008001234", "masked": "136****5678",
        "clid_name": "136****5678", "started": 1795923486.650903, "ended": 1795923508.671104,
        "channel": "PJSIP/trunk-00000000", "agent_channel": "PJSIP/agent2-00000002", "queue": "sales",
        "preferred": {"agent": "agent3", "timeout": 10, "channel": "PJSIP/agent3-00000001",
                      "status": "NOANSWER", "ended": 1795923496.664994},
    }  # fmt: skip
    assert [as_csv(r) for r in cdr_rows(rec)] == capture_rows("13")


def test_capture_12_preferred_answered() -> None:
    rec = {
        "uniqueid": "1795923350.0", "number": "13612345678", "masked": "136****5678",
        "started": 1795923350.65, "ended": 1795923362.7, "channel": "PJSIP/trunk-00000000",
        "agent_channel": "PJSIP/agent3-00000001", "queue": None,
        "preferred": {"agent": "agent3", "timeout": 10, "channel": "PJSIP/agent3-00000001",
                      "status": "ANSWER"},
    }  # fmt: skip
    assert [as_csv(r) for r in cdr_rows(rec)] == capture_rows("12")


def test_capture_18_callback_with_trunk_down() -> None:
    rec = {
        "uniqueid": "cti-cb-18-1", "did": "4008001234", "number": "13812345678",
        "channel": "PJSIP/agent1-00000000", "created": 1795923810.879820, "ended": 1795923811.891829,
        "trunk": "trunk", "ring_s": 30, "customer_channel": "", "customer_answered": None,
    }  # fmt: skip
    assert [as_csv(callback_row(rec))] == capture_rows("18")


@pytest.fixture
async def sim_with_cdr() -> AsyncIterator[Callable[..., Awaitable[tuple[Simulator, list[dict]]]]]:
    made: list[tuple[Simulator, FastAgiServer]] = []

    async def _make(scripts: dict) -> tuple[Simulator, list[dict]]:  # type: ignore[type-arg]
        agi = FastAgiServer(scripts)
        port = await agi.start()
        sim = Simulator(Scenario(queues=(QueueConfig(),)), agi_url=f"agi://127.0.0.1:{port}")
        for n in (1, 2, 3):
            sim.add_agent(f"agent{n}", f"Agent {n}")
        records: list[dict] = []
        sim.engine.on_call_record = records.append
        await sim.start()
        made.append((sim, agi))
        return sim, records

    yield _make
    for sim, agi in made:
        await sim.close()
        await agi.close()


async def test_simulated_calls_write_the_project_dialplan_rows(sim_with_cdr) -> None:  # type: ignore[no-untyped-def]
    """A preferred agent who does not answer, then an abandon in the queue; and a night caller."""
    sim, records = await sim_with_cdr(
        {"route": routed(**{"CALLERID(name)": "138****5678", "CTI_ROUTE": "queue", "CTI_PREFERRED": "agent3",
                            "CTI_PREFERRED_TIMEOUT": "10", "CTI_MASKED": "138****5678"})}
    )  # fmt: skip
    for a in ("agent1", "agent3"):
        sim.login(a)
    sim.set_answer("agent3", "never")
    sim.pause_at_phone("agent1", True, "lunch")
    sim.place_call(caller="13812345678", did="4008001234", name="张三", behaviour={"patience": 25})
    await sim.advance(40)
    assert len(records) == 1
    rows = [as_csv(r) for r in cdr_rows(records[0])]
    assert [(r["dcontext"], r["dst"], r["lastapp"], r["disposition"]) for r in rows] == [
        ("cti-queue", "s", "Dial", "NO ANSWER"),
        ("cti-queue", "s", "Queue", "ANSWERED"),
    ]
    assert rows[0]["dstchannel"].startswith("PJSIP/agent3-") and rows[1]["dstchannel"] == ""
    assert rows[0]["clid"] == '"138****5678" <13812345678>' and rows[0]["src"] == "13812345678"
    assert {r["uniqueid"] for r in rows} == {records[0]["uniqueid"]}
    assert "4008001234" not in str(rows)


async def test_simulated_night_caller_row(sim_with_cdr) -> None:  # type: ignore[no-untyped-def]
    async def night(env, cmd):  # type: ignore[no-untyped-def]
        await cmd('STREAM FILE night-greeting ""')

    sim, records = await sim_with_cdr({"route": routed(CTI_ROUTE="night"), "night": night})
    sim.place_call(caller="13812345678", did="4008001234")
    await sim.advance(10)
    (row,) = [as_csv(r) for r in cdr_rows(records[0])]
    assert (row["dcontext"], row["dst"], row["lastapp"], row["disposition"], row["dstchannel"]) == (
        "cti-night", "s", "Hangup", "ANSWERED", "",
    )  # fmt: skip

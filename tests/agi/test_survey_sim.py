"""The satisfaction survey against the simulated PBX (issue 17): the agent leaves, Queue()'s `c`
(Dial()'s `g` for the preferred agent) brings the caller to [cti-survey], the customer keys, keys
nothing, keys nonsense or hangs up; a caller who hangs up first is never surveyed."""

from __future__ import annotations

import re
from pathlib import Path

import asyncpg
import pytest

from cti.sim.inbound import InboundFlow
from tests.agi.test_e2e_sim import CALLER, _call, rig  # noqa: F401  (rig: the fixture)

DIALPLAN = Path(__file__).resolve().parents[2] / "dialplan" / "extensions.conf"


async def _survey(pool: asyncpg.Pool) -> asyncpg.Record | None:
    return await pool.fetchrow("SELECT * FROM survey_results")


def _survey_agi(r) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    return [e for e in r.events("Newexten", Application="AGI") if "/survey," in e["AppData"]]


async def test_agent_leaves_and_the_customer_rates_the_call(rig, pool) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    r = await rig()
    r.sim.set_answer("agent1", "auto", delay=1.0)
    r.sim.set_answer("agent2", "never")
    _call(r.sim, hangup_first="agent", dtmf=["4"])
    await r.sim.advance(3)  # talking; the route's recording row is written in a batch (flushed here)
    await r.ctx.recordings.flush()
    await r.sim.advance(60)
    (complete,) = r.events("AgentComplete")
    assert complete["Reason"] == "agent"
    (agi,) = _survey_agi(r)
    # agi_arg_4 empty: ${SHARED(CTI_SURVEY_VIA)} was never set (the agent hung up, no key)
    assert agi["Context"] == "cti-survey" and agi["AppData"].endswith("/survey,agent1,inbound,sales,")
    assert r.events("VarSet", Variable="QUEUESTATUS")[-1]["Value"] == "CONTINUE"
    row = await _survey(pool)
    assert (row["agent"], row["score"], row["outcome"], row["queue"]) == ("agent1", 4, "rated", "sales")
    rec = await pool.fetchrow("SELECT id, linkedid FROM recordings")
    assert (row["linkedid"], row["recording_id"]) == (rec["linkedid"], rec["id"])
    # the caller's channel ended after the survey, by the dialplan's Hangup(), not with the agent's
    caller_hangup = r.events("Hangup", Channel="PJSIP/trunk-00000000")
    agent_hangup = [e for e in r.events("Hangup") if e["Channel"].startswith("PJSIP/agent1-")]
    assert float(caller_hangup[0]["_ts"]) >= float(agent_hangup[0]["_ts"])
    assert r.events("SoftHangupRequest", Channel="PJSIP/trunk-00000000")  # Hangup() in [cti-survey]
    (ev,) = r.ctx.events.of_type("survey_result")  # type: ignore[attr-defined]
    assert ev.agent == "agent1" and ev.linkedid == rec["linkedid"]
    assert ev.payload["via"] == "hangup" and row["via"] == "hangup"


async def _talking(r, **behaviour) -> None:  # type: ignore[no-untyped-def]
    """A call agent1 answers and would talk for ten minutes (the caller would hang up then)."""
    _call(r.sim, talk_time=600, hangup_first="caller", **behaviour)
    await r.sim.advance(5)
    assert r.events("BridgeEnter") and not r.events("Hangup")


async def test_agent_presses_the_survey_key_and_the_customer_is_surveyed_at_once(rig, pool) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    r = await rig()
    r.sim.set_answer("agent1", "auto", delay=1.0)
    r.sim.set_answer("agent2", "never")
    await _talking(r, dtmf=["2"])
    assert r.sim.agent_presses("agent1", "*0") is True
    await r.sim.advance(1)
    # the agent's leg ended by the Hangup() in [cti-survey-key], not by the phone: SoftHangupRequest
    agent_ch = next(e["Channel"] for e in r.events("Hangup") if e["Channel"].startswith("PJSIP/agent1-"))
    assert r.events("SoftHangupRequest", Channel=agent_ch) and not r.events("HangupRequest", Channel=agent_ch)
    assert r.events("AgentComplete")[0]["Reason"] == "agent"
    (agi,) = _survey_agi(r)
    assert agi["AppData"].endswith("/survey,agent1,inbound,sales,key")
    row = await _survey(pool)
    assert (row["agent"], row["score"], row["outcome"], row["via"]) == ("agent1", 2, "rated", "key")
    (ev,) = r.ctx.events.of_type("survey_result")  # type: ignore[attr-defined]
    assert ev.agent == "agent1" and ev.payload["via"] == "key"
    # long before the ten minutes the caller would have talked
    caller_end = r.events("Hangup", Channel="PJSIP/trunk-00000000")[0]
    assert float(caller_end["_ts"]) - float(r.events("BridgeEnter")[0]["_ts"]) < 10


async def test_the_preferred_agent_has_the_key_too(rig, pool) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    r = await rig()
    r.sim.set_answer("agent2", "auto", delay=1.0)
    await _talking(r, did="4008001002", dtmf=["5"])  # agent2's own DID: Dial(g)
    assert r.sim.agent_presses("agent2", "*0")
    await r.sim.advance(30)
    row = await _survey(pool)
    assert (row["agent"], row["score"], row["via"]) == ("agent2", 5, "key")


async def test_other_keys_and_an_idle_agent_change_nothing(rig, pool) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    r = await rig()
    r.sim.set_answer("agent1", "auto", delay=1.0)
    r.sim.set_answer("agent2", "never")
    assert r.sim.agent_presses("agent1", "*0") is False  # no call yet
    await _talking(r, dtmf=["4"])
    assert r.sim.agent_presses("agent1", "*9") is False and r.sim.agent_presses("agent2", "*0") is False
    await r.sim.advance(30)
    assert not r.events("Hangup") and _survey_agi(r) == []
    with pytest.raises(ValueError, match="unknown agent 'agent99'"):
        r.sim.agent_presses("agent99", "*0")


async def test_without_c_the_key_hangs_the_caller_up_as_capture_04_shows(rig, pool, monkeypatch) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """The key only ends the agent's leg: the caller's fate is Queue's `c`, as when the agent hangs up."""
    monkeypatch.setattr(InboundFlow, "QUEUE_CONTINUE", False)
    r = await rig()
    r.sim.set_answer("agent1", "auto", delay=1.0)
    r.sim.set_answer("agent2", "never")
    await _talking(r, dtmf=["4"])
    assert r.sim.agent_presses("agent1", "*0")
    await r.sim.advance(30)
    assert r.events("AgentComplete")[0]["Reason"] == "agent"
    assert r.events("Hangup", Channel="PJSIP/trunk-00000000")
    assert _survey_agi(r) == [] and await _survey(pool) is None


async def test_caller_who_hangs_up_first_is_not_surveyed(rig, pool) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    r = await rig()
    r.sim.set_answer("agent1", "auto", delay=1.0)
    r.sim.set_answer("agent2", "never")
    _call(r.sim, hangup_first="caller", dtmf=["1"])
    await r.sim.advance(60)
    assert r.events("AgentComplete")[0]["Reason"] == "caller"
    assert _survey_agi(r) == [] and await _survey(pool) is None


@pytest.mark.parametrize(
    ("dtmf", "outcome", "score"),
    [([], "no_key", None), (["9", "8"], "invalid", None), (["9", "1"], "rated", 1)],
)
async def test_no_key_and_invalid_keys(rig, pool, dtmf, outcome, score) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    r = await rig()
    r.sim.set_answer("agent1", "auto", delay=1.0)
    r.sim.set_answer("agent2", "never")
    _call(r.sim, hangup_first="agent", dtmf=dtmf)
    await r.sim.advance(60)
    row = await _survey(pool)
    assert (row["outcome"], row["score"]) == (outcome, score)
    alarms = r.ctx.events.of_type("survey_alarm")  # type: ignore[attr-defined]
    assert len(alarms) == (1 if score == 1 else 0)


async def test_customer_hangs_up_during_the_survey(rig, pool) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    r = await rig()
    r.sim.set_answer("agent1", "auto", delay=1.0)
    r.sim.set_answer("agent2", "never")
    # the survey's commands: GET VARIABLE CHANNEL(linkedid), then the question: the caller leaves there
    _call(r.sim, hangup_first="agent", dtmf=["5"], ivr_hangup_after=1, ivr_hangup_script="survey")
    await r.sim.advance(60)
    row = await _survey(pool)
    assert (row["outcome"], row["score"]) == ("hung_up", None)
    assert r.events("Hangup", Channel="PJSIP/trunk-00000000")


async def test_the_preferred_agent_who_leaves_sends_the_caller_to_the_survey_too(rig, pool) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    r = await rig()
    r.sim.set_answer("agent2", "auto", delay=1.0)
    _call(r.sim, did="4008001002", hangup_first="agent", dtmf=["5"])  # agent2's own DID: Dial(g)
    await r.sim.advance(60)
    assert not r.events("QueueCallerJoin")
    row = await _survey(pool)
    assert (row["agent"], row["score"]) == ("agent2", 5)


async def test_without_c_the_caller_is_hung_up_as_capture_04_shows(rig, pool, monkeypatch) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    monkeypatch.setattr(InboundFlow, "QUEUE_CONTINUE", False)
    r = await rig()
    r.sim.set_answer("agent1", "auto", delay=1.0)
    r.sim.set_answer("agent2", "never")
    _call(r.sim, hangup_first="agent", dtmf=["4"])
    await r.sim.advance(60)
    assert r.events("AgentComplete")[0]["Reason"] == "agent"
    assert r.events("SoftHangupRequest", Channel="PJSIP/trunk-00000000")
    assert _survey_agi(r) == [] and await _survey(pool) is None


def test_the_simulator_models_the_options_the_dialplan_gives() -> None:
    """InboundFlow continues a caller the agent left only because [cti-queue] says `c` / `g`."""
    text = DIALPLAN.read_text(encoding="utf-8")
    queue = re.search(r"\n\[cti-queue\]\n(.*?)\n\[", text, re.S).group(1)  # type: ignore[union-attr]
    (q_opts,) = re.findall(r"Queue\(\$\{CTI_QUEUE\},([A-Za-z]*)b\(", queue)
    (d_opts,) = re.findall(
        r"Dial\(PJSIP/\$\{CTI_PREFERRED\},\$\{CTI_PREFERRED_TIMEOUT\},([A-Za-z]*)b\(", queue
    )
    assert ("c" in q_opts) is InboundFlow.QUEUE_CONTINUE and ("g" in d_opts) is InboundFlow.DIAL_CONTINUE
    assert '"${QUEUESTATUS}" = "CONTINUE"' in queue and "Goto(cti-survey,inbound,1)" in queue

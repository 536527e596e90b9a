"""`agent_feature`: the softphone feature codes reach the agent service and the phone hears the result."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cti.agents.prompts import PROMPTS, prompt_for
from cti.agents.service import AgentService
from cti.clock import ManualClock
from cti.policy import load_policy
from cti.store.sink import MemoryEvents
from tests.agi.conftest import DAY, make_ctx
from tests.agi.fake_asterisk import FakeChannel, env_lines, run_call


class FakeAmi:
    """Answers like Asterisk did in captures 07 and 17; keeps what was asked."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, str]]] = []

    async def __call__(self, name: str, headers: Mapping[str, str]) -> Mapping[str, Any]:
        self.sent.append((name, dict(headers)))
        msg = {"QueueAdd": "Added interface to queue", "PJSIPQualify": "Endpoint found, will qualify"}
        return {"Response": "Success", "Message": msg.get(name, "ok")}


def _env(op: str, endpoint: str = "agent1", code: str = "") -> list[str]:
    return env_lines(
        agi_network_script="agent_feature",
        agi_context="cti-agent-feature",
        agi_extension=op,
        agi_callerid="agent9",
        agi_arg_1=op,
        agi_arg_2=endpoint,
        agi_arg_3=code,
    )


async def test_feature_codes_log_in_pause_with_a_coded_reason_and_play_the_result(start_server, pool) -> None:  # type: ignore[no-untyped-def]
    ami = FakeAmi()
    events = MemoryEvents()
    svc = AgentService(pool, policy=load_policy(), clock=ManualClock(DAY), events=events, ami_action=ami)
    server = await start_server(make_ctx(pool=pool, agents=svc, events=events))

    ch = await run_call(server.port, FakeChannel(), _env("login"))
    assert ch.vars["CTI_AGENT_RESULT"] == "logged_in"
    assert ch.argv[-1][:3] == ["STREAM", "FILE", prompt_for("logged_in")]
    # the endpoint the dialplan passed decides who logs in, not the caller ID (agent9)
    assert (
        "QueueAdd",
        {
            "Queue": "sales",
            "Interface": "PJSIP/agent1",
            "Penalty": "0",
            "MemberName": "agent1",
            "StateInterface": "PJSIP/agent1",
        },
    ) in ami.sent
    assert ("PJSIPQualify", {"Endpoint": "agent1"}) in ami.sent

    ch = await run_call(server.port, FakeChannel(), _env("pause", code="2"))  # *132: lunch
    assert ch.vars["CTI_AGENT_RESULT"] == "paused"
    assert ami.sent[-1] == ("QueuePause", {"Interface": "PJSIP/agent1", "Paused": "true", "Reason": "lunch"})
    ch = await run_call(server.port, FakeChannel(), _env("status"))
    assert ch.vars["CTI_AGENT_RESULT"] == "status_paused"
    ch = await run_call(server.port, FakeChannel(), _env("pause", code="1"))
    assert ch.vars["CTI_AGENT_RESULT"] == "already_paused"
    ch = await run_call(server.port, FakeChannel(), _env("unpause"))
    assert ch.vars["CTI_AGENT_RESULT"] == "unpaused"
    ch = await run_call(server.port, FakeChannel(), _env("login", endpoint="agent3"))
    ch = await run_call(server.port, FakeChannel(), _env("pause", endpoint="agent3", code="99"))
    assert ch.vars["CTI_AGENT_RESULT"] == "unknown_reason"
    ch = await run_call(server.port, FakeChannel(), _env("logout"))
    assert ch.vars["CTI_AGENT_RESULT"] == "logged_out"
    assert [e.payload["via"] for e in events.of_type("agent_logout")] == ["phone"]
    ch = await run_call(server.port, FakeChannel(), _env("login", endpoint="trunk"))
    assert ch.vars["CTI_AGENT_RESULT"] == "unknown_agent"
    for code, (name, text) in PROMPTS.items():
        assert name.startswith("cti/agent-") and text, code


async def test_without_an_agent_service_nothing_is_decided_and_the_dialplan_says_so(start_server) -> None:  # type: ignore[no-untyped-def]
    server = await start_server(make_ctx())
    ch = await run_call(server.port, FakeChannel(), _env("login"))
    assert "CTI_AGENT_RESULT" not in ch.vars
    assert not [a for a in ch.argv if a[:2] == ["STREAM", "FILE"]]

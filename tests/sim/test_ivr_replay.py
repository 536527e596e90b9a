"""Captures 15 and 16 replayed against the simulator: the night and callback-offer sessions' exact
command lines are sent, and the simulator must answer what Asterisk 22.10.1 answered (issue 10 items
4, 8, 16: it used to play prompts that do not exist, create RECORD FILE's directories and keep keys
pressed during a playback without escape digits)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cti.prompts import names
from cti.sim import Simulator
from cti.sim.scenario import Scenario
from tests.sim.helpers import CAPTURES, FastAgiServer, RawAmi, d

Session = list[tuple[str, str]]


def sessions(capture: str) -> list[tuple[str, Session]]:
    """(script, [(command, reply)]) per FastAGI session of a capture's agi.txt."""
    out: list[tuple[str, Session]] = []
    pending: str | None = None
    for line in (CAPTURES / capture / "agi.txt").read_text(encoding="utf-8").splitlines():
        if re.match(r"^# \S+ session \d+: connection from", line):
            out.append(("", []))
        elif line.startswith(">> agi_network_script: "):
            out[-1] = (line.split(": ", 1)[1], out[-1][1])
        elif line.startswith("<< "):
            pending = line[3:]
        elif line.startswith(">> ") and pending is not None:
            out[-1][1].append((pending, line[3:]))
            pending = None
    return out


def _same(reply: str) -> str:
    """A prompt's or a recording's length is not the simulator's business: endpos of a playback
    that ran (not the 0 of one that could not start) is left out."""
    return re.sub(r" endpos=[1-9]\d*$", "", reply)


@pytest.fixture
async def rig() -> AsyncIterator[list[object]]:
    made: list[object] = []
    yield made
    for x in made:
        await x.close()  # type: ignore[attr-defined]


Replayed = tuple[list[Session], list[dict[str, str]]]


async def _replay(rig: list[object], capture: str, dtmf: list[str], missing: tuple[str, ...],
                  paths: dict[str, str], call: int = 0) -> Replayed:  # fmt: skip
    """Serve the FastAGI sessions of the capture's `call`-th caller (route, then its script)."""
    recorded: list[Session] = []

    def script(lines: Session):  # type: ignore[no-untyped-def]
        async def run(env: dict[str, str], cmd) -> None:  # type: ignore[no-untyped-def]
            got: Session = []
            for command, _ in lines:
                for old, new in paths.items():
                    command = command.replace(old, new)
                got.append((command, await cmd(command)))
            recorded.append(got)

        return run

    wanted = sessions(capture)[2 * call : 2 * call + 2]
    agi = FastAgiServer({name: script(lines) for name, lines in wanted})
    port = await agi.start()
    rig.append(agi)
    sc = Scenario(missing_sounds=missing)
    sim = Simulator(sc, agi_url=f"agi://127.0.0.1:{port}")
    rig.append(sim)
    await sim.start()
    ami = await RawAmi.connect(sim.ami_port)
    rig.append(ami)
    await ami.login()
    sim.place_call(
        caller="13812345678", did="4008001234", name="张三", behaviour={"dtmf": dtmf, "message_s": 2}
    )
    await sim.advance(10)
    await ami.drain_for()
    ends = [d(f) for f in ami.frames if d(f).get("Event") == "AGIExecEnd"]
    return recorded, ends


CTI_PROMPTS = tuple(n for n in names() if n.startswith("cti/"))


async def test_15_night_with_prompts_missing_and_record_file(rig, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Caller A: prompts moved away; `1#` keyed during RECORD FILE (# stops it) and during SAY DIGITS
    with escape digits "" (lost); GET DATA on the missing prompt -> `200 result=-1` at once."""
    wanted = sessions("15-project-night-missing-prompt")
    night = wanted[1][1]
    monitor = "/var/spool/asterisk/monitor/2026/11/29/1795923548.0-name"
    recorded, ends = await _replay(rig, "15-project-night-missing-prompt", [">1#", ">1#"], CTI_PROMPTS,
                                   {monitor: str(tmp_path / "1795923548.0-name")})  # fmt: skip
    got = recorded[1]
    sent = [c.replace(str(tmp_path / "1795923548.0-name"), monitor) for c, _ in got]
    assert sent[2:] == [c for c, _ in night][2 : len(got)]
    assert [_same(r) for _, r in got[2:]] == [_same(r) for _, r in night[2 : len(got)]]
    assert (tmp_path / "1795923548.0-name.wav").is_file()
    by_cmd = {e["Command"].split('"')[0] + e["Command"].split('"')[1]: e for e in ends if '"' in e["Command"]}
    get_data = by_cmd["GET DATA cti/press-1-or-enter-number"]
    assert (get_data["ResultCode"], get_data["Result"]) == ("200", "Success")  # capture 15's AMI, for a -1
    assert by_cmd["STREAM FILE cti/night-welcome"]["Result"] == "Failure"


async def test_15_record_file_into_a_missing_directory_is_writefile(rig, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Caller B: RECORD FILE under .../no-such-dir/2026/ -> `200 result=-1 (writefile)`, nothing made."""
    night_b = sessions("15-project-night-missing-prompt")[3][1]
    (rec_line, rec_reply) = next((c, r) for c, r in night_b if c.startswith("RECORD FILE"))
    assert rec_reply == "200 result=-1 (writefile)"
    target = tmp_path / "no-such-dir" / "2026" / "x-name"
    old = rec_line.split('"')[1]
    recorded, ends = await _replay(
        rig, "15-project-night-missing-prompt", [], CTI_PROMPTS, {old: str(target)}, call=1
    )
    replies = {c: r for s in recorded for c, r in s}
    assert replies[rec_line.replace(old, str(target))] == "200 result=-1 (writefile)"
    assert not (tmp_path / "no-such-dir").exists()
    (end,) = [e for e in ends if e["Command"].startswith("RECORD FILE") and "no-such-dir" in e["Command"]]
    assert (end["ResultCode"], end["Result"]) == ("-1", "Failure")


async def test_16_a_key_during_say_digits_without_escape_digits_is_lost(rig) -> None:  # type: ignore[no-untyped-def]
    """The caller keyed `1#`: the 1 during the read-back (lost), the # answered GET DATA as
    `200 result=` (empty); the second GET DATA timed out."""
    wanted = sessions("16-project-callback-did")
    offer = wanted[1][1]
    recorded, _ = await _replay(rig, "16-project-callback-did", [">1", "#"], (), {})
    got = recorded[1][2:]  # after GET VARIABLE CTI_DNIS / CHANNEL(linkedid): ids differ
    assert [c for c, _ in got] == [c for c, _ in offer[2:]]
    assert [_same(r) for _, r in got] == [_same(r) for _, r in offer[2:]]


async def test_escape_digits_stop_a_read_back_and_the_rest_arrives_later(rig) -> None:  # type: ignore[no-untyped-def]
    """The same keys with the escape digits the CTI now passes: SAY DIGITS stops at the 1, the #
    comes next (no capture of this exact dialogue; res_agi's documented reply `result=<ascii>`)."""
    lines = [('STREAM FILE "cti/your-number-is" "0123456789*#"', ""),
             ('SAY DIGITS "13812345678" "0123456789*#"', ""),
             ("WAIT FOR DIGIT 6000", ""), ("WAIT FOR DIGIT 6000", "")]  # fmt: skip
    recorded: list[Session] = []

    async def offer(env: dict[str, str], cmd) -> None:  # type: ignore[no-untyped-def]
        recorded.append([(c, await cmd(c)) for c, _ in lines])

    async def route(env: dict[str, str], cmd) -> None:  # type: ignore[no-untyped-def]
        await cmd('SET VARIABLE "CTI_ROUTE" "callback_offer"')

    agi = FastAgiServer({"route": route, "callback_offer": offer})
    rig.append(agi)
    sim = Simulator(Scenario(), agi_url=f"agi://127.0.0.1:{await agi.start()}")
    rig.append(sim)
    await sim.start()
    sim.place_call(caller="13812345678", did="4008001234", behaviour={"dtmf": [">", ">1#"]})
    await sim.advance(5)
    # `>` = nothing keyed during the first prompt; the 1 stops SAY DIGITS, the # follows it
    replies = [r for _, r in recorded[0]]
    assert replies == ["200 result=0 endpos=16000", "200 result=49", "200 result=35", "200 result=0"]

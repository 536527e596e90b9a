"""Issue 10 (4): every sound file the dialplan and the handlers play exists, in a format Asterisk
plays, built offline from the manifest; a center's own recordings win."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import wave
from pathlib import Path

from cti.agents.prompts import all_prompts
from cti.agi.handlers import survey
from cti.agi.handlers.ivr import PROMPTS
from cti.degraded import route_agi
from cti.prompts import manifest, missing, report
from cti.prompts.build import INDEX, build, source_key
from cti.quality import survey as survey_scales

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "sounds" / "zh"


def _format(path: Path) -> tuple[int, int, int, float]:
    with wave.open(str(path), "rb") as w:
        return w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes() / w.getframerate()


def test_every_prompt_a_handler_or_the_degraded_script_plays_is_in_the_manifest() -> None:
    played = {getattr(PROMPTS, f.name) for f in dataclasses.fields(PROMPTS)}
    played |= set(route_agi.PROMPTS.values())
    played |= set(all_prompts())  # agents' feature codes
    played |= {f"digits/{d}" for d in "0123456789"}  # SAY DIGITS of a phone number
    played |= set(survey_scales.PROMPT.values()) | {survey.INVALID, survey.THANKS}
    dialplan = (ROOT / "dialplan" / "extensions.conf").read_text(encoding="utf-8")
    for app in re.findall(r"\b(?:Playback|Background|Read|SayDigits)\(([^),]+)", dialplan):
        played.add(app)
    assert played - set(manifest()) == set()


def test_build_writes_every_prompt_as_8khz_mono_16bit_and_own_recordings_win(tmp_path: Path) -> None:
    own = tmp_path / "own" / "cti"
    own.mkdir(parents=True)
    # a center's recording as studios deliver it: 44.1 kHz stereo
    studio = ["sox", "-n", "-r", "44100", "-c", "2", str(own / "night-welcome.wav"), "synth", "1.5", "sine"]
    subprocess.run([*studio, "440"], check=True)
    out = tmp_path / "zh"
    made = build(out, tmp_path / "own")
    assert {b.name for b in made} == set(manifest()) and missing(out) == []
    for name in manifest():
        rate, channels, width, secs = _format(out / f"{name}.wav")
        assert (rate, channels, width) == (8000, 1, 2), name
        assert 0.1 < secs < 20, (name, secs)
    assert abs(_format(out / "cti/night-welcome.wav")[3] - 1.5) < 0.05  # the center's, not espeak's
    index = json.loads((out / INDEX).read_text(encoding="utf-8"))
    assert (
        index["cti/night-welcome"]["source"] == "custom"
        and index["cti/thanks-we-call-back"]["source"] == "tts"
    )
    assert report(out) is None


def test_the_agent_feature_prompts_say_what_their_table_says() -> None:
    for name, text in all_prompts().items():
        assert manifest()[name].text == text, name


def test_shipped_prompts_are_complete_current_and_playable() -> None:
    """The committed sounds/zh (what compose mounts into Asterisk) is a build of today's manifest."""
    assert missing(SHIPPED) == []
    index = json.loads((SHIPPED / INDEX).read_text(encoding="utf-8"))
    for name, prompt in manifest().items():
        assert index[name] == source_key(prompt), f"{name} changed: run `cti prompts build --out sounds/zh`"
        assert _format(SHIPPED / f"{name}.wav")[:3] == (8000, 1, 2), name


def test_missing_prompts_are_named(tmp_path: Path) -> None:
    assert "does not exist" in (report(tmp_path / "nowhere") or "")
    (tmp_path / "cti").mkdir()
    (tmp_path / "cti" / "offer-callback.sln").write_bytes(b"\0\0")  # any format Asterisk plays counts
    line = report(tmp_path) or ""
    assert "cti/night-welcome" in line and "digits/0" in line and "cti/offer-callback" not in line


def test_build_without_the_tools_says_what_to_install(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}  # neither espeak-ng nor sox on it
    r = subprocess.run(
        [sys.executable, "-m", "cti", "prompts", "build", "--out", str(tmp_path / "zh")],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "sox not found (Debian: apt-get install sox)" in r.stderr

"""`cti prompts build`: every manifest prompt as an 8 kHz mono 16-bit wav, offline.

Asterisk plays `.wav` through format_wav only as 8 kHz, mono, 16-bit signed PCM (other rates need
`.wav16` or a transcode on every playback), so that is what is written. Text is spoken by espeak-ng
(Mandarin from the manifest's pinyin, voice `cmn-latn-pinyin`), tones are made by sox, and sox
resamples. A center's own recording (`<custom_dir>/<name>.<any format sox reads>`) wins over the
generated one. `index.json` in the output records where each file came from, so a stale build
(changed text) can be told apart.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cti.prompts import Prompt, manifest

INDEX = "index.json"
VOICE = "cmn-latn-pinyin"  # Mandarin from pinyin: Debian's espeak-ng reads hanzi as English
# leading and trailing silence off: eleven digits read back with espeak's pauses took 7 s
_TRIM = ["silence", "1", "0.02", "1%", "reverse", "silence", "1", "0.02", "1%", "reverse"]
_PAD_NORM = ["pad", "0", "0.1", "norm", "-3"]  # a short gap between digits said one after another
_SOX_OUT = ["-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer"]


class BuildError(Exception):
    """A tool is missing or a file could not be made; the message names which."""


@dataclass(frozen=True, slots=True)
class Built:
    name: str
    source: str  # "tts", "tone" or "custom"
    path: Path


def source_key(p: Prompt) -> dict[str, object]:
    """What a generated file depends on (the index entry for a tts/tone prompt)."""
    if p.pinyin is not None:
        return {"source": "tts", "voice": VOICE, "pinyin": p.pinyin}
    return {"source": "tone", "tone": list(p.tone or ())}


def build(out: Path, custom_dir: Path | None = None) -> list[Built]:
    tools = {t: shutil.which(t) for t in ("espeak-ng", "sox")}
    if not tools["sox"]:
        raise BuildError("sox not found (Debian: apt-get install sox)")
    prompts = manifest()
    if not tools["espeak-ng"] and any(
        p.pinyin is not None and _custom(custom_dir, p.name) is None for p in prompts.values()
    ):
        raise BuildError("espeak-ng not found (Debian: apt-get install espeak-ng)")
    out.mkdir(parents=True, exist_ok=True)
    index: dict[str, object] = {}
    done: list[Built] = []
    with tempfile.TemporaryDirectory(prefix="cti-prompts-") as tmp:
        for p in prompts.values():
            target = out / f"{p.name}.wav"
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = Path(tmp) / "out.wav"
            own = _custom(custom_dir, p.name)
            if own is not None:
                _run([tools["sox"], str(own), *_SOX_OUT, str(partial), "norm", "-3"], f"own recording {own}")
                index[p.name] = {"source": "custom", "sha256": hashlib.sha256(own.read_bytes()).hexdigest()}
                source = "custom"
            elif p.pinyin is not None:
                spoken = Path(tmp) / "tts.wav"
                _run([tools["espeak-ng"], "-v", VOICE, "-s", "170", "-w", str(spoken), p.pinyin], p.name)
                _run([tools["sox"], str(spoken), *_SOX_OUT, str(partial), *_TRIM, *_PAD_NORM], p.name)
                index[p.name], source = source_key(p), "tts"
            else:
                hz, secs = p.tone or (1000.0, 0.25)
                cmd = [tools["sox"], "-n", *_SOX_OUT, str(partial), "synth", f"{secs}", "sine", f"{hz}"]
                _run([*cmd, "vol", "0.5"], p.name)
                index[p.name], source = source_key(p), "tone"
            shutil.move(partial, target)  # never a half-written prompt where Asterisk reads
            done.append(Built(p.name, source, target))
    (out / INDEX).write_text(json.dumps(index, ensure_ascii=False, indent=1, sort_keys=True) + "\n", "utf-8")
    return done


def _custom(custom_dir: Path | None, name: str) -> Path | None:
    if custom_dir is None:
        return None
    found = sorted((custom_dir / name).parent.glob(Path(name).name + ".*"))
    return found[0] if found else None


def _run(cmd: list[str | None], what: str) -> None:
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        err = (p.stderr or p.stdout).strip().splitlines()
        raise BuildError(f"{what}: {cmd[0]} failed: {err[-1] if err else p.returncode}")

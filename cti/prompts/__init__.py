"""The sound files the dialplan and the IVR handlers play (manifest.toml) and which are missing.

A prompt is present when Asterisk would find it: `<dir>/<name>.<ext>` for a format it plays, where
<dir> is the sounds directory of the channel language (`/var/lib/asterisk/sounds/zh`). The files are
made by `cti prompts build` (cti/prompts/build.py).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path

# extensions of the file formats an Asterisk 22 with our modules.conf can play (format_wav, format_pcm,
# format_sln, format_gsm, format_g722)
FORMATS = ("wav", "sln", "gsm", "ulaw", "alaw", "g722", "sln16", "wav16")


@dataclass(frozen=True, slots=True)
class Prompt:
    name: str  # relative to the language's sounds dir, no extension: "cti/night-welcome"
    text: str | None = None  # what it says, in Chinese characters
    pinyin: str | None = None  # what espeak-ng speaks (tone numbers)
    tone: tuple[float, float] | None = None  # (Hz, seconds) sine, for "beep"


@cache
def manifest() -> dict[str, Prompt]:
    data = tomllib.loads(files("cti.prompts").joinpath("manifest.toml").read_text(encoding="utf-8"))
    out: dict[str, Prompt] = {}
    for name, entry in data["prompts"].items():
        tone = entry.get("tone")
        tone_t = (float(tone[0]), float(tone[1])) if tone else None
        out[name] = Prompt(name, entry.get("text"), entry.get("pinyin"), tone_t)
        if (out[name].pinyin is None) == (tone is None) or (out[name].text is None) != (tone is not None):
            raise ValueError(f"prompt {name}: needs text and pinyin, or a tone")
    return out


def names() -> frozenset[str]:
    return frozenset(manifest())


def present(sounds_dir: Path, name: str) -> bool:
    return any((sounds_dir / f"{name}.{ext}").is_file() for ext in FORMATS)


def missing(sounds_dir: Path) -> list[str]:
    """Manifest prompts Asterisk would not find in sounds_dir, in manifest order."""
    return [name for name in manifest() if not present(sounds_dir, name)]


def report(sounds_dir: Path) -> str | None:
    """One line for `cti serve` / `cti check`, or None when every prompt is there."""
    if not sounds_dir.is_dir():
        return (
            f"prompts: directory {sounds_dir} does not exist; callers would hear no prompts "
            f"(set prompts.dir / CTI_PROMPTS__DIR to Asterisk's sounds/zh, see `cti prompts build`)"
        )
    gone = missing(sounds_dir)
    if not gone:
        return None
    return f"prompts: {len(gone)} of {len(manifest())} missing in {sounds_dir}: {', '.join(gone)}"

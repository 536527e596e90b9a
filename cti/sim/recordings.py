"""MixMonitor (app_mixmonitor) and the WAV files it and RECORD FILE leave behind.

MixMonitorStart / MIXMONITOR_FILENAME / MixMonitorStop as captures 05a-05b; the file holds silence for
the whole recorded span (a known difference, see the package docstring). A recording still running
when its channel hangs up is closed without MixMonitorStop, as 05a shows.
"""

from __future__ import annotations

import os
import wave
from pathlib import Path

from cti.sim.core import Core
from cti.sim.model import Channel


class MixMonitor:
    def __init__(self, core: Core, write_audio: bool = True) -> None:
        self.core = core
        # real WAVs by default (capture 05a's sizes are tested); a rehearsal of thousands of calls
        # wants the events, not gigabytes of silence written on the event loop
        self.write_audio = write_audio
        core.hangup_watchers.append(self._hangup)

    def start(self, ch: Channel, path: str) -> None:
        ch.recording = (path, self.core.now)
        self.core.varset(ch, "MIXMONITOR_FILENAME", path)
        self.core.emit("MixMonitorStart", "call", ch.snapshot(), ch.name)

    def stop(self, ch: Channel, stopped: bool) -> None:
        assert ch.recording is not None
        path, started = ch.recording
        ch.recording = None
        if self.write_audio:
            write_wav(path, self.core.now - started)
        if stopped:
            self.core.emit("MixMonitorStop", "call", ch.snapshot(), ch.name)

    def _hangup(self, ch: Channel) -> None:
        if ch.recording is not None:
            self.stop(ch, stopped=False)


def write_wav(path: str, seconds: float, rate: int = 8000, mkdir: bool = True) -> None:
    """Silence, 8 kHz 16-bit mono like MixMonitor's .wav (44-byte header + 2 bytes per sample).
    MixMonitor creates missing directories; RECORD FILE does not (mkdir=False, capture 15)."""
    p = Path(path)
    try:
        if mkdir:
            p.parent.mkdir(parents=True, exist_ok=True)
        frames = int(max(0.0, seconds) * rate)
        with wave.open(os.fspath(p), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            chunk = b"\0\0" * rate
            left = frames
            while left > 0:
                n = min(left, rate)
                w.writeframesraw(chunk[: n * 2])
                left -= n
            w.writeframes(b"")
    except OSError:
        pass  # Asterisk logs and carries on when it cannot open the file

"""Where a call's recording and a night caller's spoken name are written (settings.recording.path_pattern).

Small on purpose: the degraded-mode script (a process per call) imports it too.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path, PurePosixPath

_SAFE_ID = re.compile(r"[^0-9A-Za-z._-]")


def recording_path(pattern: str, now_local: datetime, linkedid: str, uniqueid: str) -> str:
    """strftime fields of the local time plus {linkedid}/{uniqueid}."""
    safe_linked = _SAFE_ID.sub("_", linkedid) or "unknown"
    safe_unique = _SAFE_ID.sub("_", uniqueid) or "unknown"
    filled = pattern.replace("{linkedid}", safe_linked).replace("{uniqueid}", safe_unique)
    return now_local.strftime(filled)


def name_file_base(pattern: str, now_local: datetime, linkedid: str, uniqueid: str) -> str:
    """Where the caller's spoken name goes (no extension): `<linkedid>-name` in the fixed leading
    directory of the recording pattern (`/var/spool/asterisk/monitor` for the default), never in
    its dated subdirectories. RECORD FILE does not create directories (capture 15: `(writefile)`
    for .../2026/11/28/ after midnight, before any MixMonitor had made it); the leading directory
    exists before the first call (Asterisk installs it; compose mounts the recordings volume
    there). The date is in the linkedid (epoch seconds). Decision 0305."""
    p = PurePosixPath(recording_path(pattern, now_local, linkedid, uniqueid))
    return str(PurePosixPath(fixed_dir(pattern)) / (p.stem + "-name"))


def fixed_dir(pattern: str) -> str:
    """`/a/b/%Y/%m/{linkedid}.wav` -> `/a/b`: the directories before the first field."""
    fixed: list[str] = []
    for part in PurePosixPath(pattern).parent.parts:
        if "%" in part or "{" in part:
            break
        fixed.append(part)
    return str(PurePosixPath(*fixed)) if fixed else "."


def inside(root: Path | str, path: Path | str) -> Path | None:
    """The recording file `path` (relative to `root`, or absolute) with symlinks and `..` resolved,
    if it really is a file under `root`; None otherwise. A recording row's path is data (a DB row
    written from a dialplan variable): it must never name a file elsewhere on the machine."""
    real_root = Path(os.path.realpath(root))
    p = Path(path)
    real = Path(os.path.realpath(p if p.is_absolute() else real_root / p))
    return real if real.is_relative_to(real_root) and real.is_file() else None

"""Where the shared reference material lives, for every test that replays it.

`SHARED_DIR` if set (not a CTI_ name: the settings loader refuses unknown CTI_ variables), else
`shared/` next to the repository root (`../shared` from a checkout, as on the development machines
and in CI). No absolute path: a clean clone anywhere else finds them too.
"""

from __future__ import annotations

import os
from pathlib import Path

from cti.ami.codec import Decoder, Message

SHARED = Path(os.environ.get("SHARED_DIR") or Path(__file__).absolute().parents[2] / "shared")
CAPTURES = SHARED / "asterisk-captures"  # real Asterisk 22.10.1 wire captures (INDEX.md)
AMI_FIXTURES = SHARED / "ami-fixtures"  # recorded AMI scenarios from other servers


def capture_dir(scenario: str) -> Path:
    """The capture whose directory name starts with `scenario` ("07", "18-", "01-inbound-answered")."""
    exact = CAPTURES / scenario
    if exact.is_dir():
        return exact
    return next(p for p in sorted(CAPTURES.glob(f"{scenario}*")) if p.is_dir())


def capture_names() -> list[str]:
    """Every numbered capture directory."""
    return sorted(p.name for p in CAPTURES.iterdir() if p.is_dir() and p.name[0].isdigit())


def ami_raw(scenario: str) -> bytes:
    """The AMI bytes Asterisk sent in a capture (`ami.raw`), banner included."""
    return (capture_dir(scenario) / "ami.raw").read_bytes()


def ami_text_frames(
    scenario: str, *, event: str | None = None, rename: tuple[str, str] | None = None
) -> list[dict[str, str]]:
    """Received event frames of a capture's ami.txt (comment lines dropped), optionally only those of
    one `event`. The captures used ChannelIds like cti-cb-0004; `rename` maps one to another form,
    nothing else changes."""
    text = (capture_dir(scenario) / "ami.txt").read_text("utf-8")
    if rename:
        text = text.replace(*rename)
    out = []
    for block in text.split("\n\n"):
        lines = [ln for ln in block.splitlines() if ln and not ln.startswith("#")]
        f = dict(ln.split(": ", 1) if ": " in ln else (ln.rstrip(":"), "") for ln in lines)
        if "Event" in f and (event is None or f["Event"] == event):
            out.append(f)
    return out


def capture_events(scenario: str) -> list[Message]:
    """The timestamped events of a capture's `ami.raw`, decoded by our own codec, in wire order."""
    return [
        m
        for m in Decoder().feed(ami_raw(scenario))[1:]
        if isinstance(m, Message) and m.is_event and "Timestamp" in m
    ]

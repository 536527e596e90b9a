"""Where the benchmarks find the reference captures: `SHARED_DIR` if set, else `shared/` beside the
repository (`../shared` from a checkout), as tests/captures.py does for the tests."""

from __future__ import annotations

import os
from pathlib import Path

SHARED = Path(os.environ.get("SHARED_DIR") or Path(__file__).resolve().parents[2] / "shared")
CAPTURES = SHARED / "asterisk-captures"

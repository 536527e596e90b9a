"""Where the shared reference material lives, for every test that replays it.

`CTI_SHARED_DIR` if set, else `shared/` next to the repository root (`../shared` from a checkout, as on
the development machines and in CI). No absolute path: a clean clone anywhere else finds them too.
"""

from __future__ import annotations

import os
from pathlib import Path

SHARED = Path(os.environ.get("CTI_SHARED_DIR") or Path(__file__).absolute().parents[2] / "shared")
CAPTURES = SHARED / "asterisk-captures"  # real Asterisk 22.10.1 wire captures (INDEX.md)
AMI_FIXTURES = SHARED / "ami-fixtures"  # recorded AMI scenarios from other servers

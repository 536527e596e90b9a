"""Running `python -m cti ...` as a child process, as an operator would, with extra environment."""

from __future__ import annotations

import asyncio
import os
import sys


async def run_cti(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `cti *args`; 60 s at most."""
    p = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cti", *args, env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(p.communicate(), 60)
    return p.returncode or 0, out.decode(), err.decode()

"""What the web app writes to PostgreSQL itself: the audit row of a revealed number (R-MASK)."""

from __future__ import annotations

from datetime import datetime
from typing import Any


async def record_reveal(conn: Any, *, at: datetime, username: str, subject: str, reason: str) -> None:
    """Who saw which caller's full number, when and why (the reason is kept to 500 characters)."""
    await conn.execute(
        "INSERT INTO number_reveals (at, username, subject, reason) VALUES ($1, $2, $3, $4)",
        at, username, subject, reason[:500],
    )  # fmt: skip

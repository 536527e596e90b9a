"""Money is integer fen (分) everywhere it is stored or summed; 元 only on display. Policy figures are
Decimal strings ("0.20"), so 0.1 + 0.2 never meets a float."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal


def to_fen(yuan: Decimal | int | str) -> int:
    return int((Decimal(yuan) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def yuan(fen: int) -> str:
    """1050 -> '10.50' (a string: what a manager reads and what a CSV carries)."""
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}{fen // 100}.{fen % 100:02d}"

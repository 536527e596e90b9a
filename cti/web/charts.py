"""Charts as inline SVG built on the server: no script, no CDN (a center's network may have no
internet), readable in any browser and printable."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

PALETTE = ("#3b82f6", "#f97316", "#10b981", "#a855f7", "#ef4444")


def bars(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    title: str,
    line: tuple[str, Sequence[float | None]] | None = None,
    width: int = 760,
    height: int = 240,
) -> str:
    """Grouped bars (one group per label) with an optional 0-1 line on its own right-hand scale
    (service level over calls per hour)."""
    pad_l, pad_r, pad_t, pad_b = 40, 40 if line else 10, 28, 42
    w, h = width - pad_l - pad_r, height - pad_t - pad_b
    top = max([v for _, vs in series for v in vs] + [1])
    n = max(len(labels), 1)
    gw = w / n
    bw = max(gw * 0.8 / max(len(series), 1), 1)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img"'
        f' aria-label="{escape(title)}"><title>{escape(title)}</title>',
        f'<text x="{pad_l}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
        f'<line x1="{pad_l}" y1="{pad_t + h}" x2="{pad_l + w}" y2="{pad_t + h}" stroke="#999"/>',
        f'<text x="{pad_l - 4}" y="{pad_t + 4}" font-size="10" text-anchor="end">{top:g}</text>',
    ]
    for si, (name, values) in enumerate(series):
        color = PALETTE[si % len(PALETTE)]
        for i, v in enumerate(values):
            bh = h * v / top
            x = pad_l + i * gw + gw * 0.1 + si * bw
            out.append(
                f'<rect x="{x:.1f}" y="{pad_t + h - bh:.1f}" width="{bw:.1f}" height="{bh:.1f}"'
                f' fill="{color}">'
                f"<title>{escape(labels[i])} {escape(name)}: {v:g}</title></rect>"
            )
        out.append(
            f'<rect x="{pad_l + 110 * si}" y="{height - 14}" width="10" height="10" fill="{color}"/>'
            f'<text x="{pad_l + 110 * si + 14}" y="{height - 5}" font-size="11">{escape(name)}</text>'
        )
    step = max(1, n // 12)
    for i in range(0, len(labels), step):
        out.append(
            f'<text x="{pad_l + i * gw + gw / 2:.1f}" y="{pad_t + h + 14}" font-size="10"'
            f' text-anchor="middle">{escape(labels[i])}</text>'
        )
    if line is not None:
        name, values = line
        pts = [
            f"{pad_l + i * gw + gw / 2:.1f},{pad_t + h - h * v:.1f}"
            for i, v in enumerate(values)
            if v is not None
        ]
        if pts:
            out.append(f'<polyline points="{" ".join(pts)}" fill="none" stroke="#111" stroke-width="2"/>')
        x = pad_l + 110 * len(series)
        out.append(
            f'<line x1="{x}" y1="{height - 9}" x2="{x + 10}" y2="{height - 9}"'
            ' stroke="#111" stroke-width="2"/>'
            f'<text x="{x + 14}" y="{height - 5}" font-size="11">{escape(name)}</text>'
            f'<text x="{pad_l + w + 4}" y="{pad_t + 4}" font-size="10">100%</text>'
        )
    out.append("</svg>")
    return "".join(out)

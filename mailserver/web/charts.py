"""Inline SVG charts (no script, no external asset): a bar chart with a text
alternative, so screen readers get the numbers too (WCAG 2.1, 1.1.1)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape


def bar_chart(labels: Sequence[str], values: Sequence[int], *, title: str, width: int = 720,
              height: int = 220) -> str:
    """An SVG bar chart; ``labels`` and ``values`` have the same length."""
    if len(labels) != len(values):
        raise ValueError("labels and values differ in length")
    top, bottom, left = 16, 36, 36
    plot_h = height - top - bottom
    plot_w = width - left - 8
    peak = max([*values, 1])
    n = max(len(values), 1)
    slot = plot_w / n
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 8}" y2="{top + plot_h}" class="axis"/>',
        f'<text x="{left - 4}" y="{top + 4}" text-anchor="end" class="tick">{peak}</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end" class="tick">0</text>',
    ]
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        bar_h = plot_h * value / peak
        x = left + i * slot + slot * 0.15
        y = top + plot_h - bar_h
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{bar_h:.1f}" class="bar">'
            f"<title>{escape(label)}: {value}</title></rect>"
        )
        if i % max(1, n // 12) == 0:
            parts.append(
                f'<text x="{x + slot * 0.35:.1f}" y="{height - bottom + 16}" text-anchor="middle" '
                f'class="tick">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)

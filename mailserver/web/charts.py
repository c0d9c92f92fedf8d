"""Inline SVG charts (no script, no external asset): a bar chart with a text
alternative, so screen readers get the numbers too (WCAG 2.1, 1.1.1).

The markup is the template ``templates/bar_chart.html`` (autoescaped); this
module computes the geometry."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import jinja2

_ENV: Final = jinja2.Environment(
    loader=jinja2.PackageLoader("mailserver.web", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


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
    bars = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        bar_h = plot_h * value / peak
        x = left + i * slot + slot * 0.15
        bars.append({
            "x": f"{x:.1f}", "y": f"{top + plot_h - bar_h:.1f}", "width": f"{slot * 0.7:.1f}",
            "height": f"{bar_h:.1f}", "label": label, "value": value,
            "labelled": i % max(1, n // 12) == 0, "label_x": f"{x + slot * 0.35:.1f}",
        })
    return _ENV.get_template("bar_chart.html").render(
        width=width, height=height, title=title, left=left, top=top, base=top + plot_h, peak=peak,
        bars=bars, label_y=height - bottom + 16,
    )

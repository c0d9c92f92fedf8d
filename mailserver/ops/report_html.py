"""The usage report as one self-contained HTML page (inline SVG charts, no external assets).

Vietnamese first with English beside it, as staff read it; ``render_usage_html``
returns the whole document and ``usage_body_html`` only the report's body, so
the web portal can put it inside its own layout. The markup is in Jinja2
templates (``mailserver/ops/templates``, autoescaped: every value is
escaped); this module computes what they show: the texts of the cells and the
geometry of the charts.

Charts name agencies by their names (the code is in the tooltip), times are in
province time with the offset written, sizes in KB/MB/GB. Each chart is sized
to its longest title and label and carries a ``viewBox``, so it scales down to
a narrow page as a whole instead of being clipped; titles are two lines,
Vietnamese then English.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import jinja2
from markupsafe import Markup

from mailserver.ops.report import (
    ACCOUNT_COLUMNS,
    AGENCY_COLUMNS,
    CHECK_RULE,
    KINDS,
    AgencyUsage,
    UsageReport,
    _cell,
    human_size,
    local_time,
)

_ENV: Final = jinja2.Environment(
    loader=jinja2.PackageLoader("mailserver.ops", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

_COLOURS: Final = ("#3465a4", "#73d216", "#f57900", "#cc0000")


_CHAR: Final = 6.6
"""Estimated advance of one character at 11 px (a little over the usual 0.55 em)."""
_TITLE_CHAR: Final = 7.4
"""The same for the bold 12 px title."""
_LABEL_MAX: Final = 44
"""Characters of an agency name shown beside its bars; the whole name is in the tooltip."""
_BAR_HEIGHT: Final = 12
_BAR_WIDTH: Final = 360
"""Pixels of the longest bar."""


@dataclass(frozen=True, slots=True)
class LegendKey:
    y: int
    colour: str
    name: str


@dataclass(frozen=True, slots=True)
class Bar:
    y: int
    width: int
    colour: str
    text: str


@dataclass(frozen=True, slots=True)
class ChartRow:
    y: int
    """Baseline of the label."""
    label: str
    tip: str
    bars: tuple[Bar, ...]


@dataclass(frozen=True, slots=True)
class BarChart:
    """A horizontal grouped bar chart, laid out (``report_chart.html`` draws it)."""

    title: tuple[str, str]
    """(Vietnamese, English)."""
    width: int
    height: int
    left: int
    """Where the bars start (right of the longest label)."""
    legend: tuple[LegendKey, ...]
    rows: tuple[ChartRow, ...]
    bar_height: int = _BAR_HEIGHT


def _short(label: str) -> str:
    return label if len(label) <= _LABEL_MAX else label[: _LABEL_MAX - 1] + "…"


def _bars(title: tuple[str, str], labels: Sequence[tuple[str, str]],
          series: Sequence[tuple[str, Sequence[float]]], *, maximum: float | None = None,
          suffix: str = "") -> BarChart:
    """Lay out a grouped bar chart. ``title`` is (Vietnamese, English);
    ``labels`` are (shown label, tooltip); ``series`` (name, one value per label)."""
    row_h = 14 * len(series) + 10
    left = int(min(max([60.0, *(len(_short(name)) * _CHAR for name, _ in labels)]), 320)) + 12
    top = 46 + 16 * len(series)
    height = top + row_h * max(len(labels), 1) + 10
    peak = maximum or max([1.0, *(v for _, values in series for v in values)])
    legend_w = max([0.0, *(14 + len(name) * _CHAR for name, _ in series)])
    full = int(max(left + _BAR_WIDTH + 70, len(title[0]) * _TITLE_CHAR, len(title[1]) * _CHAR, legend_w) + 10)
    legend = tuple(LegendKey(40 + 16 * i, _COLOURS[i % 4], name) for i, (name, _) in enumerate(series))
    rows = []
    for row, (label, tip) in enumerate(labels):
        y0 = top + row * row_h
        bars = tuple(
            Bar(y0 + i * 14, 0 if peak <= 0 else int(_BAR_WIDTH * values[row] / peak), _COLOURS[i % 4],
                f"{values[row]:g}{suffix}")
            for i, (_, values) in enumerate(series)
        )
        rows.append(ChartRow(y0 + _BAR_HEIGHT, _short(label), tip, bars))
    return BarChart(title, full, height, left, legend, tuple(rows))


def _agency_label(a: AgencyUsage) -> tuple[str, str]:
    """(agency name, tooltip naming the code) for a chart row."""
    return (a.name or a.code or "—", f"{a.name} ({a.code})" if a.code else a.name)


def _charts(report: UsageReport) -> list[BarChart]:
    agencies = report.agencies
    labels = [_agency_label(a) for a in agencies]
    traffic = _bars(
        ("Thư gửi và nhận", "Mail sent and received"),
        labels,
        [
            ("Gửi nội bộ / sent internal", [a.sent_internal for a in agencies]),
            ("Gửi ra ngoài / sent external", [a.sent_external for a in agencies]),
            ("Nhận nội bộ / received internal", [a.received_internal for a in agencies]),
            ("Nhận từ ngoài / received external", [a.received_external for a in agencies]),
        ],
    )
    with_mailbox = [a for a in agencies if a.mailbox is not None]
    compliance = _bars(
        (f"Tỷ lệ ngày làm việc hộp thư cơ quan được kiểm tra ≥ {report.min_checks} lần",
         f"Share of working days with the agency mailbox checked at least {report.min_checks} times"),
        [_agency_label(a) for a in with_mailbox],
        [("% ngày đạt / % of days", [round(100 * (a.check_rate or 0.0), 1) for a in with_mailbox])],
        maximum=100.0,
        suffix="%",
    )
    accounts = _bars(
        ("Hộp thư đã dùng và chưa dùng", "Mailboxes used and never used"),
        labels,
        [
            ("Đã dùng / used", [a.active for a in agencies]),
            ("Chưa dùng / never used", [a.never_logged_in for a in agencies]),
        ],
    )
    return [traffic, accounts, compliance]


_TEXT_COLUMNS: Final = frozenset({"code", "name", "agency_code", "address", "kind"})
"""Columns aligned left (the rest are numbers)."""


def _columns(columns: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """(Vietnamese, English) heading of each column."""
    return [(label.partition(" / ")[0], label.partition(" / ")[2]) for _, label in columns]


def _table(
    items: Sequence[object], columns: Sequence[tuple[str, str]], offset: str
) -> list[list[tuple[str, bool]]]:
    """Each row's cells: (text, aligned left)."""

    def value(key: str, raw: object) -> str:
        if key == "storage_bytes" and isinstance(raw, int):
            return human_size(raw)
        if key == "kind" and isinstance(raw, str):
            return KINDS.get(raw, raw)
        return _cell(raw, offset)

    return [[(value(k, getattr(item, k)), k in _TEXT_COLUMNS) for k, _ in columns] for item in items]


def usage_body_html(report: UsageReport) -> str:
    offset = report.utc_offset
    t = report.totals
    totals = {
        "accounts": t.get("accounts", 0),
        "active": t.get("active", 0),
        "never_logged_in": t.get("never_logged_in", 0),
        "sent": t.get("sent_internal", 0) + t.get("sent_external", 0),
        "received": t.get("received_internal", 0) + t.get("received_external", 0),
        "storage": human_size(t.get("storage_bytes", 0)),
    }
    return _ENV.get_template("usage_report_body.html").render(
        start=f"{report.start:%d/%m/%Y}",
        end=f"{report.end:%d/%m/%Y}",
        min_checks=report.min_checks,
        check_rule=CHECK_RULE,
        offset=offset,
        totals=totals,
        charts=_charts(report),
        agency_columns=_columns(AGENCY_COLUMNS),
        agency_rows=_table(report.agencies, AGENCY_COLUMNS, offset),
        account_columns=_columns(ACCOUNT_COLUMNS),
        account_rows=_table(report.accounts, ACCOUNT_COLUMNS, offset),
        generated_at=local_time(report.generated_at, offset),
    )


def render_usage_html(report: UsageReport) -> str:
    page = _ENV.get_template("usage_report.html").render(
        start=report.start, end=report.end, body=Markup(usage_body_html(report))  # noqa: S704 - rendered above
    )
    return page + "\n"

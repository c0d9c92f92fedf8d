"""The usage report as one self-contained HTML page (inline SVG charts, no external assets).

Vietnamese first with English beside it, as staff read it; ``render_usage_html``
returns the whole document and ``usage_body_html`` only the report's body, so
the web portal can put it inside its own layout. Every value is escaped.

Charts name agencies by their names (the code is in the tooltip), times are in
province time with the offset written, sizes in KB/MB/GB. Each chart is sized
to its longest title and label and carries a ``viewBox``, so it scales down to
a narrow page as a whole instead of being clipped; titles are two lines,
Vietnamese then English.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Final

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

_STYLE: Final = """
body{font-family:"Noto Sans","Segoe UI",Arial,sans-serif;margin:2em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.85em}
th,td{border:1px solid #bbb;padding:.25em .5em;text-align:right}
th{background:#eef}td.t,th.t{text-align:left}
.en{color:#666;font-weight:normal}
svg text{font-size:11px;font-family:inherit}
"""

_COLOURS: Final = ("#3465a4", "#73d216", "#f57900", "#cc0000")


_CHAR: Final = 6.6
"""Estimated advance of one character at 11 px (a little over the usual 0.55 em)."""
_TITLE_CHAR: Final = 7.4
"""The same for the bold 12 px title."""
_LABEL_MAX: Final = 44
"""Characters of an agency name shown beside its bars; the whole name is in the tooltip."""


def _short(label: str) -> str:
    return label if len(label) <= _LABEL_MAX else label[: _LABEL_MAX - 1] + "…"


def _bars(title: tuple[str, str], labels: Sequence[tuple[str, str]],
          series: Sequence[tuple[str, Sequence[float]]], *, maximum: float | None = None,
          suffix: str = "") -> str:
    """Horizontal grouped bar chart as inline SVG. ``title`` is (Vietnamese,
    English); ``labels`` are (shown label, tooltip)."""
    row_h, bar_h, width = 14 * len(series) + 10, 12, 360
    left = int(min(max([60.0, *(len(_short(name)) * _CHAR for name, _ in labels)]), 320)) + 12
    top = 46 + 16 * len(series)
    height = top + row_h * max(len(labels), 1) + 10
    peak = maximum or max([1.0, *(v for _, values in series for v in values)])
    legend_w = max([0.0, *(14 + len(name) * _CHAR for name, _ in series)])
    full = int(max(left + width + 70, len(title[0]) * _TITLE_CHAR, len(title[1]) * _CHAR, legend_w) + 10)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="report-chart" width="{full}" '
        f'height="{height}" viewBox="0 0 {full} {height}" aria-label="{escape(" / ".join(title))}">',
        f"<title>{escape(' / '.join(title))}</title>",
        f'<text x="0" y="15" font-weight="bold" font-size="12">{escape(title[0])}</text>',
        f'<text x="0" y="31" fill="#555">{escape(title[1])}</text>',
    ]
    for i, (name, _) in enumerate(series):
        y = 40 + 16 * i
        parts.append(f'<rect x="0" y="{y}" width="10" height="10" fill="{_COLOURS[i % 4]}"/>')
        parts.append(f'<text x="14" y="{y + 9}">{escape(name)}</text>')
    for row, (label, tip) in enumerate(labels):
        y0 = top + row * row_h
        tooltip = f"<title>{escape(tip)}</title>"
        parts.append(f'<text x="0" y="{y0 + bar_h}">{tooltip}{escape(_short(label))}</text>')
        for i, (_, values) in enumerate(series):
            value = values[row]
            w = 0 if peak <= 0 else int(width * value / peak)
            y = y0 + i * 14
            parts.append(f'<rect x="{left}" y="{y}" width="{w}" height="{bar_h}" fill="{_COLOURS[i % 4]}"/>')
            text = f"{value:g}{suffix}"
            parts.append(f'<text x="{left + w + 4}" y="{y + bar_h - 2}">{escape(text)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _agency_label(a: AgencyUsage) -> tuple[str, str]:
    """(agency name, tooltip naming the code) for a chart row."""
    return (a.name or a.code or "—", f"{a.name} ({a.code})" if a.code else a.name)


def usage_body_html(report: UsageReport) -> str:
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

    def header_row(columns: Sequence[tuple[str, str]]) -> str:
        cells = []
        for _key, label in columns:
            vi, _, en = label.partition(" / ")
            cells.append(f'<th class="t">{escape(vi)}<br><span class="en">{escape(en)}</span></th>')
        return "<tr>" + "".join(cells) + "</tr>"

    offset = report.utc_offset

    def value(key: str, raw: object) -> str:
        if key == "storage_bytes" and isinstance(raw, int):
            return human_size(raw)
        if key == "kind" and isinstance(raw, str):
            return KINDS.get(raw, raw)
        return _cell(raw, offset)

    agency_rows = "".join(
        "<tr>" + "".join(
            f'<td{" class=t" if k in ("code", "name") else ""}>{escape(value(k, getattr(a, k)))}</td>'
            for k, _ in AGENCY_COLUMNS
        ) + "</tr>"
        for a in agencies
    )
    account_rows = "".join(
        "<tr>" + "".join(
            f'<td{" class=t" if k in ("agency_code", "address", "kind") else ""}>'
            f"{escape(value(k, getattr(a, k)))}</td>"
            for k, _ in ACCOUNT_COLUMNS
        ) + "</tr>"
        for a in report.accounts
    )
    t = report.totals
    summary = (
        f"<p>Tổng số hộp thư / accounts: <b>{t.get('accounts', 0)}</b>; đã dùng / used: "
        f"<b>{t.get('active', 0)}</b>; chưa dùng / never used: "
        f"<b>{t.get('never_logged_in', 0)}</b>; "
        f"thư gửi / sent: <b>{t.get('sent_internal', 0) + t.get('sent_external', 0)}</b>; "
        f"thư nhận / received: <b>{t.get('received_internal', 0) + t.get('received_external', 0)}</b>; "
        f"dung lượng / storage: <b>{escape(human_size(t.get('storage_bytes', 0)))}</b>.</p>"
    )
    return (
        f"<h1>Báo cáo khai thác hệ thống thư điện tử tỉnh Đồng Nai<br>"
        f'<span class="en">Mail system usage report</span></h1>'
        f"<p>Kỳ báo cáo / Period: {report.start:%d/%m/%Y} – {report.end:%d/%m/%Y}. "
        f"Theo Quyết định 70/2009/QĐ-UBND, Điều 13 (báo cáo 06 tháng một lần) và Điều 6 khoản 6 "
        f"(kiểm tra hộp thư cơ quan tối thiểu {report.min_checks} lần trong ngày).</p>"
        f'<p class="rule">{escape(CHECK_RULE)}</p>'
        f"<p>Giờ Việt Nam (UTC{escape(offset)}); ngày làm việc tính từ ngày lập cơ quan; truy cập cuối "
        f"gồm cả việc thủ trưởng, người được ủy quyền mở hộp thư cơ quan qua thư mục dùng chung. / Times "
        f"in province time (UTC{escape(offset)}); working days count from the agency's creation; last "
        f"access includes heads and delegates opening the agency mailbox through the shared folder.</p>"
        f"{summary}"
        f"<h2>Biểu đồ <span class=en>/ Charts</span></h2>{traffic}<br>{accounts}<br>{compliance}"
        f"<h2>Theo cơ quan <span class=en>/ By agency</span></h2>"
        f"<table>{header_row(AGENCY_COLUMNS)}{agency_rows}</table>"
        f"<h2>Theo hộp thư <span class=en>/ By account</span></h2>"
        f"<table>{header_row(ACCOUNT_COLUMNS)}{account_rows}</table>"
        f"<p class=en>Lập lúc / generated at {escape(local_time(report.generated_at, offset))}. "
        f"Số thư tính theo thư "
        f"còn lưu trong hộp thư / counts cover mail still held in mailboxes.</p>"
    )


def render_usage_html(report: UsageReport) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="vi"><head><meta charset="utf-8">'
        f"<title>Báo cáo khai thác thư điện tử {report.start} – {report.end}</title>"
        f"<style>{_STYLE}</style></head><body>{usage_body_html(report)}</body></html>\n"
    )

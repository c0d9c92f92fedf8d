"""The usage report as one self-contained HTML page (inline SVG charts, no external assets).

Vietnamese first with English beside it, as staff read it; ``render_usage_html``
returns the whole document and ``usage_body_html`` only the report's body, so
the web portal can put it inside its own layout. Every value is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Final

from mailserver.ops.report import ACCOUNT_COLUMNS, AGENCY_COLUMNS, AgencyUsage, UsageReport, _cell

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


def _human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _bars(title: str, labels: Sequence[str], series: Sequence[tuple[str, Sequence[float]]],
          *, maximum: float | None = None, suffix: str = "") -> str:
    """Horizontal grouped bar chart as inline SVG."""
    row_h, bar_h, left, width = 14 * len(series) + 10, 12, 170, 420
    top = 24 + 16 * len(series)
    height = top + row_h * max(len(labels), 1) + 10
    peak = maximum or max([1.0, *(v for _, values in series for v in values)])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{left + width + 80}" '
        f'height="{height}" aria-label="{escape(title)}">',
        f'<text x="0" y="14" font-weight="bold">{escape(title)}</text>',
    ]
    for i, (name, _) in enumerate(series):
        y = 22 + 16 * i
        parts.append(f'<rect x="0" y="{y}" width="10" height="10" fill="{_COLOURS[i % 4]}"/>')
        parts.append(f'<text x="14" y="{y + 9}">{escape(name)}</text>')
    for row, label in enumerate(labels):
        y0 = top + row * row_h
        parts.append(f'<text x="0" y="{y0 + bar_h}">{escape(label[:26])}</text>')
        for i, (_, values) in enumerate(series):
            value = values[row]
            w = 0 if peak <= 0 else int(width * value / peak)
            y = y0 + i * 14
            parts.append(f'<rect x="{left}" y="{y}" width="{w}" height="{bar_h}" fill="{_COLOURS[i % 4]}"/>')
            text = f"{value:g}{suffix}"
            parts.append(f'<text x="{left + w + 4}" y="{y + bar_h - 2}">{escape(text)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _agency_label(a: AgencyUsage) -> str:
    return a.code or "—"


def usage_body_html(report: UsageReport) -> str:
    agencies = report.agencies
    labels = [_agency_label(a) for a in agencies]
    traffic = _bars(
        "Thư gửi và nhận / Mail sent and received",
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
        f"Tỷ lệ ngày kiểm tra hộp thư cơ quan ≥ {report.min_checks} lần / "
        "Share of working days with the agency mailbox checked",
        [_agency_label(a) for a in with_mailbox],
        [("% ngày đạt / % of days", [round(100 * (a.check_rate or 0.0), 1) for a in with_mailbox])],
        maximum=100.0,
        suffix="%",
    )
    accounts = _bars(
        "Hộp thư đã dùng và chưa đăng nhập / Active and never-logged-in accounts",
        labels,
        [
            ("Đã đăng nhập / active", [a.active for a in agencies]),
            ("Chưa đăng nhập / never logged in", [a.never_logged_in for a in agencies]),
        ],
    )

    def header_row(columns: Sequence[tuple[str, str]]) -> str:
        cells = []
        for _key, label in columns:
            vi, _, en = label.partition(" / ")
            cells.append(f'<th class="t">{escape(vi)}<br><span class="en">{escape(en)}</span></th>')
        return "<tr>" + "".join(cells) + "</tr>"

    def value(key: str, raw: object) -> str:
        if key == "storage_bytes" and isinstance(raw, int):
            return _human_bytes(raw)
        return _cell(raw)

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
        f"<p>Tổng số hộp thư / accounts: <b>{t.get('accounts', 0)}</b>; đã đăng nhập / active: "
        f"<b>{t.get('active', 0)}</b>; chưa đăng nhập / never logged in: "
        f"<b>{t.get('never_logged_in', 0)}</b>; "
        f"thư gửi / sent: <b>{t.get('sent_internal', 0) + t.get('sent_external', 0)}</b>; "
        f"thư nhận / received: <b>{t.get('received_internal', 0) + t.get('received_external', 0)}</b>; "
        f"dung lượng / storage: <b>{escape(_human_bytes(t.get('storage_bytes', 0)))}</b>.</p>"
    )
    return (
        f"<h1>Báo cáo khai thác hệ thống thư điện tử tỉnh Đồng Nai<br>"
        f'<span class="en">Mail system usage report</span></h1>'
        f"<p>Kỳ báo cáo / Period: {report.start:%d/%m/%Y} – {report.end:%d/%m/%Y}. "
        f"Theo Quyết định 70/2009/QĐ-UBND, Điều 13 (báo cáo 06 tháng một lần) và Điều 6 khoản 6 "
        f"(kiểm tra hộp thư cơ quan tối thiểu {report.min_checks} lần trong ngày).</p>"
        f"{summary}"
        f"<h2>Biểu đồ <span class=en>/ Charts</span></h2>{traffic}<br>{accounts}<br>{compliance}"
        f"<h2>Theo cơ quan <span class=en>/ By agency</span></h2>"
        f"<table>{header_row(AGENCY_COLUMNS)}{agency_rows}</table>"
        f"<h2>Theo hộp thư <span class=en>/ By account</span></h2>"
        f"<table>{header_row(ACCOUNT_COLUMNS)}{account_rows}</table>"
        f"<p class=en>Lập lúc / generated at {report.generated_at:%Y-%m-%d %H:%M} UTC. Số thư tính theo thư "
        f"còn lưu trong hộp thư / counts cover mail still held in mailboxes.</p>"
    )


def render_usage_html(report: UsageReport) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="vi"><head><meta charset="utf-8">'
        f"<title>Báo cáo khai thác thư điện tử {report.start} – {report.end}</title>"
        f"<style>{_STYLE}</style></head><body>{usage_body_html(report)}</body></html>\n"
    )

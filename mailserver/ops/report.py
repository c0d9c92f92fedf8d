"""Usage reports and agency-mailbox check compliance, as data.

Decision 70/2009 Điều 7 khoản 2 điểm b and Điều 13: every agency reports the use
of the mail system every six months. Điều 6 khoản 6: the agency mailbox is
checked at least twice a day. ``build_usage_report`` and ``build_check_report``
return plain dataclasses; ``render_table``, ``render_csv``, ``render_json`` here
and ``report_html.render_usage_html`` turn them into what staff read, so the
web portal can show the same numbers.

How the numbers are made
------------------------
* Days are cut at local midnight (``report.utc_offset``, +07:00); the period
  ``--from A --to B`` includes both dates.
* Received: stored copies (outside Sent and Drafts) whose INTERNALDATE falls in
  the period, one per Message-ID per account; internal when the From address is
  in a local domain. Sent: the account's Sent folder plus copies anywhere whose
  From is the account (mail sent inside the province without a Sent copy), one
  per Message-ID; external when any recipient is outside the local domains.
  Mail deleted before the report is run is not counted.
* Last access is the account's last login or, for an agency mailbox, the last
  time its head or a delegate opened it through the shared folder
  (``Shared/<code>/…``), whichever is later; an account with neither is "never
  used". Password age is counted to the end of the period from the last change
  (or the account's creation).
* Check compliance (``CHECK_RULE``): a check is human attention, not a
  client's background sync. It is counted when, in an IMAP session on a folder
  of the agency mailbox, a message body is read (FETCH of BODY[…], BINARY[…],
  RFC822 or RFC822.TEXT without PEEK) or a flag is changed (STORE, \\Seen
  included), or when the portal shows the mailbox; at most one per person per
  hour. Opening or synchronising the mailbox (SELECT, BODY.PEEK as mbsync and
  other sync clients do) is no check. A working day (Monday to Friday, from the
  agency's creation up to today) counts as checked with at least
  ``report.min_checks`` checks. Public holidays are not known to the server.
* What staff read is in province time (``report.utc_offset``) with the offset
  written beside it; sizes in KB/MB/GB (1 KB = 1024 bytes); the text table
  fits 120 columns.
"""

from __future__ import annotations

import csv
import io
import json
import re
import textwrap
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any, Final

from mailserver.config import Config
from storage.activity import ActivityStore, MessageFact
from storage.api import Account, MailStore
from storage.directory import Agency, DirectoryStore

NO_AGENCY: Final = ""
"""Code under which accounts without an agency are grouped."""

TABLE_WIDTH: Final = 120
"""Columns the text report fits in (a terminal, a printed A4 page in landscape)."""

CHECK_RULE: Final = (
    "Một lần kiểm tra được tính khi có người đọc nội dung một thư (FETCH BODY[] / BODY[TEXT] không PEEK) "
    "hoặc đổi cờ của thư (đã đọc, gắn cờ, xóa…) trong hộp thư cơ quan qua IMAP, hoặc khi cổng thông tin "
    "hiển thị hộp thư; "
    "tối đa một lần mỗi người mỗi giờ; chương trình đồng bộ chạy nền (BODY.PEEK, như mbsync) không được "
    "tính. / A check counts when a person reads a message body (FETCH BODY[] / BODY[TEXT] without PEEK) "
    "or changes a message flag (seen, flagged, deleted…) in the agency mailbox over IMAP, or when the portal "
    "shows the mailbox; at most one per person per hour; background sync (BODY.PEEK, as mbsync does) does "
    "not count."
)
"""Điều 6 khoản 6 as measured, written into every report."""

_ADDRESS: Final = re.compile(r"[^\s<>,;:\"'()\[\]]+@[^\s<>,;:\"'()\[\]]+")


class ReportError(ValueError):
    """A report that cannot be made as asked (bad dates, unknown agency)."""


def parse_offset(text: str) -> timezone:
    """``+07:00`` -> a fixed time zone (Viet Nam has no daylight saving)."""
    match = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", text.strip())
    if match is None:
        raise ReportError(f"report.utc_offset must look like +07:00, got {text!r}")
    sign = -1 if match.group(1) == "-" else 1
    return timezone(sign * timedelta(hours=int(match.group(2)), minutes=int(match.group(3))))


def parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ReportError(f"not a date (YYYY-MM-DD): {text!r}") from None


def working_days(start: date, end: date) -> list[date]:
    """Monday to Friday from ``start`` to ``end`` inclusive."""
    days = []
    day = start
    while day <= end:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def _addresses(text: str) -> list[str]:
    return [a.strip(".").lower() for a in _ADDRESS.findall(text)]


def _domain(address: str) -> str:
    return address.rpartition("@")[2]


@dataclass(frozen=True, slots=True)
class AccountUsage:
    address: str
    name: str
    agency_code: str
    kind: str
    """``personal``, ``agency``, ``role`` or ``""`` (not in the directory)."""
    disabled: bool
    created_at: datetime
    last_login_at: datetime | None
    never_logged_in: bool
    password_age_days: int
    password_expired: bool
    storage_bytes: int
    messages: int
    sent_internal: int = 0
    sent_external: int = 0
    received_internal: int = 0
    received_external: int = 0
    last_access_at: datetime | None = None
    """The later of the last login and, for an agency mailbox, the last shared access."""


@dataclass(frozen=True, slots=True)
class AgencyUsage:
    code: str
    name: str
    mailbox: str | None
    accounts: int
    active: int
    never_logged_in: int
    disabled: int
    sent_internal: int
    sent_external: int
    received_internal: int
    received_external: int
    storage_bytes: int
    mean_password_age_days: float
    passwords_expired: int
    working_days: int
    days_checked: int
    """Working days with at least ``min_checks`` opens of the agency mailbox."""
    opens_by_day: tuple[tuple[date, int], ...] = ()
    """Opens of the agency mailbox on each working day of the period (for charts)."""

    @property
    def check_rate(self) -> float | None:
        if self.mailbox is None or not self.working_days:
            return None
        return self.days_checked / self.working_days


@dataclass(frozen=True, slots=True)
class UsageReport:
    start: date
    end: date
    generated_at: datetime
    min_checks: int
    local_domains: tuple[str, ...]
    agencies: tuple[AgencyUsage, ...]
    accounts: tuple[AccountUsage, ...]
    totals: dict[str, int] = field(default_factory=dict)
    utc_offset: str = "+07:00"
    """The province time the report is written in (``report.utc_offset``)."""


@dataclass(frozen=True, slots=True)
class CheckStatus:
    code: str
    name: str
    mailbox: str
    opens: int
    checked: bool


@dataclass(frozen=True, slots=True)
class CheckReport:
    day: date
    working_day: bool
    min_checks: int
    agencies: tuple[CheckStatus, ...]

    @property
    def unchecked(self) -> tuple[CheckStatus, ...]:
        return tuple(a for a in self.agencies if not a.checked)


# -- building ------------------------------------------------------------------


async def _agency_of_accounts(
    accounts: Sequence[Account], directory: DirectoryStore, agencies: Sequence[Agency]
) -> dict[int, tuple[str, str]]:
    """account id -> (agency code, kind)."""
    by_id = {a.id: a.code for a in agencies}
    out: dict[int, tuple[str, str]] = {}
    for agency in agencies:
        if agency.account_id is not None:
            out[agency.account_id] = (agency.code, "agency")
    by_address = {a.address: a.id for a in accounts}
    for person in await directory.list_persons(include_left=True):
        if person.address and person.address in by_address:
            out.setdefault(by_address[person.address], (person.agency_code, "personal"))
    for account in accounts:
        if account.id in out:
            continue
        entry = await directory.lookup_address(account.address)
        if entry is not None:
            code = by_id.get(entry.agency_id, NO_AGENCY) if entry.agency_id is not None else NO_AGENCY
            out[account.id] = (code, str(entry.kind))
    return out


def _local_day(when: datetime, tz: timezone) -> date:
    return when.astimezone(tz).date()


async def build_usage_report(
    config: Config,
    store: MailStore,
    directory: DirectoryStore,
    activity: ActivityStore,
    start: date,
    end: date,
    *,
    agency: str | None = None,
    now: datetime | None = None,
) -> UsageReport:
    """The usage report for ``start``..``end`` (inclusive), all agencies or one."""
    if end < start:
        raise ReportError(f"the period ends ({end}) before it starts ({start})")
    tz = parse_offset(config.report.utc_offset)
    now = now or datetime.now(UTC)
    since = datetime.combine(start, time(), tz)
    until = datetime.combine(end + timedelta(days=1), time(), tz)
    local = tuple(d.lower() for d in config.server.domains)
    max_age = config.accounts.max_password_age_days

    agencies = await directory.list_agencies()
    if agency is not None and not any(a.code == agency for a in agencies):
        raise ReportError(f"no such agency: {agency}")
    accounts = await store.list_accounts()
    membership = await _agency_of_accounts(accounts, directory, agencies)
    used = await activity.storage_used()
    shared = await activity.shared_access()
    account_by_address = {a.address: a.id for a in accounts}

    sent: dict[int, dict[str, bool]] = defaultdict(dict)
    """account -> message key -> external?"""
    received: dict[int, dict[str, bool]] = defaultdict(dict)
    async for fact in activity.message_facts(since, until):
        _count_fact(fact, local, account_by_address, sent, received)

    end_of_period = min(until, now)
    rows: list[AccountUsage] = []
    for account in accounts:
        code, kind = membership.get(account.id, (NO_AGENCY, ""))
        if agency is not None and code != agency:
            continue
        changed = account.password_changed_at or account.created_at
        age = max(0, (end_of_period - changed).days)
        octets, count = used.get(account.id, (0, 0))
        s, r = sent.get(account.id, {}), received.get(account.id, {})
        accessed = [t for t in (account.last_login_at, shared.get(account.id, (None, 0))[0]) if t is not None]
        last_access = max(accessed) if accessed else None
        rows.append(
            AccountUsage(
                address=account.address,
                name=account.name,
                agency_code=code,
                kind=kind,
                disabled=account.disabled,
                created_at=account.created_at,
                last_login_at=account.last_login_at,
                never_logged_in=last_access is None,
                password_age_days=age,
                password_expired=bool(max_age) and age > max_age,
                storage_bytes=octets,
                messages=count,
                sent_internal=sum(1 for ext in s.values() if not ext),
                sent_external=sum(1 for ext in s.values() if ext),
                received_internal=sum(1 for ext in r.values() if not ext),
                received_external=sum(1 for ext in r.values() if ext),
                last_access_at=last_access,
            )
        )

    days = working_days(start, min(end, _local_day(now, tz)))
    opens: dict[int, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    for account_id, at in await activity.mailbox_opens(since, until):
        opens[account_id][_local_day(at, tz)] += 1

    groups: dict[str, list[AccountUsage]] = defaultdict(list)
    for row in rows:
        groups[row.agency_code].append(row)
    out: list[AgencyUsage] = []
    for ag in agencies:
        if agency is not None and ag.code != agency:
            continue
        # Working days count from the agency's creation: a mailbox cannot have
        # been checked before it existed.
        created = _local_day(ag.created_at, tz)
        out.append(_agency_usage(ag.code, ag.name, ag.address, ag.account_id, groups.get(ag.code, []),
                                 [d for d in days if d >= created], opens, config.report.min_checks))
    if agency is None and groups.get(NO_AGENCY):
        out.append(_agency_usage(NO_AGENCY, "Không thuộc cơ quan / No agency", None, None,
                                 groups[NO_AGENCY], days, opens, config.report.min_checks))
    totals = {
        key: sum(getattr(a, key) for a in out)
        for key in ("accounts", "active", "never_logged_in", "disabled", "sent_internal", "sent_external",
                    "received_internal", "received_external", "storage_bytes", "passwords_expired")
    }
    return UsageReport(start, end, now, config.report.min_checks, local, tuple(out), tuple(rows), totals,
                       utc_offset=config.report.utc_offset)


def _count_fact(
    fact: MessageFact,
    local: tuple[str, ...],
    account_by_address: dict[str, int],
    sent: dict[int, dict[str, bool]],
    received: dict[int, dict[str, bool]],
) -> None:
    # One count per Message-ID per account: a COPY or a re-delivery is the same mail.
    key = fact.message_id or f"#{fact.id}"
    senders = _addresses(fact.from_)
    sender = senders[0] if senders else ""
    external_recipients = any(_domain(a) not in local for a in _addresses(fact.recipients))
    if fact.special_use == "\\Sent":
        sent[fact.account_id][key] = external_recipients
        return
    if fact.special_use == "\\Drafts":
        return
    author = account_by_address.get(sender)
    if author is not None:
        # Evidence of sending inside the province even without a Sent copy.
        sent[author].setdefault(key, external_recipients)
    if author != fact.account_id:
        received[fact.account_id][key] = _domain(sender) not in local


def _agency_usage(
    code: str,
    name: str,
    mailbox: str | None,
    mailbox_account: int | None,
    rows: Sequence[AccountUsage],
    days: Sequence[date],
    opens: dict[int, dict[date, int]],
    min_checks: int,
) -> AgencyUsage:
    daily = opens.get(mailbox_account, {}) if mailbox_account is not None else {}
    by_day = tuple((d, daily.get(d, 0)) for d in days)
    return AgencyUsage(
        code=code,
        name=name,
        mailbox=mailbox,
        accounts=len(rows),
        active=sum(1 for r in rows if not r.never_logged_in),
        never_logged_in=sum(1 for r in rows if r.never_logged_in),
        disabled=sum(1 for r in rows if r.disabled),
        sent_internal=sum(r.sent_internal for r in rows),
        sent_external=sum(r.sent_external for r in rows),
        received_internal=sum(r.received_internal for r in rows),
        received_external=sum(r.received_external for r in rows),
        storage_bytes=sum(r.storage_bytes for r in rows),
        mean_password_age_days=round(sum(r.password_age_days for r in rows) / len(rows), 1) if rows else 0.0,
        passwords_expired=sum(1 for r in rows if r.password_expired),
        working_days=len(days) if mailbox is not None else 0,
        days_checked=sum(1 for _, n in by_day if n >= min_checks) if mailbox is not None else 0,
        opens_by_day=by_day if mailbox is not None else (),
    )


async def build_check_report(
    config: Config, directory: DirectoryStore, activity: ActivityStore, day: date
) -> CheckReport:
    """Every agency mailbox with its opens on ``day`` (local time)."""
    tz = parse_offset(config.report.utc_offset)
    since = datetime.combine(day, time(), tz)
    counts: dict[int, int] = defaultdict(int)
    for account_id, _at in await activity.mailbox_opens(since, since + timedelta(days=1)):
        counts[account_id] += 1
    need = config.report.min_checks
    rows = [
        CheckStatus(a.code, a.name, a.address or "", counts.get(a.account_id, 0),
                    counts.get(a.account_id, 0) >= need)
        for a in await directory.list_agencies()
        if a.account_id is not None
    ]
    return CheckReport(day, day.weekday() < 5, need, tuple(rows))


# -- rendering -----------------------------------------------------------------

ACCOUNT_COLUMNS: Final = (
    ("agency_code", "Cơ quan / Agency"),
    ("address", "Địa chỉ / Address"),
    ("kind", "Loại / Kind"),
    ("never_logged_in", "Chưa dùng / Never used"),
    ("last_access_at", "Truy cập cuối / Last access"),
    ("password_age_days", "Tuổi mật khẩu (ngày) / Password age (days)"),
    ("sent_internal", "Gửi nội bộ / Sent internal"),
    ("sent_external", "Gửi ra ngoài / Sent external"),
    ("received_internal", "Nhận nội bộ / Received internal"),
    ("received_external", "Nhận từ ngoài / Received external"),
    ("storage_bytes", "Dung lượng / Storage"),
)
"""Columns of the per-account table (HTML)."""

CSV_COLUMNS: Final = (
    "agency_code", "address", "kind", "never_logged_in", "last_login_at", "password_age_days",
    "sent_internal", "sent_external", "received_internal", "received_external", "storage_bytes",
    "last_access_at",
)
"""Columns of the CSV (machine-readable: raw bytes, ISO times with offset)."""

AGENCY_COLUMNS: Final = (
    ("code", "Mã / Code"),
    ("name", "Cơ quan / Agency"),
    ("accounts", "Hộp thư / Accounts"),
    ("active", "Đã dùng / Used"),
    ("never_logged_in", "Chưa dùng / Never used"),
    ("sent_internal", "Gửi nội bộ / Sent int."),
    ("sent_external", "Gửi ra ngoài / Sent ext."),
    ("received_internal", "Nhận nội bộ / Recv. int."),
    ("received_external", "Nhận từ ngoài / Recv. ext."),
    ("storage_bytes", "Dung lượng / Storage"),
    ("mean_password_age_days", "Tuổi MK TB / Mean pw age"),
    ("days_checked", "Ngày kiểm tra đủ / Days checked"),
    ("working_days", "Ngày làm việc / Working days"),
)
"""Columns of the per-agency table (HTML)."""

KINDS: Final = {"personal": "cá nhân", "agency": "cơ quan", "role": "vai trò", "": "-"}


def human_size(n: int) -> str:
    """Octets for people: ``512 B``, ``1.5 KB``, ``12.3 MB``, ``1.2 GB`` (1 KB = 1024 B)."""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover - the loop always returns


def local_time(value: datetime | None, offset: str, *, zone: bool = True) -> str:
    """``2025-03-05 15:00 +07:00`` in province time (``-`` for None)."""
    if value is None:
        return "-"
    text = value.astimezone(parse_offset(offset)).strftime("%Y-%m-%d %H:%M")
    return f"{text} {offset}" if zone else text


def _cell(value: Any, offset: str = "+07:00") -> str:
    if isinstance(value, bool):
        return "có/yes" if value else "không/no"
    if isinstance(value, datetime):
        return local_time(value, offset, zone=False)
    if value is None:
        return "-"
    return str(value)


@dataclass(frozen=True, slots=True)
class _Column:
    vi: str
    en: str
    right: bool = True
    """Numbers are right-aligned."""


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _table(columns: Sequence[_Column], rows: Sequence[Sequence[str]], *, shrink: int | None = None,
           groups: dict[int, str] | None = None) -> str:
    """A plain-text table with a two-line header (Vietnamese, then English), no
    wider than ``TABLE_WIDTH``: column ``shrink`` gives up room (its cells cut
    with "…") when the others need it. ``groups`` puts a heading line before the
    row of that index."""
    widths = [max([len(c.vi), len(c.en), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]
    gap = 2
    total = sum(widths) + gap * (len(widths) - 1)
    if shrink is not None and total > TABLE_WIDTH:
        floor = max(len(columns[shrink].vi), len(columns[shrink].en), 8)
        widths[shrink] = max(floor, widths[shrink] - (total - TABLE_WIDTH))

    def line(cells: Sequence[str], *, header: bool = False) -> str:
        out = []
        for cell, width, column in zip(cells, widths, columns, strict=True):
            text = _fit(cell, width)
            out.append(text.rjust(width) if column.right and not header else text.ljust(width))
        return (" " * gap).join(out).rstrip()

    lines = [line([c.vi for c in columns], header=True), line([c.en for c in columns], header=True)]
    lines.append((" " * gap).join("-" * w for w in widths))
    for index, row in enumerate(rows):
        if groups and index in groups:
            lines.append(_fit(groups[index], TABLE_WIDTH))
        lines.append(line(row))
    return "\n".join(lines)


def _wrap(text: str) -> str:
    return "\n".join(textwrap.wrap(text, TABLE_WIDTH, break_long_words=False, break_on_hyphens=False))


def render_table(report: UsageReport) -> str:
    """The report as text for a terminal or a printout, at most ``TABLE_WIDTH`` wide."""
    offset = report.utc_offset
    head = "\n".join([
        _wrap(f"Báo cáo khai thác hệ thống thư điện tử / Mail usage report: {report.start} – {report.end}"),
        _wrap(f"Quyết định 70/2009/QĐ-UBND Điều 13; hộp thư cơ quan được kiểm tra tối thiểu "
              f"{report.min_checks} lần/ngày (Điều 6 khoản 6) / agency mailboxes checked at least "
              f"{report.min_checks} times a day."),
        _wrap(CHECK_RULE),
        _wrap(f"Giờ Việt Nam (UTC{offset}); dung lượng 1 KB = 1024 byte / times in province time "
              f"(UTC{offset}); sizes 1 KB = 1024 bytes."),
    ])
    agency_columns = [
        _Column("Mã", "Code", right=False), _Column("Cơ quan", "Agency", right=False),
        _Column("Hộp thư", "Boxes"), _Column("Chưa dùng", "Unused"), _Column("Gửi", "Sent"),
        _Column("Nhận", "Recv."), _Column("Dung lượng", "Storage"), _Column("Tuổi MK", "Pw age"),
        _Column("KT đủ", "Checked"),
    ]
    agency_rows = [
        [a.code or "-", a.name, str(a.accounts), str(a.never_logged_in),
         f"{a.sent_internal}/{a.sent_external}", f"{a.received_internal}/{a.received_external}",
         human_size(a.storage_bytes), f"{a.mean_password_age_days:g}",
         f"{a.days_checked}/{a.working_days}" if a.mailbox is not None else "-"]
        for a in report.agencies
    ]
    legend = _wrap(
        "Gửi, Nhận: nội bộ/ra ngoài tỉnh; Tuổi MK: tuổi mật khẩu trung bình (ngày); KT đủ: ngày làm việc "
        f"có ≥ {report.min_checks} lần kiểm tra / ngày làm việc kể từ khi lập cơ quan. / Sent, Recv.: "
        "internal/external; Pw age: mean password age (days); Checked: working days with at least "
        f"{report.min_checks} checks / working days since the agency was created."
    )
    account_columns = [
        _Column("Địa chỉ", "Address", right=False), _Column("Loại", "Kind", right=False),
        _Column("Truy cập cuối", "Last access", right=False), _Column("Tuổi MK", "Pw age"),
        _Column("Gửi", "Sent"), _Column("Nhận", "Recv."), _Column("Dung lượng", "Storage"),
    ]
    names = {a.code: a.name for a in report.agencies}
    ordered = sorted(report.accounts, key=lambda a: (a.agency_code == NO_AGENCY, a.agency_code, a.address))
    groups: dict[int, str] = {}
    account_rows: list[list[str]] = []
    for a in ordered:
        if not account_rows or ordered[len(account_rows) - 1].agency_code != a.agency_code:
            label = names.get(a.agency_code, "Không thuộc cơ quan / No agency")
            groups[len(account_rows)] = f"[{a.agency_code}] {label}" if a.agency_code else f"[-] {label}"
        account_rows.append([
            a.address, KINDS.get(a.kind, a.kind), local_time(a.last_access_at, offset, zone=False),
            f"{a.password_age_days}{'*' if a.password_expired else ''}",
            f"{a.sent_internal}/{a.sent_external}", f"{a.received_internal}/{a.received_external}",
            human_size(a.storage_bytes),
        ])
    account_legend = _wrap(
        f"Truy cập cuối: đăng nhập hoặc mở qua thư mục dùng chung, giờ UTC{offset} (- : chưa dùng); "
        f"* : mật khẩu hết hạn. / Last access: login or opened through the shared folder, UTC{offset} "
        "(-: never used); *: password expired."
    )
    agencies = _table(agency_columns, agency_rows, shrink=1)
    accounts = _table(account_columns, account_rows, shrink=0, groups=groups)
    return f"{head}\n\n{agencies}\n{legend}\n\n{accounts}\n{account_legend}\n"


def render_csv(report: UsageReport) -> str:
    """One row per account, with the agency's check compliance beside it."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    agencies = {a.code: a for a in report.agencies}
    tz = parse_offset(report.utc_offset)
    writer.writerow([*CSV_COLUMNS, "agency_days_checked", "agency_working_days"])
    for row in report.accounts:
        ag = agencies.get(row.agency_code)
        writer.writerow(
            [_csv_cell(getattr(row, k), tz) for k in CSV_COLUMNS]
            + [ag.days_checked if ag else "", ag.working_days if ag else ""]
        )
    return out.getvalue()


def _csv_cell(value: Any, tz: timezone = UTC) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, datetime):
        return value.astimezone(tz).isoformat()
    return "" if value is None else str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def usage_as_dict(report: UsageReport) -> dict[str, Any]:
    data: dict[str, Any] = _jsonable(asdict(report))
    for ag, src in zip(data["agencies"], report.agencies, strict=True):
        ag["check_rate"] = src.check_rate
    return data


def render_json(report: UsageReport) -> str:
    return json.dumps(usage_as_dict(report), ensure_ascii=False, indent=2)


def render_checks(report: CheckReport) -> str:
    title = "\n".join([
        _wrap(f"Hộp thư cơ quan chưa được kiểm tra đủ {report.min_checks} lần ngày {report.day:%d/%m/%Y} "
              f"(Điều 6 khoản 6) / Agency mailboxes not checked {report.min_checks} times on {report.day}"),
        _wrap(CHECK_RULE),
    ])
    if not report.working_day:
        title += "\n(không phải ngày làm việc / not a working day)"
    rows = report.unchecked
    if not rows:
        return title + "\nKhông có / None\n"
    return title + "\n" + _table(
        [_Column("Mã", "Code", right=False), _Column("Cơ quan", "Agency", right=False),
         _Column("Hộp thư", "Mailbox", right=False), _Column("Số lần kiểm tra", "Checks")],
        [[r.code, r.name, r.mailbox, str(r.opens)] for r in rows], shrink=1,
    ) + "\n"

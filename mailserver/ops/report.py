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
* Active accounts have logged in at least once; password age is counted to the
  end of the period from the last change (or the account's creation).
* Check compliance: the working days (Monday to Friday, up to today) on which
  the agency mailbox was opened (IMAP SELECT/EXAMINE of INBOX, or the web) at
  least ``report.min_checks`` times. Public holidays are not known to the server.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any, Final

from mailserver.config import Config
from storage.activity import ActivityStore, MessageFact
from storage.api import Account, MailStore
from storage.directory import Agency, DirectoryStore

NO_AGENCY: Final = ""
"""Code under which accounts without an agency are grouped."""

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
        rows.append(
            AccountUsage(
                address=account.address,
                name=account.name,
                agency_code=code,
                kind=kind,
                disabled=account.disabled,
                created_at=account.created_at,
                last_login_at=account.last_login_at,
                never_logged_in=account.last_login_at is None,
                password_age_days=age,
                password_expired=bool(max_age) and age > max_age,
                storage_bytes=octets,
                messages=count,
                sent_internal=sum(1 for ext in s.values() if not ext),
                sent_external=sum(1 for ext in s.values() if ext),
                received_internal=sum(1 for ext in r.values() if not ext),
                received_external=sum(1 for ext in r.values() if ext),
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
        out.append(_agency_usage(ag.code, ag.name, ag.address, ag.account_id, groups.get(ag.code, []),
                                 days, opens, config.report.min_checks))
    if agency is None and groups.get(NO_AGENCY):
        out.append(_agency_usage(NO_AGENCY, "Không thuộc cơ quan / No agency", None, None,
                                 groups[NO_AGENCY], days, opens, config.report.min_checks))
    totals = {
        key: sum(getattr(a, key) for a in out)
        for key in ("accounts", "active", "never_logged_in", "disabled", "sent_internal", "sent_external",
                    "received_internal", "received_external", "storage_bytes", "passwords_expired")
    }
    return UsageReport(start, end, now, config.report.min_checks, local, tuple(out), tuple(rows), totals)


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
    ("never_logged_in", "Chưa đăng nhập / Never logged in"),
    ("last_login_at", "Đăng nhập cuối / Last login"),
    ("password_age_days", "Tuổi mật khẩu (ngày) / Password age (days)"),
    ("sent_internal", "Gửi nội bộ / Sent internal"),
    ("sent_external", "Gửi ra ngoài / Sent external"),
    ("received_internal", "Nhận nội bộ / Received internal"),
    ("received_external", "Nhận từ ngoài / Received external"),
    ("storage_bytes", "Dung lượng (byte) / Storage (bytes)"),
)

AGENCY_COLUMNS: Final = (
    ("code", "Mã / Code"),
    ("name", "Cơ quan / Agency"),
    ("accounts", "Hộp thư / Accounts"),
    ("active", "Đã dùng / Active"),
    ("never_logged_in", "Chưa đăng nhập / Never logged in"),
    ("sent_internal", "Gửi nội bộ / Sent int."),
    ("sent_external", "Gửi ra ngoài / Sent ext."),
    ("received_internal", "Nhận nội bộ / Recv. int."),
    ("received_external", "Nhận từ ngoài / Recv. ext."),
    ("storage_bytes", "Dung lượng / Storage"),
    ("mean_password_age_days", "Tuổi MK TB / Mean pw age"),
    ("days_checked", "Ngày kiểm tra đủ / Days checked"),
    ("working_days", "Ngày làm việc / Working days"),
)


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "có/yes" if value else "không/no"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    if value is None:
        return "-"
    return str(value)


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    rows = [list(r) for r in rows]
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def render_table(report: UsageReport) -> str:
    head = (
        f"Báo cáo khai thác hệ thống thư điện tử / Mail usage report: {report.start} – {report.end}\n"
        f"(Quyết định 70/2009/QĐ-UBND Điều 13; kiểm tra hộp thư cơ quan tối thiểu "
        f"{report.min_checks} lần/ngày, Điều 6 khoản 6)\n"
    )
    agencies = _table(
        [h for _, h in AGENCY_COLUMNS],
        ([_cell(getattr(a, k)) for k, _ in AGENCY_COLUMNS] for a in report.agencies),
    )
    accounts = _table(
        [h for _, h in ACCOUNT_COLUMNS],
        ([_cell(getattr(a, k)) for k, _ in ACCOUNT_COLUMNS] for a in report.accounts),
    )
    return f"{head}\n{agencies}\n\n{accounts}\n"


def render_csv(report: UsageReport) -> str:
    """One row per account, with the agency's check compliance beside it."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    agencies = {a.code: a for a in report.agencies}
    writer.writerow([k for k, _ in ACCOUNT_COLUMNS] + ["agency_days_checked", "agency_working_days"])
    for row in report.accounts:
        ag = agencies.get(row.agency_code)
        writer.writerow(
            [_csv_cell(getattr(row, k)) for k, _ in ACCOUNT_COLUMNS]
            + [ag.days_checked if ag else "", ag.working_days if ag else ""]
        )
    return out.getvalue()


def _csv_cell(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
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
    title = (
        f"Hộp thư cơ quan chưa được kiểm tra đủ {report.min_checks} lần ngày {report.day:%d/%m/%Y} "
        f"(Điều 6 khoản 6) / Agency mailboxes not checked {report.min_checks} times on {report.day}"
    )
    if not report.working_day:
        title += "\n(không phải ngày làm việc / not a working day)"
    rows = report.unchecked
    if not rows:
        return title + "\nKhông có / None\n"
    return title + "\n" + _table(
        ["Mã / Code", "Cơ quan / Agency", "Hộp thư / Mailbox", "Số lần mở / Opens"],
        ([r.code, r.name, r.mailbox, str(r.opens)] for r in rows),
    ) + "\n"

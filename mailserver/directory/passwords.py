"""Password rules, password change and reset, expiry warnings.

Decision 70/2009/QĐ-UBND Điều 9 khoản 1 (and Điều 10 khoản 2 for agency
mailboxes): users change the initial password and change passwords regularly.
So:

* a new password has at least ``accounts.min_password_length`` characters and
  three of four classes (lower-case, upper-case, digit, other), does not contain
  the local part or any syllable of three letters or more of the person's name
  (compared accent-folded, "Ngọc" forbids "ngoc"), and is none of the last
  ``accounts.password_history`` passwords;
* ``change_password`` is the one place a user's own change happens (the CLI
  ``mailserver passwd`` and, later, the web portal call it); it clears the
  must-change flag;
* a password older than ``accounts.max_password_age_days`` has expired: the
  ``Authenticator`` answers MUST_CHANGE for it (IMAP ``NO [EXPIRED]``), and
  ``warn_expiring`` delivers a notice into the INBOX once per password,
  ``accounts.password_warning_days`` before.
"""

from __future__ import annotations

import asyncio
import email.utils
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Final

from mailserver.auth import Authenticator, AuthStatus, generate_password, hash_password, verify_password
from mailserver.auth import password_expires_at as password_expires_at
from mailserver.directory.naming import ascii_fold, name_parts_for_password
from mailserver.directory.settings import AccountsSettings
from mailserver.headers import POLICY
from storage.api import Account, MailStore
from storage.directory import By, DirectoryStore

__all__ = [
    "PasswordRejected",
    "change_password",
    "check_strength",
    "password_expires_at",
    "reset_password",
    "warn_expiring",
]

NOTICE_EXPIRY: Final = "password-expiry"
_MIN_NAME_PART: Final = 3
"""Name syllables shorter than this ("An", "Lê") are too common to forbid."""


class PasswordRejected(Exception):  # noqa: N818 - reads as the refusal it is
    """The change was refused; ``reasons`` are bilingual sentences for the user."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


def _classes(password: str) -> int:
    lower = any(c.islower() for c in password)
    upper = any(c.isupper() for c in password)
    digit = any(c.isdigit() for c in password)
    other = any(not c.isalnum() for c in password)
    return lower + upper + digit + other


def check_strength(
    password: str, *, min_length: int, local_part: str = "", names: tuple[str, ...] = ()
) -> list[str]:
    """Every rule ``password`` breaks (empty when it is acceptable)."""
    reasons: list[str] = []
    if len(password) < min_length:
        reasons.append(f"Mật khẩu phải có ít nhất {min_length} ký tự / at least {min_length} characters")
    if _classes(password) < 3:
        reasons.append(
            "Mật khẩu phải có 3 trong 4 loại: chữ thường, chữ hoa, chữ số, ký hiệu / "
            "use 3 of: lower-case, upper-case, digits, symbols"
        )
    folded = "".join(c for c in ascii_fold(password) if c.isalnum())
    if local_part and local_part.lower() in folded:
        reasons.append(f"Mật khẩu không được chứa tên hộp thư / must not contain {local_part!r}")
    parts = sorted({p for p in name_parts_for_password(names) if len(p) >= _MIN_NAME_PART})
    found = [p for p in parts if p in folded]
    if found:
        reasons.append("Mật khẩu không được chứa họ tên / must not contain your name: " + ", ".join(found))
    return reasons


@dataclass(frozen=True, slots=True)
class _Subject:
    account: Account
    names: tuple[str, ...]


async def _subject(store: MailStore, directory: DirectoryStore, address: str) -> _Subject:
    account = await store.get_account(address.strip().lower())
    if account is None:
        raise PasswordRejected(["Không có hộp thư này / no such mailbox"])
    names: tuple[str, ...] = (account.name,)
    person = await directory.person_by_address(account.address)
    if person is not None:
        names = (person.full_name, person.family, person.middle, person.given)
    return _Subject(account, names)


async def _reused(directory: DirectoryStore, account: Account, new: str, history: int) -> bool:
    hashes = [account.password_hash, *await directory.password_hashes(account.id, history)]
    for encoded in hashes:
        if await asyncio.to_thread(verify_password, encoded, new):
            return True
    return False


async def change_password(
    store: MailStore,
    directory: DirectoryStore,
    settings: AccountsSettings,
    address: str,
    old: str,
    new: str,
    *,
    by: By | None = None,
    authenticator: Authenticator | None = None,
    remote_ip: str = "local",
) -> Account:
    """A user's own password change: checks the old password (through the
    ``authenticator``'s throttle when given, as the web portal must), the
    strength rules and the history, then stores the new hash with the
    must-change flag cleared. Raises PasswordRejected."""
    subject = await _subject(store, directory, address)
    account = subject.account
    if authenticator is not None:
        outcome = await authenticator.authenticate(account.address, old, remote_ip)
        good = outcome.status in (AuthStatus.OK, AuthStatus.MUST_CHANGE)
        if outcome.status is AuthStatus.DISABLED:
            raise PasswordRejected(["Hộp thư đã bị khóa / mailbox disabled"])
    else:
        good = await asyncio.to_thread(verify_password, account.password_hash, old)
    if not good:
        raise PasswordRejected(["Mật khẩu cũ không đúng / the old password is wrong"])
    if account.disabled:
        raise PasswordRejected(["Hộp thư đã bị khóa / mailbox disabled"])
    local = account.address.rpartition("@")[0]
    reasons = check_strength(
        new, min_length=settings.min_password_length, local_part=local, names=subject.names
    )
    if not reasons and new == old:
        reasons.append("Mật khẩu mới phải khác mật khẩu cũ / the new password must differ from the old one")
    if not reasons and await _reused(directory, account, new, settings.password_history):
        reasons.append(
            f"Không dùng lại {settings.password_history} mật khẩu gần nhất / "
            f"must not be one of the last {settings.password_history} passwords"
        )
    if reasons:
        raise PasswordRejected(reasons)
    encoded = await asyncio.to_thread(hash_password, new)
    await store.set_password(account.id, encoded, must_change_password=False)
    await directory.add_password_hash(account.id, encoded, keep=settings.password_history)
    await directory.audit("password.change", account.address, by=by or By(account.address))
    changed = await store.get_account_by_id(account.id)
    assert changed is not None  # noqa: S101 - just written
    return changed


async def reset_password(
    store: MailStore, directory: DirectoryStore, settings: AccountsSettings, address: str, *, by: By
) -> str:
    """Issue a new initial password (must be changed at first login, Điều 7
    khoản 1: the Sở TT&TT issues initial passwords). Returns it in clear, once."""
    account = await store.get_account(address.strip().lower())
    if account is None:
        raise PasswordRejected(["Không có hộp thư này / no such mailbox"])
    password = generate_password()
    encoded = await asyncio.to_thread(hash_password, password)
    await store.set_password(account.id, encoded, must_change_password=True)
    await directory.add_password_hash(account.id, encoded, keep=settings.password_history)
    await directory.audit("password.reset", account.address, by=by)
    return password


def _notice(address: str, sender: str, expires: datetime, hostname: str) -> bytes:
    day = expires.astimezone(UTC).strftime("%d/%m/%Y")
    msg = EmailMessage(policy=POLICY)
    msg["From"] = f"Hệ thống thư điện tử tỉnh Đồng Nai <{sender}>"
    msg["To"] = address
    msg["Subject"] = f"Mật khẩu sắp hết hạn ngày {day} / Your password expires on {day}"
    msg["Date"] = email.utils.format_datetime(datetime.now(UTC))
    msg["Message-ID"] = email.utils.make_msgid("pwexpiry", domain=hostname)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(
        f"Kính gửi {address},\n\n"
        f"Mật khẩu hộp thư của Anh/Chị sẽ hết hạn vào ngày {day} (UTC). Theo Quyết định số "
        "70/2009/QĐ-UBND, Điều 9 khoản 1, người sử dụng thường xuyên thay đổi mật khẩu. Sau ngày "
        "này, chương trình thư sẽ báo mật khẩu hết hạn cho đến khi Anh/Chị đổi mật khẩu "
        "(lệnh `mailserver passwd` hoặc trang /password).\n\n"
        f"Dear {address},\n\n"
        f"the password of your mailbox expires on {day} (UTC). After that day your mail client "
        "reports it as expired until you change it (`mailserver passwd` or the /password page).\n\n"
        "-- \nSở Thông tin và Truyền thông tỉnh Đồng Nai\n"
    )
    return msg.as_bytes()


async def warn_expiring(
    store: MailStore,
    directory: DirectoryStore,
    settings: AccountsSettings,
    *,
    sender: str,
    hostname: str,
    now: datetime | None = None,
) -> list[str]:
    """Deliver the expiry notice to every enabled account whose password expires
    within ``password_warning_days``, once per password. Returns the addresses."""
    if settings.max_password_age_days <= 0:
        return []
    now = now or datetime.now(UTC)
    horizon = now + timedelta(days=settings.password_warning_days)
    warned: list[str] = []
    for account in await store.list_accounts():
        if account.disabled or account.must_change_password:
            continue
        expires = password_expires_at(account, settings.max_password_age_days)
        if expires is None or not now <= expires <= horizon:
            continue
        if not await directory.record_notice(account.id, NOTICE_EXPIRY, expires):
            continue
        await store.deliver([account.id], _notice(account.address, sender, expires, hostname), quota=False)
        await directory.audit(
            "password.expiry-warning",
            account.address,
            by=By("system"),
            detail={"expires": expires.isoformat()},
        )
        warned.append(account.address)
    return warned

"""App passwords: one secret per device, created, listed and revoked (CLI and portal).

A new app password is shown once and never again (only its Argon2id hash is
kept, see ``storage.credentials``); a notice is delivered to the account's
INBOX each time one is created, so a password thief who creates one for
himself is seen by the owner.
"""

from __future__ import annotations

import asyncio
import email.utils
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage
from typing import Final

from mailserver.auth import generate_password, hash_password
from mailserver.headers import POLICY
from storage.api import Account, MailStore
from storage.credentials import SCOPES, AppPassword, CredentialStore, selector

LOCAL_TIME: Final = timezone(timedelta(hours=7), "+07:00")
"""Times shown to staff (Indochina Time, no daylight saving)."""
MAX_NAME: Final = 100
MAX_PER_ACCOUNT: Final = 50


class AppPasswordError(ValueError):
    """A request staff can correct; the text is Vietnamese first, English beside it."""


def parse_scopes(text: str) -> tuple[str, ...]:
    """``imap,smtp`` -> ('imap', 'smtp'); AppPasswordError naming the accepted ones."""
    scopes = tuple(dict.fromkeys(s.strip().lower() for s in text.split(",") if s.strip()))
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise AppPasswordError(
            f"Phạm vi không hợp lệ / invalid scope {', '.join(unknown) or '(none)'}: "
            f"chọn trong / choose from {', '.join(SCOPES)}"
        )
    return scopes


def check_name(name: str) -> str:
    name = " ".join(name.split())
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise AppPasswordError(
            f"Tên thiết bị cần từ 1 đến {MAX_NAME} ký tự / the device name needs 1 to {MAX_NAME} characters"
        )
    return name


async def create_app_password(
    store: MailStore, credentials: CredentialStore, account: Account, name: str, scopes: tuple[str, ...],
    *, sender: str, hostname: str,
) -> tuple[AppPassword, str]:
    """Create one (hash stored, the secret returned to be shown once) and deliver the
    notice. DuplicateName when the account already has one of that name."""
    name = check_name(name)
    if len(await credentials.list_app_passwords(account.id)) >= MAX_PER_ACCOUNT:
        raise AppPasswordError(
            f"Đã có {MAX_PER_ACCOUNT} mật khẩu ứng dụng, hãy thu hồi bớt / "
            f"already {MAX_PER_ACCOUNT} app passwords: revoke some first"
        )
    secret = generate_password()
    app = await credentials.add_app_password(
        account.id, name, scopes, await asyncio.to_thread(hash_password, secret), selector(secret),
        datetime.now(UTC),
    )
    await store.deliver([account.id], notice(account.address, app, sender=sender, hostname=hostname),
                        quota=False)
    return app, secret


def local_time(when: datetime) -> str:
    return when.astimezone(LOCAL_TIME).strftime("%d/%m/%Y %H:%M:%S %z")


def notice(address: str, app: AppPassword, *, sender: str, hostname: str) -> bytes:
    """The mail telling the owner an app password was created."""
    when = local_time(app.created_at)
    scopes = ", ".join(app.scopes)
    msg = EmailMessage(policy=POLICY)
    msg["From"] = f"Hệ thống thư điện tử tỉnh Đồng Nai <{sender}>"
    msg["To"] = address
    msg["Subject"] = f"Mật khẩu ứng dụng mới: {app.name} / New app password: {app.name}"
    msg["Date"] = email.utils.format_datetime(datetime.now(UTC))
    msg["Message-ID"] = email.utils.make_msgid("apppassword", domain=hostname)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(
        f"Kính gửi {address},\n\n"
        f"Một mật khẩu ứng dụng tên \"{app.name}\" (dùng cho {scopes}) vừa được tạo cho hộp thư "
        f"của Anh/Chị lúc {when}. Nếu không phải Anh/Chị tạo, hãy thu hồi nó ngay tại trang "
        "/app-passwords, đổi mật khẩu và báo quản trị hệ thống.\n\n"
        f"Dear {address},\n\n"
        f"an app password named \"{app.name}\" (for {scopes}) was created for your mailbox at "
        f"{when}. If you did not create it, revoke it at once on the /app-passwords page, change "
        "your password and tell the operators.\n\n"
        "-- \nSở Thông tin và Truyền thông tỉnh Đồng Nai\n"
    )
    return msg.as_bytes()

"""Two-factor sign-in on the portal for every user: TOTP (RFC 6238) and recovery codes.

Enrolment: the portal makes a random 160-bit secret (RFC 4226 section 4,
R6), stores it pending, shows it as an ``otpauth://`` QR code (segno) and as
text, and enables it once the user types a right code; ten recovery codes are
then shown once and stored as SHA-256 hashes (random ~60-bit codes: a fast
hash suffices, unlike passwords). A code is accepted once: the store takes its
time step atomically (``CredentialStore.accept_totp_step``), so a code seen
over a shoulder is useless a second time, on any node. A recovery code is
spent when used. Wrong codes are throttled by the portal apart from wrong
passwords (``web.totp_max_failures``). Turning 2FA off delivers a notice to
the account's INBOX.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import io
import secrets
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Final
from urllib.parse import quote

import segno

from mailserver.apppasswords import local_time
from mailserver.headers import POLICY
from mailserver.web.security import totp_step
from storage.credentials import CredentialStore

RECOVERY_CODES: Final = 10
_RECOVERY_ALPHABET: Final = "abcdefghjkmnpqrstuvwxyz23456789"
ISSUER: Final = "Thư điện tử Đồng Nai"


def new_secret() -> str:
    return base64.b32encode(secrets.token_bytes(20)).decode("ascii")


def otpauth_uri(address: str, secret: str, issuer: str = ISSUER) -> str:
    """The Key URI Format of authenticator apps (otpauth://totp/Issuer:account?...)."""
    label = quote(f"{issuer}:{address}")
    return f"otpauth://totp/{label}?secret={secret}&issuer={quote(issuer)}&algorithm=SHA1&digits=6&period=30"


def qr_data_uri(text: str) -> str:
    """An SVG QR code as a data: URI (the portal's CSP allows img-src data:)."""
    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind="svg", scale=4, border=2)
    return "data:image/svg+xml;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def recovery_codes(count: int = RECOVERY_CODES) -> list[str]:
    return [
        "-".join("".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(4)) for _ in range(3))
        for _ in range(count)
    ]


def recovery_hash(code: str) -> str:
    normal = code.strip().lower().replace(" ", "").replace("-", "")
    return hashlib.sha256(normal.encode("utf-8", "surrogatepass")).hexdigest()


async def second_factor_ok(credentials: CredentialStore, account_id: int, secret: str, code: str) -> bool:
    """A right TOTP code not used before, or an unused recovery code (spent now)."""
    step = totp_step(secret, code)
    if step is not None:
        return await credentials.accept_totp_step(account_id, step)
    if len(code.strip()) >= 12:
        return await credentials.use_recovery_code(account_id, recovery_hash(code), datetime.now(UTC))
    return False


def disabled_notice(address: str, *, ip: str, sender: str, hostname: str) -> bytes:
    """The mail telling the owner two-factor sign-in was turned off."""
    when = local_time(datetime.now(UTC))
    msg = EmailMessage(policy=POLICY)
    msg["From"] = f"Hệ thống thư điện tử tỉnh Đồng Nai <{sender}>"
    msg["To"] = address
    msg["Subject"] = "Đã tắt xác thực hai bước / Two-factor sign-in turned off"
    msg["Date"] = email.utils.format_datetime(datetime.now(UTC))
    msg["Message-ID"] = email.utils.make_msgid("totpoff", domain=hostname)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(
        f"Kính gửi {address},\n\n"
        f"Xác thực hai bước (mã TOTP) của tài khoản đã được tắt lúc {when} từ địa chỉ {ip}. "
        "Nếu không phải Anh/Chị, hãy đổi mật khẩu ngay tại trang /password và báo quản trị hệ thống.\n\n"
        f"Dear {address},\n\n"
        f"two-factor sign-in (TOTP codes) of your account was turned off at {when} from {ip}. "
        "If this was not you, change your password at once on the /password page and tell the operators.\n\n"
        "-- \nSở Thông tin và Truyền thông tỉnh Đồng Nai\n"
    )
    return msg.as_bytes()

"""Signed session cookies, CSRF tokens and TOTP codes, without I/O.

* Sessions are a JSON object, base64url-encoded and signed with HMAC-SHA256
  (RFC 2104) under the portal key; the signature is compared in constant time
  and the payload carries its own expiry, so a stolen cookie ages out even if
  the browser keeps it. Nothing secret is stored in it (who, until when, the
  CSRF token).
* CSRF: every session (anonymous visitors get one too) carries a random token;
  each form repeats it in a hidden field and a POST whose field does not match
  its session's token is refused (the "synchronizer token" pattern). The cookie
  is also ``SameSite=Strict``, which alone stops cross-site posts in current
  browsers.
* TOTP, RFC 6238 section 4 over HOTP (RFC 4226 section 5.3): HMAC-SHA1, 30 s
  steps, 6 digits, one step of clock drift accepted either way (section 5.2).
  ``TotpCodes`` accepts each code once (section 5.2: "the verifier MUST NOT
  accept the second attempt of the OTP after the successful validation has
  been issued for the first OTP"): it remembers per operator the last time step
  accepted, and a code of that step or an earlier one is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import struct
import time
from dataclasses import dataclass, field
from typing import Final

TOTP_STEP: Final = 30
TOTP_DIGITS: Final = 6


@dataclass(frozen=True, slots=True)
class Session:
    csrf: str
    operator: str = ""
    """Address of the signed-in operator; "" for an anonymous visitor."""
    expires: float = 0.0
    """Unix time after which the operator sign-in lapses (0: never signed in)."""
    extra: dict[str, str] = field(default_factory=dict)

    def operator_at(self, now: float) -> str:
        return self.operator if self.operator and now < self.expires else ""


def new_session() -> Session:
    return Session(csrf=secrets.token_urlsafe(24))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionCodec:
    """Turns a Session into a cookie value and back (None when forged or malformed)."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the session key must be at least 16 bytes")
        self._key = key

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest())

    def dump(self, session: Session) -> str:
        body = {"c": session.csrf, "o": session.operator, "e": session.expires, "x": session.extra}
        payload = _b64(json.dumps(body, separators=(",", ":")).encode())
        return f"{payload}.{self._sign(payload)}"

    def load(self, value: str) -> Session | None:
        payload, dot, signature = value.partition(".")
        if not dot or not payload.isascii() or not signature.isascii():
            return None
        if not hmac.compare_digest(self._sign(payload), signature):
            return None
        try:
            body = json.loads(_unb64(payload))
            csrf, operator, expires, extra = body["c"], body["o"], float(body["e"]), body["x"]
        except (ValueError, KeyError, TypeError, binascii.Error):
            return None
        if not isinstance(csrf, str) or not isinstance(operator, str) or not isinstance(extra, dict):
            return None
        return Session(csrf, operator, expires, {str(k): str(v) for k, v in extra.items()})


def csrf_ok(session: Session, submitted: str) -> bool:
    return bool(submitted) and hmac.compare_digest(session.csrf.encode(), submitted.encode())


def _hotp(key: bytes, counter: int, digits: int = TOTP_DIGITS) -> str:
    """RFC 4226 section 5.3: dynamic truncation of HMAC-SHA1(key, counter)."""
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    code = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(code % 10**digits).zfill(digits)


def decode_secret(secret: str) -> bytes:
    """A base32 secret as authenticator apps show it (spaces, lower case allowed).
    Raises ValueError."""
    text = secret.replace(" ", "").upper()
    try:
        return base64.b32decode(text + "=" * (-len(text) % 8))
    except binascii.Error:
        raise ValueError("not a base32 TOTP secret") from None


def totp(key: bytes, at: float, *, digits: int = TOTP_DIGITS) -> str:
    return _hotp(key, int(at) // TOTP_STEP, digits)


def totp_step(secret: str, code: str, at: float | None = None) -> int | None:
    """The time step (RFC 6238 section 4.2, T) whose code ``code`` is, among now
    and one step either side; None when it is none of them."""
    code = code.strip().replace(" ", "")
    if not code.isdigit() or len(code) != TOTP_DIGITS:
        return None
    try:
        key = decode_secret(secret)
    except ValueError:
        return None
    now = int(time.time() if at is None else at) // TOTP_STEP
    found = None
    for step in (now - 1, now, now + 1):
        # Every step is compared (constant work whichever matches).
        if hmac.compare_digest(_hotp(key, step), code):
            found = step
    return found


def totp_ok(secret: str, code: str, at: float | None = None) -> bool:
    """True when ``code`` is the code of ``secret`` for now, or one step either side."""
    return totp_step(secret, code, at) is not None


class TotpCodes:
    """TOTP checks that accept each code once (module docstring): per operator,
    the last time step accepted; codes of that step or before are refused.
    In memory: after a restart a code may be replayed within its 90 seconds."""

    def __init__(self) -> None:
        self._last_step: dict[str, int] = {}

    def accept(self, who: str, secret: str, code: str, at: float | None = None) -> bool:
        step = totp_step(secret, code, at)
        if step is None or step <= self._last_step.get(who, -1):
            return False
        self._last_step[who] = step
        return True

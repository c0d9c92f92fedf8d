"""Sender Rewriting Scheme (SRS, Shevek's "Sender Rewriting Scheme" paper and
libsrs2's format) for forwarded mail.

A message forwarded from ``user@ours`` to an outside address keeps its
original sender only at the cost of SPF: the next server checks the sender's
domain against our IP and fails. So the envelope sender of the forwarded copy
becomes an address of ours that encodes the original one::

    SRS0=HHHH=TT=example.org=alice@dongnai.gov.vn

``TT`` is the day (base32, modulo 1024), ``HHHH`` the first four characters of
the base64 HMAC-SHA1 over timestamp, domain and local part with a secret of
this server (``<data_dir>/srs.key``, made at first use; several nodes share it
through the data directory or a copy). A bounce to that address comes back
here, is checked (hash, at most ``MAX_AGE_DAYS`` old) and relayed to the
original sender; a forged or stale SRS address is an unknown user. Hashes
compare case-insensitively (relays may fold local parts, as libsrs2 allows).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Final

PREFIX: Final = "SRS0="
MAX_AGE_DAYS: Final = 21
_B32: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_PERIOD: Final = 1024


def _today() -> int:
    return int(time.time() // 86400)


def _stamp(day: int) -> str:
    day %= _PERIOD
    return _B32[day >> 5] + _B32[day & 31]


def _day_of(stamp: str) -> int | None:
    stamp = stamp.upper()
    if len(stamp) != 2 or any(c not in _B32 for c in stamp):
        return None
    return _B32.index(stamp[0]) << 5 | _B32.index(stamp[1])


def is_srs(local: str) -> bool:
    return local[:5].upper() in ("SRS0=", "SRS1=")


class Srs:
    """Rewrites senders into ``SRS0=…@domain`` and back."""

    def __init__(self, key_file: Path, domain: str) -> None:
        self._key_file = key_file
        self.domain = domain.lower()
        self._secret: bytes | None = None
        self._lock = threading.Lock()

    def _key(self) -> bytes:
        if self._secret is None:
            with self._lock:
                if self._secret is None:
                    self._secret = self._load()
        return self._secret

    def _load(self) -> bytes:
        try:
            return self._key_file.read_bytes().strip()
        except FileNotFoundError:
            pass
        self._key_file.parent.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_hex(32).encode()
        tmp = self._key_file.with_name(f".{self._key_file.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(secret + b"\n")
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(tmp, self._key_file)  # first writer wins; others read its key
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
        return self._key_file.read_bytes().strip()

    def _hash(self, stamp: str, domain: str, local: str) -> str:
        mac = hmac.new(self._key(), f"{stamp}{domain}{local}".lower().encode(), hashlib.sha1)
        return base64.b64encode(mac.digest()).decode()[:4]

    def forward(self, sender: str) -> str:
        """The SRS0 address standing for ``sender`` (kept when null or without domain)."""
        local, at, domain = sender.rpartition("@")
        if not at or not local:
            return sender
        stamp = _stamp(_today())
        return f"{PREFIX}{self._hash(stamp, domain, local)}={stamp}={domain}={local}@{self.domain}"

    def reverse(self, local: str, *, today: int | None = None) -> str | None:
        """The original sender an SRS local part stands for; None when forged,
        stale or not SRS at all."""
        if local[:5].upper() != PREFIX:
            return None
        parts = local[5:].split("=", 3)
        if len(parts) != 4:
            return None
        digest, stamp, domain, original = parts
        day = _day_of(stamp)
        if day is None or not domain or not original:
            return None
        age = ((_today() if today is None else today) - day) % _PERIOD
        if age > MAX_AGE_DAYS:
            return None
        if not hmac.compare_digest(digest.lower(), self._hash(stamp, domain, original).lower()):
            return None
        return f"{original}@{domain}"

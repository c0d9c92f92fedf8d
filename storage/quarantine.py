"""Quarantine: messages the policy pipeline held back, stored apart from the
mailboxes until an administrator releases or deletes them.

Interface: ``Quarantine`` (a Protocol). Implementation: ``FileQuarantine``, a
directory of ``<id>.eml`` files (the message exactly as it would have been
delivered, trace fields included) with ``<id>.json`` metadata beside them,
under ``<data_dir>/quarantine``. Writes are durable like Maildir deliveries
(write to a temporary name, fsync, rename, fsync the directory), metadata
last, so a listed entry always has its message.

Lifecycle: ``put`` from the SMTP handler when an ``Outcome`` says
quarantine (the client got 250: the server now owns the message); ``list``,
``get``, ``delete`` from ``mailserver quarantine``; releasing is ``get`` +
``MailStore.deliver`` + ``delete`` in the CLI.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Protocol

from storage.maildir import fsync_dir

_ID: Final = re.compile(r"^[0-9]{8}T[0-9]{6}-[0-9a-f]{8}$")


class NoSuchEntry(KeyError):  # noqa: N818 - public name fixed by the interface
    pass


@dataclass(frozen=True, slots=True)
class QuarantineEntry:
    id: str
    created: str
    """ISO 8601 UTC time of quarantine."""
    sender: str
    recipients: list[str]
    """Envelope recipients, as accepted."""
    reasons: list[str]
    """``check: reason`` lines from the policy outcome."""
    client_ip: str = ""
    session_id: str = ""
    size: int = 0
    subject: str = ""
    extra: dict[str, str] = field(default_factory=dict)


class Quarantine(Protocol):
    def put(
        self,
        data: bytes,
        *,
        sender: str,
        recipients: Sequence[str],
        reasons: Sequence[str],
        client_ip: str = "",
        session_id: str = "",
        subject: str = "",
    ) -> QuarantineEntry: ...

    def list(self) -> list[QuarantineEntry]: ...

    def get(self, entry_id: str) -> tuple[QuarantineEntry, bytes]: ...

    def delete(self, entry_id: str) -> None: ...


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class FileQuarantine:
    """Synchronous (small files, called through ``asyncio.to_thread`` by servers)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, entry_id: str, suffix: str) -> Path:
        if not _ID.match(entry_id):
            raise NoSuchEntry(entry_id)
        return self.root / f"{entry_id}{suffix}"

    def put(
        self,
        data: bytes,
        *,
        sender: str,
        recipients: Sequence[str],
        reasons: Sequence[str],
        client_ip: str = "",
        session_id: str = "",
        subject: str = "",
    ) -> QuarantineEntry:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        now = datetime.now(UTC)
        entry = QuarantineEntry(
            id=f"{now:%Y%m%dT%H%M%S}-{secrets.token_hex(4)}",
            created=now.isoformat(timespec="seconds"),
            sender=sender,
            recipients=list(recipients),
            reasons=list(reasons),
            client_ip=client_ip,
            session_id=session_id,
            size=len(data),
            subject=subject,
        )
        _write(self._path(entry.id, ".eml"), data)
        _write(
            self._path(entry.id, ".json"), json.dumps(asdict(entry), ensure_ascii=False, indent=1).encode()
        )
        fsync_dir(self.root)
        return entry

    def list(self) -> list[QuarantineEntry]:
        if not self.root.is_dir():
            return []
        entries = []
        for meta in sorted(self.root.glob("*.json")):
            try:
                entries.append(QuarantineEntry(**json.loads(meta.read_text(encoding="utf-8"))))
            except (ValueError, TypeError):
                continue
        return entries

    def get(self, entry_id: str) -> tuple[QuarantineEntry, bytes]:
        try:
            meta = json.loads(self._path(entry_id, ".json").read_text(encoding="utf-8"))
            data = self._path(entry_id, ".eml").read_bytes()
        except FileNotFoundError:
            raise NoSuchEntry(entry_id) from None
        return QuarantineEntry(**meta), data

    def delete(self, entry_id: str) -> None:
        meta = self._path(entry_id, ".json")
        if not meta.exists():
            raise NoSuchEntry(entry_id)
        meta.unlink()
        self._path(entry_id, ".eml").unlink(missing_ok=True)
        fsync_dir(self.root)

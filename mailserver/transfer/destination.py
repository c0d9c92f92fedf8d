"""Writing into one account through the public store interface, idempotently.

A message already in the destination folder is recognised by its fingerprint:
INTERNALDATE (to the second, RFC 9051 section 2.3.3), RFC822.SIZE and
Message-ID. The folder's fingerprints are counted as a multiset, so two
identical messages at the source give two copies, and a second run finds both.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.policy import compat32

from storage.api import INBOX, Account, Folder, MailStore, Uid

_DETAIL_CHUNK = 500
_ANGLE = re.compile(r"<[^<>]*>")


@dataclass(frozen=True, slots=True)
class Fingerprint:
    internal_date: datetime
    size: int
    message_id: str | None


def normalise_message_id(value: str | None) -> str | None:
    """The ``<...>`` part of a Message-ID field, whitespace and folding removed."""
    if value is None:
        return None
    text = "".join(value.split())
    found = _ANGLE.search(text)
    if found:
        return found.group(0)
    return text or None


def message_id_of(header: bytes) -> str | None:
    """Message-ID of a message (or of its header alone)."""
    end = header.find(b"\r\n\r\n")
    if end < 0:
        end = header.find(b"\n\n")
    head = header if end < 0 else header[: end + 2]
    parsed = BytesHeaderParser(policy=compat32).parsebytes(head)
    value = parsed.get("Message-ID")
    return normalise_message_id(str(value)) if value is not None else None


def second(value: datetime) -> datetime:
    """A date as the store keeps INTERNALDATE: UTC, whole seconds."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).replace(microsecond=0)


def fingerprint(data: bytes, internal_date: datetime) -> Fingerprint:
    return Fingerprint(second(internal_date), len(data), message_id_of(data))


@dataclass
class TargetFolder:
    name: str
    folder: Folder | None
    """None in a dry run when the folder does not exist yet."""
    present: Counter[Fingerprint] = field(default_factory=Counter)


class Destination:
    """One account being filled. ``dry_run`` creates no folder and stores nothing,
    but answers exactly as a real run would (what would be copied)."""

    def __init__(self, store: MailStore, account: Account, *, dry_run: bool = False) -> None:
        self.store = store
        self.account = account
        self.dry_run = dry_run
        self._targets: dict[str, TargetFolder] = {}

    async def special_names(self) -> dict[str, str]:
        """Our folder name for each RFC 6154 attribute (the oldest folder wins)."""
        names: dict[str, str] = {}
        for folder in await self.store.list_folders(self.account.id):
            if folder.special_use and folder.special_use not in names:
                names[folder.special_use] = folder.name
        return names

    async def target(self, name: str) -> TargetFolder:
        """The folder ``name`` (created unless dry run) with its fingerprints."""
        found = self._targets.get(name)
        if found is not None:
            return found
        folders = {f.name: f for f in await self.store.list_folders(self.account.id)}
        lookup = INBOX if name.upper() == INBOX else name
        folder = folders.get(lookup)
        if folder is None and not self.dry_run:
            folder = await self.store.create_folder(self.account.id, lookup)
        target = TargetFolder(lookup, folder)
        if folder is not None:
            target.present = await self._fingerprints(folder)
        self._targets[name] = target
        return target

    async def _fingerprints(self, folder: Folder) -> Counter[Fingerprint]:
        infos = await self.store.list_messages(self.account.id, folder.id)
        present: Counter[Fingerprint] = Counter()
        for start in range(0, len(infos), _DETAIL_CHUNK):
            chunk = infos[start : start + _DETAIL_CHUNK]
            details = await self.store.get_details(self.account.id, folder.id, [i.uid for i in chunk])
            for detail in details:
                info = detail.info
                present[
                    Fingerprint(
                        second(info.internal_date),
                        info.size,
                        normalise_message_id(detail.envelope.message_id),
                    )
                ] += 1
        return present

    @staticmethod
    def claim(target: TargetFolder, print_: Fingerprint) -> bool:
        """True (and counted) when the folder already holds this message."""
        if target.present[print_] > 0:
            target.present[print_] -= 1
            return True
        return False

    async def add(
        self, target: TargetFolder, data: bytes, flags: Iterable[str], internal_date: datetime
    ) -> Uid | None:
        """Store one message (the caller checked ``claim`` first); None in a dry run."""
        if self.dry_run:
            return None
        if target.folder is None:  # pragma: no cover - created by target() outside dry runs
            raise RuntimeError("folder missing")
        info = await self.store.append(
            self.account.id, target.folder.id, data, flags=flags, internal_date=second(internal_date)
        )
        return info.uid

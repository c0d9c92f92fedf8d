"""Distribution groups of the directory (nhóm nhận): a code, a Vietnamese
name and members that are agency codes or addresses, e.g. ``ubnd-huyen``
"UBND các huyện" holding every district People's Committee. Dispatch resolves
"Nơi nhận" lines against group names; mail to ``CODE@<local domain>`` from an
authenticated user goes to every member (``GroupRecipients``, used at RCPT).

Kept in ``<data_dir>/groups.json``, replaced atomically, so the CLI can edit
groups whether the server runs or not (the same choice as the DKIM index).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Final

from pki.ca import atomic_write
from storage.directory import Agency

log = logging.getLogger(__name__)

FILE: Final = "groups.json"
_CODE: Final = re.compile(r"[a-z0-9][a-z0-9.-]{0,63}")


class GroupError(Exception):
    """An operator mistake about groups (unknown code, bad member)."""


@dataclass(frozen=True, slots=True)
class Group:
    code: str
    name: str
    members: list[str] = field(default_factory=list)
    """Agency codes or e-mail addresses, in the order added."""


class GroupStore:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / FILE

    def all(self) -> list[Group]:
        if not self.path.exists():
            return []
        try:
            data = json.loads(self.path.read_text("utf-8"))
            return [Group(**g) for g in data["groups"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise GroupError(f"{self.path}: unreadable group file: {exc}") from None

    def get(self, code: str) -> Group:
        for group in self.all():
            if group.code == code.strip().lower():
                return group
        raise GroupError(f"không có nhóm / no such group: {code}")

    def _save(self, groups: list[Group]) -> None:
        text = json.dumps({"version": 1, "groups": [asdict(g) for g in groups]}, ensure_ascii=False, indent=2)
        atomic_write(self.path, (text + "\n").encode("utf-8"))

    def add(self, code: str, name: str) -> Group:
        key = code.strip().lower()
        if not _CODE.fullmatch(key):
            raise GroupError(f"not a valid group code: {code!r} (letters, digits, '.', '-')")
        if not name.strip():
            raise GroupError("a group needs a name (--name)")
        groups = self.all()
        if any(g.code == key for g in groups):
            raise GroupError(f"nhóm đã có / group exists: {key}")
        group = Group(key, name.strip())
        self._save([*groups, group])
        return group

    def add_member(self, code: str, member: str) -> Group:
        wanted = member.strip().lower()
        if not wanted:
            raise GroupError("empty member")
        groups = self.all()
        target = self.get(code)
        if wanted in target.members:
            return target
        updated = Group(target.code, target.name, [*target.members, wanted])
        self._save([updated if g.code == target.code else g for g in groups])
        return updated

    def remove_member(self, code: str, member: str) -> Group:
        groups = self.all()
        target = self.get(code)
        wanted = member.strip().lower()
        if wanted not in target.members:
            raise GroupError(f"{wanted} is not a member of {target.code}")
        updated = Group(target.code, target.name, [m for m in target.members if m != wanted])
        self._save([updated if g.code == target.code else g for g in groups])
        return updated


    def rename_member(self, old: str, new: str) -> list[str]:
        """Replace the member ``old`` (an agency code that changed) by ``new`` in
        every group; the codes of the groups changed."""
        old, new = old.strip().lower(), new.strip().lower()
        groups = self.all()
        changed = [g.code for g in groups if old in g.members]
        if changed:
            self._save([
                Group(g.code, g.name, list(dict.fromkeys(new if m == old else m for m in g.members)))
                for g in groups
            ])
        return changed


class GroupRecipients:
    """``CODE@<local domain>`` as a recipient (RCPT TO): the group's members, agency
    codes resolved through the directory to the agency mailbox, nested groups
    followed. The group file is read again only when it changed (the CLI edits
    it while the server runs)."""

    def __init__(self, data_dir: Path, agencies: Callable[[], Awaitable[Sequence[Agency]]]) -> None:
        self._groups = GroupStore(data_dir)
        self._agencies = agencies
        self._cached: tuple[float, list[Group]] | None = None

    def _load(self) -> list[Group]:
        try:
            stamp = self._groups.path.stat().st_mtime
        except FileNotFoundError:
            return []
        if self._cached is None or self._cached[0] != stamp:
            self._cached = (stamp, self._groups.all())
        return self._cached[1]

    async def expand(self, local_part: str) -> list[str] | None:
        """The member addresses of the group ``local_part`` names, or None when no
        group has that code (an unknown recipient, then)."""
        key = local_part.strip().lower()
        try:
            groups = await asyncio.to_thread(self._load)
        except GroupError:
            log.exception("distribution groups unreadable; no group expands")
            return None
        if not any(g.code == key for g in groups):
            return None
        from mailserver.dispatch.recipients import Resolver

        return Resolver(await self._agencies(), groups).group_addresses(key)

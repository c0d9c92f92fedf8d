"""Distribution groups of the directory (nhóm nhận): a code, a Vietnamese
name and members that are agency codes or addresses, e.g. ``ubnd-huyen``
"UBND các huyện" holding every district People's Committee. Dispatch resolves
"Nơi nhận" lines against group names; ``CODE@domain`` expansion at RCPT is a
follow-up.

Kept in ``<data_dir>/groups.json``, replaced atomically, so the CLI can edit
groups whether the server runs or not (the same choice as the DKIM index).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Final

from pki.ca import atomic_write

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

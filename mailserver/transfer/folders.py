"""Where a source folder lands: special-use folders (RFC 6154) mapped to ours,
``--folder-map SRC=DST`` rules, hierarchy delimiters converted to '/'."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from storage.api import INBOX, SPECIAL_FOLDERS

OUR_SPECIAL_USES: Final = frozenset(use for _, use in SPECIAL_FOLDERS)
"""\\Sent, \\Drafts, \\Trash, \\Junk, \\Archive: the folders every account has."""

VIRTUAL_USES: Final = frozenset({"\\All", "\\Flagged"})
"""RFC 6154 attributes of views over other folders (Gmail's "All Mail",
"Starred"): copying them would copy every message twice."""

# Names other servers and clients give the special folders when the server does
# not announce RFC 6154 attributes (Outlook/Exchange, Apple Mail, Thunderbird,
# Gmail, Vietnamese clients). Compared case-insensitively, top level only.
_NAMES: Final[dict[str, tuple[str, ...]]] = {
    "\\Sent": ("Sent", "Sent Items", "Sent Messages", "Sent Mail", "Thư đã gửi", "Đã gửi"),
    "\\Drafts": ("Drafts", "Draft", "Thư nháp", "Nháp"),
    "\\Trash": ("Trash", "Deleted Items", "Deleted Messages", "Bin", "Thùng rác", "Thư đã xóa"),
    "\\Junk": ("Junk", "Spam", "Junk E-mail", "Junk Email", "Bulk Mail", "Thư rác"),
    "\\Archive": ("Archive", "Archives", "Lưu trữ"),
}
_BY_NAME: Final[dict[str, str]] = {
    name.casefold(): use for use, names in _NAMES.items() for name in names
}


def special_use_by_name(name: str) -> str | None:
    """The RFC 6154 attribute a top-level folder name conventionally stands for."""
    return _BY_NAME.get(name.casefold())


def parse_folder_map(items: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """``SRC=DST`` rules; an empty DST skips the folder (and its children).
    Raises ValueError naming the bad rule."""
    rules: list[tuple[str, str]] = []
    for item in items:
        src, eq, dst = item.partition("=")
        src, dst = src.strip().strip("/"), dst.strip().strip("/")
        if not eq or not src:
            raise ValueError(
                f"--folder-map cần dạng NGUON=DICH / needs the form SRC=DST: {item!r}"
            )
        rules.append((src, dst))
    return tuple(rules)


@dataclass(frozen=True, slots=True)
class Placement:
    """Where one source folder goes: ``target`` is our folder name, or None
    when the folder is skipped (``reason`` says why)."""

    source: str
    target: str | None
    reason: str = ""


def place_folders(
    folders: Sequence[tuple[str, frozenset[str]]],
    rules: Sequence[tuple[str, str]],
    special_names: dict[str, str],
) -> list[Placement]:
    """Decide the destination of every source folder.

    ``folders`` are (name with '/' as delimiter, RFC 6154 attributes);
    ``special_names`` maps our special-use attributes to our folder names.
    A ``--folder-map`` rule wins, then INBOX, then a special-use attribute (or a
    conventional top-level name), else the name is kept. Children follow their
    parent: "Sent Items/2019" lands in "Sent/2019" when "Sent Items" maps to "Sent".
    """
    decided: dict[str, str | None] = {}
    out: list[Placement] = []
    for name, attributes in sorted(folders, key=lambda item: item[0].count("/")):
        target, reason = _place_one(name, attributes, rules, special_names, decided)
        decided[name] = target
        out.append(Placement(name, target, reason))
    order = {name: i for i, (name, _) in enumerate(folders)}
    out.sort(key=lambda placement: order[placement.source])
    return out


def _place_one(
    name: str,
    attributes: frozenset[str],
    rules: Sequence[tuple[str, str]],
    special_names: dict[str, str],
    decided: dict[str, str | None],
) -> tuple[str | None, str]:
    for src, dst in rules:
        if name == src or name.casefold() == src.casefold():
            return (dst or None), ("--folder-map" if not dst else "")
    parent, _, leaf = name.rpartition("/")
    if parent and parent in decided:
        mapped = decided[parent]
        if mapped is None:
            return None, "parent skipped"
        return f"{mapped}/{leaf}", ""
    if name.upper() == INBOX:
        return INBOX, ""
    uses = attributes & VIRTUAL_USES
    if uses:
        return None, f"virtual folder {min(uses)}"
    special = next(iter(sorted(attributes & OUR_SPECIAL_USES)), None)
    if special is None and "/" not in name:
        special = special_use_by_name(name)
    if special is not None and special in special_names:
        return special_names[special], ""
    return name, ""

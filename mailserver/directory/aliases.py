"""Other names of agencies (``mailserver agency alias add CODE "NAME"``): the
names documents use that the abbreviation rules of ``names`` do not reach
("VP UBND tỉnh" for "Văn phòng Ủy ban nhân dân tỉnh Đồng Nai", an old name
after a merger). Dispatch resolves "Nơi nhận" lines against them and the
portal search finds the agency by them (Decision 70/2009 Điều 6 khoản 8: the
electronic copy goes to every agency the document names).

An alias is stored with its key (``names.canon``), unique: a name that already
is the code, the name or an alias of another agency is refused, so no alias
makes a lookup ambiguous.
"""

from __future__ import annotations

import unicodedata

from mailserver.directory import names, naming
from storage.directory import AgencyAlias, AliasTaken, By, DirectoryError, DirectoryStore, NoSuchAgency

__all__ = ["add_alias", "alias_map", "remove_alias"]


async def add_alias(directory: DirectoryStore, code: str, name: str, *, by: By) -> AgencyAlias:
    code = naming.agency_code(code)
    text = " ".join(unicodedata.normalize("NFC", name).split())
    key = names.canon(text)
    if not key:
        raise DirectoryError("tên khác trống / the alias has no letter or digit")
    if len(key) > 200:
        raise DirectoryError("tên khác quá dài / the alias is longer than 200 characters")
    agency = await directory.get_agency(code)
    if agency is None:
        raise NoSuchAgency(f"không có cơ quan / no agency {code!r}")
    for other in await directory.list_agencies():
        if key in (names.canon(other.name), names.canon(other.code)):
            if other.code == code:
                raise AliasTaken(f"{text!r} đã là tên của / is already the name of {code}")
            raise AliasTaken(f"{text!r} là tên của cơ quan khác / names another agency: {other.code}")
    return await directory.add_alias(code, text, key, by=by)


async def remove_alias(directory: DirectoryStore, code: str, name: str, *, by: By) -> AgencyAlias:
    code = naming.agency_code(code)
    if await directory.get_agency(code) is None:
        raise NoSuchAgency(f"không có cơ quan / no agency {code!r}")
    removed = await directory.remove_alias(code, names.canon(name), by=by)
    if removed is None:
        raise DirectoryError(f"{code} không có tên khác / has no alias {name!r}")
    return removed


async def alias_map(directory: DirectoryStore) -> dict[str, list[str]]:
    """Agency code -> its aliases, for a ``names.NameIndex``."""
    out: dict[str, list[str]] = {}
    for alias in await directory.aliases():
        out.setdefault(alias.agency_code, []).append(alias.name)
    return out

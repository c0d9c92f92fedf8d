"""The published directory (Decision 70/2009 Điều 5 khoản 5: agencies publish their
addresses and those of their competent officials) as JSON, CSV, vCard or LDIF.

* vCard 4.0 (RFC 6350): CRLF line ends, text values escaped (section 3.4),
  lines folded at 75 octets without splitting a UTF-8 sequence (section 3.2);
  agencies are ``KIND:org`` (section 6.1.4).
* LDIF (RFC 2849): one ``inetOrgPerson`` entry per address (RFC 2798), a value
  that is not a SAFE-STRING is base64-encoded after ``::`` (section 2 and note
  8), entries separated by a blank line, ``version: 1`` first.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

FORMATS: Final = ("json", "csv", "vcard", "ldif")


@dataclass(frozen=True, slots=True)
class Entry:
    """One published address."""

    kind: str
    """``agency`` or ``person``."""
    address: str
    name: str
    agency_code: str
    agency_name: str
    parent_code: str = ""
    family: str = ""
    given: str = ""
    middle: str = ""
    position: str = ""
    phone: str = ""
    head: str = ""
    """For an agency: the head's address."""


def to_json(entries: Sequence[Entry]) -> str:
    data = [_as_dict(e) for e in entries]
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def _as_dict(e: Entry) -> dict[str, str]:
    return {
        "kind": e.kind,
        "address": e.address,
        "name": e.name,
        "agency_code": e.agency_code,
        "agency_name": e.agency_name,
        "parent_code": e.parent_code,
        "family": e.family,
        "middle": e.middle,
        "given": e.given,
        "position": e.position,
        "phone": e.phone,
        "head": e.head,
    }


CSV_COLUMNS: Final = (
    "kind",
    "address",
    "name",
    "agency_code",
    "agency_name",
    "parent_code",
    "family",
    "middle",
    "given",
    "position",
    "phone",
    "head",
)


def to_csv(entries: Sequence[Entry]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for e in entries:
        writer.writerow(_as_dict(e))
    return out.getvalue()


def _vescape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace(";", "\\;").replace("\n", "\\n")


def _fold(line: str) -> str:
    """RFC 6350 section 3.2: at most 75 octets per line, continuation starts with a space."""
    out: list[str] = []
    current = ""
    size = 0
    limit = 75
    for char in line:
        width = len(char.encode())
        if size + width > limit:
            out.append(current)
            current, size, limit = " ", 1, 75
        current += char
        size += width
    out.append(current)
    return "\r\n".join(out)


def to_vcard(entries: Sequence[Entry]) -> str:
    cards: list[str] = []
    for e in entries:
        lines = ["BEGIN:VCARD", "VERSION:4.0"]
        if e.kind == "agency":
            lines += ["KIND:org", f"FN:{_vescape(e.name)}", f"ORG:{_vescape(e.name)}"]
        else:
            family, given, middle = (_vescape(x) for x in (e.family, e.given, e.middle))
            lines += [
                "KIND:individual",
                f"FN:{_vescape(e.name)}",
                f"N:{family};{given};{middle};;",
                f"ORG:{_vescape(e.agency_name)}",
            ]
            if e.position:
                lines.append(f"TITLE:{_vescape(e.position)}")
        lines.append(f"EMAIL;TYPE=work:{e.address}")
        if e.phone:
            lines.append(f"TEL;TYPE=work;VALUE=text:{_vescape(e.phone)}")
        lines.append("END:VCARD")
        cards.append("\r\n".join(_fold(line) for line in lines) + "\r\n")
    return "".join(cards)


def _ldif_attr(name: str, value: str) -> str:
    # RFC 2849 SAFE-STRING: no leading space, colon or '<', printable ASCII only.
    safe = (
        value.isascii()
        and all(0x20 <= ord(c) < 0x7F for c in value)
        and not value.startswith((" ", ":", "<"))
        and not value.endswith(" ")
    )
    if safe:
        return f"{name}: {value}"
    return f"{name}:: {base64.b64encode(value.encode()).decode()}"


def _dn_escape(value: str) -> str:
    # RFC 4514 section 2.4.
    out = "".join("\\" + c if c in ',+"\\<>;=' else c for c in value)
    return ("\\" + out) if out.startswith(("#", " ")) else out


def to_ldif(entries: Sequence[Entry], base_dn: str) -> str:
    blocks = ["version: 1\n"]
    for e in entries:
        ou = "agencies" if e.kind == "agency" else "people"
        lines = [
            _ldif_attr("dn", f"mail={_dn_escape(e.address)},ou={ou},{base_dn}"),
            "objectClass: top",
            "objectClass: person",
            "objectClass: organizationalPerson",
            "objectClass: inetOrgPerson",
            _ldif_attr("cn", e.name),
            _ldif_attr("sn", e.family or e.name),
            _ldif_attr("mail", e.address),
            _ldif_attr("o", e.agency_name),
        ]
        if e.given:
            lines.append(_ldif_attr("givenName", " ".join(x for x in (e.middle, e.given) if x)))
        if e.position:
            lines.append(_ldif_attr("title", e.position))
        if e.phone:
            lines.append(_ldif_attr("telephoneNumber", e.phone))
        lines.append(_ldif_attr("ou", e.agency_code))
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def base_dn(domain: str) -> str:
    return ",".join(f"dc={part}" for part in domain.split("."))


def render(fmt: str, entries: Sequence[Entry], domain: str) -> str:
    if fmt == "json":
        return to_json(entries)
    if fmt == "csv":
        return to_csv(entries)
    if fmt == "vcard":
        return to_vcard(entries)
    if fmt == "ldif":
        return to_ldif(entries, base_dn(domain))
    raise ValueError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")

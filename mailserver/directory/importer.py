"""Parsing and checking of the staff CSV file (Decision 70/2009 Điều 5 khoản 1: the
head of each agency sends the list of staff to the Sở TT&TT).

Format: an Excel workbook (.xlsx, the first sheet), or CSV in UTF-8 (a byte
order mark is tolerated) with RFC 4180 quoting, separated by commas, or by
semicolons as Excel writes CSV under Vietnamese (and most European) regional
settings, where the comma is the decimal separator, or by tabs (the separator
is detected, csv.Sniffer restricted to those three and checked against the
header). The first line (row) is a header naming the columns, in any order:

=============  ========  ==========================================================
column         required  meaning
=============  ========  ==========================================================
ho_ten         (1)       full name as written, family name first: ``Nguyễn Văn An``
ho             (1)       family name (họ), with ``ten``
ten_dem                  middle name (tên đệm / chữ lót)
ten            (1)       given name (tên), may be compound: ``Bảo Ngọc``
ma_co_quan     yes       agency code, e.g. ``stttt``
chuc_vu                  position
dien_thoai               telephone
hop_thu                  local part to issue instead of the derived one
dia_chi_cu               the person's old address (another server, a merged
                         province): it becomes an alias of the address issued,
                         so mail to it keeps arriving and its owner may send
                         as it; its domain must be ours (``mailserver domain add``)
=============  ========  ==========================================================

(1) ``ho_ten``, or ``ten`` (with ``ho``/``ten_dem``), or both. Blank lines are
skipped. Line numbers in errors are the file's physical lines (the header is
line 1), or the sheet's row numbers, so an operator can find the row in any
editor.

This module checks what can be checked without the database; the service
checks agencies, duplicates and addresses, and nothing is created unless every
row passes (all or nothing).
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from mailserver.directory.naming import NamingError, local_part, split_full_name

COLUMNS: Final = (
    "ho_ten", "ho", "ten_dem", "ten", "ma_co_quan", "chuc_vu", "dien_thoai", "hop_thu", "dia_chi_cu",
)
_OLD_ADDRESS: Final = re.compile(r"^[a-z0-9._+-]{1,64}@[a-z0-9-]+(?:\.[a-z0-9-]+)+$")
_PHONE: Final = re.compile(r"^[0-9+().\- ]{3,32}$")
_LOCAL: Final = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$")


@dataclass(frozen=True, slots=True)
class CsvRow:
    line: int
    full_name: str
    family: str
    middle: str
    given: str
    agency_code: str
    position: str
    phone: str
    local_part: str
    """Derived base local part, or the ``hop_thu`` override."""
    explicit: bool
    """True when ``hop_thu`` was given (no numbering then)."""
    old_address: str = ""
    """``dia_chi_cu``, lower-case: becomes an alias of the issued address."""


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def _clean(value: str | None) -> str:
    return " ".join(unicodedata.normalize("NFC", value or "").split())


def valid_local_part(value: str) -> bool:
    return bool(_LOCAL.match(value))


def valid_phone(value: str) -> bool:
    return bool(_PHONE.match(value))


_DELIMITERS: Final = ",;\t"
XLSX_MAGIC: Final = b"PK\x03\x04"


def _delimiter(text: str) -> str:
    """The separator of the CSV text: csv.Sniffer over the first lines, kept
    only if it splits the header into known columns, else the one that does."""
    header = text.split("\n", 1)[0]

    def known(delimiter: str) -> int:
        return sum(1 for name in header.split(delimiter) if name.strip().strip('"').lower() in COLUMNS)

    try:
        sniffed = csv.Sniffer().sniff(text[:8192], delimiters=_DELIMITERS).delimiter
    except csv.Error:
        sniffed = ","
    best = max(_DELIMITERS, key=known)
    return sniffed if known(sniffed) >= known(best) else best


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a phone number typed as a number: no ".0"
    return str(value)


def _xlsx_rows(data: bytes) -> Iterator[tuple[int, list[str]]] | RowError:
    """(row number, cells) of the first sheet, or why it cannot be read."""
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds on a broken file
        return RowError(1, f"không đọc được tệp .xlsx / not a readable .xlsx workbook ({type(exc).__name__})")
    sheet = workbook.worksheets[0] if workbook.worksheets else None
    if sheet is None:
        return RowError(1, "empty workbook: expected a header row")
    rows = [(i, [_cell(v) for v in row]) for i, row in enumerate(sheet.iter_rows(values_only=True), start=1)]
    workbook.close()
    return iter(rows)


def _csv_rows(data: bytes) -> Iterator[tuple[int, list[str]]] | RowError:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return RowError(line, "not UTF-8 text (save the file as CSV UTF-8, or as .xlsx)")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text), strict=True)

    def rows() -> Iterator[tuple[int, list[str]]]:
        while True:
            start = reader.line_num + 1
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise _BadCsvError(RowError(start, f"bad CSV: {exc}")) from None
            yield start, fields

    return rows()


class _BadCsvError(Exception):
    def __init__(self, error: RowError) -> None:
        super().__init__(str(error))
        self.error = error


def is_xlsx(data: bytes, filename: str = "") -> bool:
    return filename.lower().endswith((".xlsx", ".xlsm")) or data.startswith(XLSX_MAGIC)


def parse(data: bytes, filename: str = "") -> tuple[list[CsvRow], list[RowError]]:
    """Rows and every error found; the rows are only usable when there is no error.
    ``data`` is CSV, or an .xlsx workbook (by ``filename`` or its zip signature)."""
    source = _xlsx_rows(data) if is_xlsx(data, filename) else _csv_rows(data)
    if isinstance(source, RowError):
        return [], [source]
    errors: list[RowError] = []
    rows: list[CsvRow] = []
    try:
        first = next(source, None)
    except _BadCsvError as exc:
        return [], [exc.error]
    if first is None or not any(f.strip() for f in first[1]):
        return [], [RowError(1, "empty file: expected a header line")]
    header = first[1]
    while header and not header[-1].strip():
        header = header[:-1]  # a sheet's empty columns to the right
    names = [h.strip().lower() for h in header]
    unknown = [n for n in names if n not in COLUMNS]
    if unknown:
        errors.append(RowError(1, f"unknown column(s) {', '.join(unknown)}; known: {', '.join(COLUMNS)}"))
    if "ma_co_quan" not in names:
        errors.append(RowError(1, "missing column ma_co_quan"))
    if "ho_ten" not in names and "ten" not in names:
        errors.append(RowError(1, "need column ho_ten or ten"))
    if len(set(names)) != len(names):
        errors.append(RowError(1, "a column is named twice"))
    if errors:
        return [], errors
    try:
        for start, fields in source:
            if not any(f.strip() for f in fields):
                continue
            if len(fields) > len(names) and not any(f.strip() for f in fields[len(names):]):
                fields = fields[: len(names)]
            if len(fields) != len(names):
                errors.append(RowError(start, f"{len(fields)} fields, the header has {len(names)}"))
                continue
            row = dict(zip(names, fields, strict=True))
            result = check_row(start, row)
            if isinstance(result, RowError):
                errors.append(result)
            else:
                rows.append(result)
    except _BadCsvError as exc:
        errors.append(exc.error)
    if not rows and not errors:
        errors.append(RowError(2, "no data rows"))
    return rows, errors


def check_row(line: int, row: dict[str, str]) -> CsvRow | RowError:
    """One row (column name -> text) checked and completed, or its error."""
    full = _clean(row.get("ho_ten"))
    family, middle, given = _clean(row.get("ho")), _clean(row.get("ten_dem")), _clean(row.get("ten"))
    agency = _clean(row.get("ma_co_quan")).lower()
    phone, position = _clean(row.get("dien_thoai")), _clean(row.get("chuc_vu"))
    override = _clean(row.get("hop_thu")).lower()
    old = _clean(row.get("dia_chi_cu")).lower()
    if old and not _OLD_ADDRESS.match(old):
        return RowError(line, f"dia_chi_cu {old!r} is not an e-mail address")
    if not agency:
        return RowError(line, "ma_co_quan is empty")
    if not full and not given:
        return RowError(line, "no name: fill ho_ten or ten")
    if (family or middle) and not given:
        return RowError(line, "ho/ten_dem given without ten")
    if not full:
        full = " ".join(x for x in (family, middle, given) if x)
    if phone and not valid_phone(phone):
        return RowError(line, f"dien_thoai {phone!r} is not a telephone number")
    if override:
        if not valid_local_part(override):
            return RowError(line, f"hop_thu {override!r} is not a valid local part")
        base = override
    else:
        try:
            base = local_part(full, family=family, middle=middle, given=given or None)
        except NamingError as exc:
            return RowError(line, str(exc))
    if not given:
        family, middle, given = split_full_name(full)
    return CsvRow(line, full, family, middle, given, agency, position, phone, base, bool(override), old)

"""Out-of-office replies set on the portal (/vacation), as a managed Sieve script.

Theory of operation
-------------------
Turning the reply on stores a script named ``portal-vacation`` and makes it
the active one. The user's own filters are not touched: the managed script
answers first and then includes the script that was active before
(RFC 6609 ``include :personal :optional``, so deleting that script later is
not an error), which keeps filing mail as it did::

    # portal-vacation {"start": "2026-12-10", "end": "2026-12-20", ...}
    require ["vacation", "date", "relational", "include"];
    if allof (currentdate :zone "+0700" :value "ge" "date" "2026-12-10",
              currentdate :zone "+0700" :value "le" "date" "2026-12-20") {
        vacation :days 7 :subject "..." "...";
    }
    include :personal :optional "my-filters";

The reply itself follows RFC 5230 (and RFC 3834 through the interpreter:
never to automatic or list mail, once per sender per ``:days``); the date
range is RFC 5260 ``currentdate`` on the dates of the province's zone
(``report.utc_offset``), both days included. A vacation that has ended
stops answering on its own (the condition fails); the script stays active
until the user turns it off.

Turning it off makes the previous script active again (if it still exists)
and leaves the managed script inactive, so the form shows the last text
next time. The settings live in the script's first line (a JSON comment),
so the script is the one source of truth: there is nothing else to keep in
step, and ManageSieve clients show it as any other script.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from typing import Final

from mailserver.ops.sieve import SieveLimits, check_script, check_size
from storage.sieve import SieveScripts

__all__ = [
    "SCRIPT_NAME",
    "VacationError",
    "VacationSettings",
    "VacationState",
    "current",
    "parse_settings",
    "render",
    "turn_off",
    "turn_on",
    "validate",
]

SCRIPT_NAME: Final = "portal-vacation"
MARK: Final = f"# {SCRIPT_NAME} "
SUBJECT_MAX: Final = 200
MESSAGE_MAX: Final = 5000
DAYS_MAX: Final = 90
_ZONE: Final = re.compile(r"^[+-]\d{2}:?\d{2}$")


class VacationError(ValueError):
    """Form input refused; the message is bilingual, for the page."""


@dataclass(frozen=True, slots=True)
class VacationSettings:
    start: date
    end: date
    subject: str
    message: str
    days: int = 7
    previous: str = ""
    """The script that was active when the reply was turned on (included after it)."""


@dataclass(frozen=True, slots=True)
class VacationState:
    settings: VacationSettings | None
    """The last saved settings, or None if never set."""
    active: bool


def _quoted(value: str) -> str:
    """A Sieve quoted string (RFC 5228 section 2.4.2: escape only ``\\`` and ``"``)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def validate(start: str, end: str, subject: str, message: str, days: str | int) -> VacationSettings:
    """The form's fields checked; VacationError says what is wrong."""
    try:
        first, last = date.fromisoformat(start.strip()), date.fromisoformat(end.strip())
    except ValueError:
        raise VacationError("Ngày không hợp lệ (YYYY-MM-DD) / Invalid date (YYYY-MM-DD)") from None
    if last < first:
        raise VacationError("Ngày kết thúc trước ngày bắt đầu / The end date is before the start date")
    subject = " ".join(subject.split())
    message = message.replace("\r\n", "\n").strip()
    if len(subject) > SUBJECT_MAX:
        raise VacationError(f"Tiêu đề quá dài / Subject longer than {SUBJECT_MAX} characters")
    if not message:
        raise VacationError("Cần nội dung trả lời / The reply needs a message")
    if len(message) > MESSAGE_MAX or "\x00" in message or "\x00" in subject:
        raise VacationError(
            f"Nội dung không hợp lệ / Message invalid or longer than {MESSAGE_MAX} characters"
        )
    try:
        every = int(days)
    except ValueError:
        raise VacationError("Số ngày không hợp lệ / Invalid number of days") from None
    if not 1 <= every <= DAYS_MAX:
        raise VacationError(f"Số ngày từ 1 đến {DAYS_MAX} / Days between replies: 1 to {DAYS_MAX}")
    return VacationSettings(first, last, subject, message, every)


def render(settings: VacationSettings, zone: str) -> str:
    """The managed script for ``settings``; ``zone`` is ``+07:00`` or ``+0700``."""
    if not _ZONE.match(zone):
        zone = "+07:00"
    zone = zone.replace(":", "")
    meta = {
        "start": settings.start.isoformat(),
        "end": settings.end.isoformat(),
        "subject": settings.subject,
        "message": settings.message,
        "days": settings.days,
        "previous": settings.previous,
    }
    subject = f":subject {_quoted(settings.subject)} " if settings.subject else ""
    lines = [
        MARK + json.dumps(meta, ensure_ascii=False),
        "# Do not edit: written by the portal (/vacation); turn it off there.",
        'require ["vacation", "date", "relational", "include"];',
        f'if allof (currentdate :zone "{zone}" :value "ge" "date" "{settings.start.isoformat()}",',
        f'          currentdate :zone "{zone}" :value "le" "date" "{settings.end.isoformat()}") {{',
        f"    vacation :days {settings.days} {subject}{_quoted(settings.message)};",
        "}",
    ]
    if settings.previous:
        lines.append(f"include :personal :optional {_quoted(settings.previous)};")
    return "\n".join(lines) + "\n"


def parse_settings(text: str) -> VacationSettings | None:
    """The settings a managed script was written from; None for any other text."""
    first = text.split("\n", 1)[0]
    if not first.startswith(MARK):
        return None
    try:
        meta = json.loads(first[len(MARK) :])
        return VacationSettings(
            date.fromisoformat(meta["start"]),
            date.fromisoformat(meta["end"]),
            str(meta["subject"]),
            str(meta["message"]),
            int(meta["days"]),
            str(meta.get("previous", "")),
        )
    except (ValueError, KeyError, TypeError):
        return None


async def current(scripts: SieveScripts, owner: str) -> VacationState:
    script = await scripts.get_script(owner, SCRIPT_NAME)
    if script is None:
        return VacationState(None, False)
    return VacationState(parse_settings(script.text), script.active)


async def turn_on(
    scripts: SieveScripts, owner: str, settings: VacationSettings, limits: SieveLimits, zone: str
) -> VacationSettings:
    """Store and activate the managed script; the settings as saved (with the
    script that was active before, to include). Raises TooManyScripts,
    ScriptTooBig."""
    active = await scripts.active_script(owner)
    previous = settings.previous
    if active is not None and active.name != SCRIPT_NAME:
        previous = active.name
    elif active is None:
        previous = ""
    else:  # already on: keep including what it included
        saved = parse_settings(active.text)
        previous = saved.previous if saved is not None else ""
    saved_settings = VacationSettings(
        settings.start, settings.end, settings.subject, settings.message, settings.days, previous
    )
    text = render(saved_settings, zone)
    check_size(text, limits)
    check_script(text)  # the compiler accepts what we generate (a bug here must not store garbage)
    await scripts.put_script(owner, SCRIPT_NAME, text, max_scripts=limits.max_scripts)
    await scripts.set_active(owner, SCRIPT_NAME)
    return saved_settings


async def turn_off(scripts: SieveScripts, owner: str) -> bool:
    """Deactivate the managed script and bring back the one it included; False
    when the reply was not on."""
    script = await scripts.get_script(owner, SCRIPT_NAME)
    if script is None or not script.active:
        return False
    saved = parse_settings(script.text)
    previous = saved.previous if saved is not None else ""
    if previous and await scripts.get_script(owner, previous) is not None:
        await scripts.set_active(owner, previous)
    else:
        await scripts.set_active(owner, None)
    return True

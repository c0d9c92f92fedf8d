"""Script management shared by the CLI (``mailserver sieve``), ManageSieve and
the portal: name rules, limits and the syntax check, written once.

Script names follow RFC 5804 section 1.6: a non-empty Unicode string in NFC
without control characters (``Cc``: U+0000-001F, U+007F-009F) nor the line
and paragraph separators (U+2028, U+2029).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any, Final

from mailserver.sieve.compiler import EXTENSIONS as SUPPORTED
from mailserver.sieve.compiler import compile_script
from mailserver.sieve.parser import SieveSyntaxError
from storage.sieve import NAME_MAX, SieveScriptError, SieveScripts

__all__ = [
    "DEFAULT_MAX_REDIRECTS",
    "DEFAULT_MAX_SCRIPT_SIZE",
    "EXTENSIONS",
    "DEFAULT_MAX_SCRIPTS",
    "InvalidName",
    "InvalidScript",
    "ScriptTooBig",
    "SieveLimits",
    "check_name",
    "check_size",
    "check_script",
    "put_checked",
]

EXTENSIONS: Final = " ".join(SUPPORTED)
"""Sieve extensions announced by ManageSieve's SIEVE capability (RFC 5804 section 1.7)."""
DEFAULT_MAX_REDIRECTS: Final = 4
DEFAULT_MAX_SCRIPT_SIZE: Final = 65536
DEFAULT_MAX_SCRIPTS: Final = 20


class InvalidName(SieveScriptError):  # noqa: N818 - a refusal, not a bug
    """A script name RFC 5804 section 1.6 does not allow."""


class InvalidScript(SieveScriptError):  # noqa: N818
    """Not valid Sieve; the message says ``line:column: what``."""


class ScriptTooBig(SieveScriptError):  # noqa: N818
    """Larger than ``sieve.max_script_size`` (ManageSieve ``QUOTA/MAXSIZE``)."""


@dataclass(frozen=True, slots=True)
class SieveLimits:
    max_script_size: int = DEFAULT_MAX_SCRIPT_SIZE
    """Octets of UTF-8 one script may hold."""
    max_scripts: int = DEFAULT_MAX_SCRIPTS
    """Scripts one mailbox may keep."""
    max_redirects: int = DEFAULT_MAX_REDIRECTS
    """Redirects one message may cause (announced as MAXREDIRECTS)."""

    @classmethod
    def from_config(cls, config: Any) -> SieveLimits:
        """``sieve.max_script_size`` and ``sieve.max_scripts`` of the config (the
        ``[sieve]`` section belongs to the interpreter's settings; a config
        without it gets the defaults)."""
        section = getattr(config, "sieve", None)
        return cls(
            max_script_size=int(getattr(section, "max_script_size", DEFAULT_MAX_SCRIPT_SIZE)),
            max_scripts=int(getattr(section, "max_scripts", DEFAULT_MAX_SCRIPTS)),
            max_redirects=int(getattr(section, "max_redirects", DEFAULT_MAX_REDIRECTS)),
        )


def check_name(name: str) -> str:
    """``name`` if RFC 5804 allows it as a script name, else InvalidName."""
    if not name:
        raise InvalidName("tên kịch bản trống / empty script name")
    if len(name) > NAME_MAX:
        raise InvalidName(f"tên kịch bản quá dài / script name longer than {NAME_MAX} characters")
    if any(unicodedata.category(ch) == "Cc" or ch in "\u2028\u2029" for ch in name):
        raise InvalidName("tên kịch bản có ký tự điều khiển / control character in script name")
    if unicodedata.normalize("NFC", name) != name:
        raise InvalidName("tên kịch bản chưa chuẩn hóa NFC / script name is not in NFC (RFC 5804 1.6)")
    return name


def check_script(text: str) -> list[str]:
    """Warnings of a valid script (usually none); InvalidScript with
    ``line:column: message`` for one that is not valid Sieve."""
    if "\x00" in text:
        raise InvalidScript("1:1: ký tự NUL trong kịch bản / NUL character in script")
    try:
        compile_script(text)
    except SieveSyntaxError as exc:
        raise InvalidScript(str(exc)) from None
    return []


def check_size(text: str, limits: SieveLimits) -> None:
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limits.max_script_size:
        raise ScriptTooBig(
            f"kịch bản {size} byte, vượt giới hạn {limits.max_script_size} / "
            f"script of {size} octets exceeds the limit of {limits.max_script_size}"
        )


async def put_checked(
    scripts: SieveScripts, owner: str, name: str, text: str, limits: SieveLimits, *, activate: bool = False
) -> list[str]:
    """Check and store a script (then make it the active one if asked); its
    warnings. Raises InvalidName, ScriptTooBig, InvalidScript, TooManyScripts,
    NoSuchScriptOwner."""
    check_name(name)
    check_size(text, limits)
    warnings = check_script(text)
    await scripts.put_script(owner, name, text, max_scripts=limits.max_scripts)
    if activate:
        await scripts.set_active(owner, name)
    return warnings

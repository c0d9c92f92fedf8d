"""``[policy]`` settings: which checks run, in which order, with which limits.

``mailserver/config.py`` composes ``PolicySettings`` as the ``[policy]``
section. Each check's options are a TOML table under its name
(``[policy.classified]``, ``[policy.spam]``...) typed by the ``*Options``
dataclasses below; every table accepts ``action`` to override what the check
does with a message it would refuse (``reject``, ``quarantine`` or ``ignore``,
maddy's ``FailAction``). An unknown option raises ``ValueError`` naming it.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

OptionValue = str | float | bool | list[str]
OptionTable = dict[str, OptionValue]

KNOWN_CHECKS: Final = ("classified", "malware", "encoding", "spam", "sender")
ACTIONS: Final = ("reject", "quarantine", "ignore")
ALL_DIRECTIONS: Final = ["inbound", "submission", "internal"]


def _opt(text: str, default: Any) -> Any:
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": text})
    return field(default=default, metadata={"help": text})


@dataclass(frozen=True, slots=True)
class ClassifiedOptions:
    action: str = _opt("reject | quarantine | ignore for a message carrying a secrecy marking.", "reject")
    allow_senders: list[str] = _opt(
        "Senders (address or @domain) exempted by a documented decision, e.g. a secure gateway.", []
    )
    directions: list[str] = _opt("Directions checked: inbound, submission, internal.", ALL_DIRECTIONS)


@dataclass(frozen=True, slots=True)
class MalwareOptions:
    action: str = _opt("reject | quarantine | ignore for dangerous content.", "reject")
    block_extensions: list[str] = _opt(
        "Attachment extensions refused (executables and scripts), also inside archives.",
        [
            "exe",
            "scr",
            "com",
            "bat",
            "cmd",
            "js",
            "jse",
            "vbs",
            "vbe",
            "ps1",
            "psm1",
            "jar",
            "msi",
            "msp",
            "hta",
            "lnk",
            "wsf",
            "wsh",
            "cpl",
            "dll",
            "pif",
            "reg",
            "sys",
            "vb",
            "iso",
            "img",
            "apk",
            "appx",
            "gadget",
            "inf",
            "scf",
            "sct",
            "application",
            "msc",
            "chm",
        ],
    )
    block_macros: bool = _opt("Refuse macro-enabled Office files (.docm, vbaProject.bin, OLE VBA).", True)
    block_encrypted: bool = _opt(
        "Refuse encrypted (password-protected) archives: they cannot be scanned.", True
    )
    directions: list[str] = _opt("Directions checked.", ALL_DIRECTIONS)


SPAM_SCAN_SIZE: Final = 50_000


@dataclass(frozen=True, slots=True)
class SpamOptions:
    action: str = _opt("reject | quarantine | ignore at or above reject_score.", "reject")
    tag_score: float = _opt("Score from which the message is tagged and delivered to Junk.", 5.0)
    reject_score: float = _opt("Score from which the message is refused.", 12.0)
    bayes: bool = _opt("Use the Bayesian classifier trained on this installation.", True)
    bayes_path: str = _opt("SQLite token store; empty: <data_dir>/policy/bayes.sqlite.", "")
    bayes_seed: bool = _opt(
        "Start from the seed model shipped with the server (policy/data/bayes-seed.json). Until this\n"
        "installation has learned 5 spam and 5 ham itself, the classifier adds at most +2.5 / -1.0.",
        True,
    )
    block_senders: list[str] = _opt("Senders (address or @domain) always refused.", [])
    allow_senders: list[str] = _opt("Senders (address or @domain) never scored as spam.", [])
    directions: list[str] = _opt("Directions scored (submitted mail is not, by default).", ["inbound"])
    scan_size: int = _opt(
        "Characters of subject and body text searched for spam phrases (SpamAssassin: 50,000).",
        SPAM_SCAN_SIZE,
    )


@dataclass(frozen=True, slots=True)
class EncodingOptions:
    action: str = _opt("ignore only disables the tag; legacy encodings are never refused.", "ignore")
    directions: list[str] = _opt("Directions tagged.", ALL_DIRECTIONS)


@dataclass(frozen=True, slots=True)
class SenderOptions:
    action: str = _opt("Reserved: sender/relay rules live in mailserver/smtp for now.", "reject")
    directions: list[str] = _opt("Directions checked.", ALL_DIRECTIONS)


OPTION_TYPES: Final[dict[str, type[Any]]] = {
    "classified": ClassifiedOptions,
    "malware": MalwareOptions,
    "spam": SpamOptions,
    "encoding": EncodingOptions,
    "sender": SenderOptions,
}

T = TypeVar("T")


def _check_type(expected: Any, value: Any) -> bool:
    if expected is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if typing.get_origin(expected) is list:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return isinstance(value, expected)


def parse_options(cls: type[T], table: Mapping[str, Any], where: str) -> T:
    """Build an options dataclass from a TOML table; ValueError names a bad key."""
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in table.items():
        if key not in hints:
            raise ValueError(f"unknown key {where}.{key}")
        if not _check_type(hints[key], value):
            raise ValueError(f"{where}.{key} has the wrong type ({type(value).__name__})")
        kwargs[key] = float(value) if hints[key] is float else value
    options = cls(**kwargs)
    action = getattr(options, "action", "reject")
    if action not in ACTIONS and not (cls is EncodingOptions and action == "tag"):
        raise ValueError(f"{where}.action must be one of {', '.join(ACTIONS)}, got {action!r}")
    if getattr(options, "scan_size", 1) < 1:
        raise ValueError(f"{where}.scan_size must be at least 1")
    for direction in getattr(options, "directions", []):
        if direction not in ALL_DIRECTIONS:
            raise ValueError(f"{where}.directions: unknown direction {direction!r}")
    return options


def _defaults(cls: type[Any]) -> OptionTable:
    return {f.name: getattr(cls(), f.name) for f in dataclasses.fields(cls)}


def _table_help(name: str, cls: type[Any]) -> str:
    lines = [f"Options of the {name} check ([policy.{name}]):"]
    for f in dataclasses.fields(cls):
        lines.append(f"  {f.name}: {f.metadata['help']}")
    return "\n".join(lines)


def _table(name: str) -> Any:
    cls = OPTION_TYPES[name]
    return field(default_factory=lambda: _defaults(cls), metadata={"help": _table_help(name, cls)})


@dataclass(frozen=True, slots=True)
class PolicySettings:
    checks: list[str] = _opt(
        "Checks run on every message, in this order (" + ", ".join(KNOWN_CHECKS) + ").\n"
        "The first refusal ends the run; a check that fails or times out defers the message (451 4.3.0).",
        ["classified", "malware", "encoding", "spam"],
    )
    check_timeout: float = _opt("Seconds one check (or the content extraction) may take.", 30.0)
    workers: int = _opt(
        "Worker processes extracting attachments (docx, pdf, zip...); 0: a thread, for small setups.\n"
        "They start with the first message that needs them.", 2
    )
    worker_idle: float = _opt(
        "Seconds without work after which the worker processes stop (their memory is returned);\n"
        "the next attachment starts them again. 0: keep them.", 300.0
    )
    inline_size: int = _opt(
        "Messages made only of text bodies (text/plain, text/html; no attachment) up to this\n"
        "many octets are scanned in the server process, without a worker. 0: always a worker.",
        524288,
    )
    max_scan_size: int = _opt(
        "Largest message inspected, in octets; larger ones are refused (554 5.6.0).", 33554432
    )
    max_depth: int = _opt("Deepest nesting of archives and attached messages unpacked.", 5)
    max_unpacked: int = _opt("Most octets unpacked from archives and documents of one message.", 209715200)
    max_ratio: float = _opt("Highest compression ratio of an archive member (zip bomb guard).", 150.0)
    max_members: int = _opt("Most members read from the archives of one message.", 2000)
    clamd: str = _opt("ClamAV daemon, host:port or a unix socket path; empty: not used.", "")
    spamd: str = _opt("SpamAssassin spamd host:port; empty: not used.", "")
    rspamd: str = _opt("rspamd controller host:port (HTTP /checkv2); empty: not used.", "")
    client_timeout: float = _opt("Seconds clamd, spamd or rspamd may take.", 10.0)
    classified: OptionTable = _table("classified")
    malware: OptionTable = _table("malware")
    spam: OptionTable = _table("spam")
    encoding: OptionTable = _table("encoding")

    def __post_init__(self) -> None:
        for name in self.checks:
            if name not in KNOWN_CHECKS:
                raise ValueError(f"policy.checks: unknown check {name!r} (known: {', '.join(KNOWN_CHECKS)})")
        for name in ("classified", "malware", "spam", "encoding"):
            self.options(name)

    def options(self, name: str) -> Any:
        """The typed options of check ``name`` (defaults for keys not given)."""
        table: Mapping[str, Any] = getattr(self, name, None) or {}
        return parse_options(OPTION_TYPES[name], table, f"policy.{name}")

"""``[policy]`` settings: which checks run, in which order, with which limits.

``mailserver/config.py`` composes ``PolicySettings`` as the ``[policy]``
section. Each check's options are a TOML table under its name
(``[policy.classified]``, ``[policy.spam]``...) typed by the ``*Options``
dataclasses below; every table accepts ``action`` to override what the check
does with a message it would refuse (``reject``, ``quarantine`` or ``ignore``,
maddy's ``FailAction``). An unknown option raises ``ValueError`` naming it.

``DnsSettings`` is the ``[dns]`` section: the one resolver (``policy.dns``)
every lookup of the server goes through.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol, TypeVar

from storage.settings import setting

OptionValue = str | float | bool | list[str]
OptionTable = dict[str, OptionValue]

KNOWN_CHECKS: Final = ("classified", "malware", "encoding", "spam", "sender")
Action = Literal["reject", "quarantine", "ignore"]
"""What a check does with a message it would refuse (maddy's ``FailAction``)."""
ACTIONS: Final[tuple[Action, ...]] = typing.get_args(Action)
EncodingAction = Literal["reject", "quarantine", "ignore", "tag"]
"""The encoding check only tags; ``tag`` names that, the others change nothing."""
ALL_DIRECTIONS: Final = ["inbound", "submission", "internal"]




@dataclass(frozen=True, slots=True)
class ClassifiedOptions:
    action: Action = setting(
        "reject | quarantine | ignore for a message carrying a secrecy marking.", "reject"
    )
    allow_senders: list[str] = setting(
        "Senders (address or @domain) exempted by a documented decision, e.g. a secure gateway.", []
    )
    directions: list[str] = setting("Directions checked: inbound, submission, internal.", ALL_DIRECTIONS)


@dataclass(frozen=True, slots=True)
class MalwareOptions:
    action: Action = setting("reject | quarantine | ignore for dangerous content.", "reject")
    block_extensions: list[str] = setting(
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
    block_macros: bool = setting("Refuse macro-enabled Office files (.docm, vbaProject.bin, OLE VBA).", True)
    block_encrypted: bool = setting(
        "Refuse encrypted (password-protected) archives: they cannot be scanned.", True
    )
    directions: list[str] = setting("Directions checked.", ALL_DIRECTIONS)


SPAM_SCAN_SIZE: Final = 50_000


@dataclass(frozen=True, slots=True)
class SpamOptions:
    action: Action = setting("reject | quarantine | ignore at or above reject_score.", "reject")
    tag_score: float = setting("Score from which the message is tagged and delivered to Junk.", 5.0)
    reject_score: float = setting("Score from which the message is refused.", 12.0)
    bayes: bool = setting("Use the Bayesian classifier trained on this installation.", True)
    bayes_path: str = setting("SQLite token store; empty: <data_dir>/policy/bayes.sqlite.", "")
    bayes_seed: bool = setting(
        "Start from the seed model shipped with the server (policy/data/bayes-seed.json). Until this\n"
        "installation has learned 5 spam and 5 ham itself, the classifier adds at most +2.5 / -1.0.",
        True,
    )
    block_senders: list[str] = setting("Senders (address or @domain) always refused.", [])
    allow_senders: list[str] = setting("Senders (address or @domain) never scored as spam.", [])
    directions: list[str] = setting("Directions scored (submitted mail is not, by default).", ["inbound"])
    scan_size: int = setting(
        "Characters of subject and body text searched for spam phrases (SpamAssassin: 50,000).",
        SPAM_SCAN_SIZE,
    )


@dataclass(frozen=True, slots=True)
class EncodingOptions:
    action: EncodingAction = setting(
        "ignore only disables the tag; legacy encodings are never refused.", "ignore"
    )
    directions: list[str] = setting("Directions tagged.", ALL_DIRECTIONS)


@dataclass(frozen=True, slots=True)
class BasicOptions:
    """The options every check has, for a check without a table of its own."""

    action: Action = setting("reject | quarantine | ignore for a message the check would refuse.", "reject")
    directions: list[str] = setting("Directions checked.", ALL_DIRECTIONS)


@dataclass(frozen=True, slots=True)
class SenderOptions:
    action: Action = setting("reject: the relay and sender rules always refuse (no table).", "reject")
    directions: list[str] = setting("Directions checked.", ALL_DIRECTIONS)


OPTION_TYPES: Final[dict[str, type[Any]]] = {
    "classified": ClassifiedOptions,
    "malware": MalwareOptions,
    "spam": SpamOptions,
    "encoding": EncodingOptions,
    "sender": SenderOptions,
}

T = TypeVar("T")


class CheckOptions(Protocol):
    """What every ``*Options`` table has: the pipeline reads these two."""

    @property
    def action(self) -> Action | EncodingAction: ...

    @property
    def directions(self) -> list[str]: ...


def _check_type(expected: Any, value: Any) -> bool:
    if typing.get_origin(expected) is Literal:
        return isinstance(value, str)  # the value itself is checked by parse_options
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
        allowed = typing.get_args(hints[key]) if typing.get_origin(hints[key]) is Literal else None
        if allowed is not None and value not in allowed:
            raise ValueError(f"{where}.{key} must be one of {', '.join(allowed)}, got {value!r}")
        kwargs[key] = float(value) if hints[key] is float else value
    options = cls(**kwargs)
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
    checks: list[str] = setting(
        "Checks run on every message, in this order (" + ", ".join(KNOWN_CHECKS) + ").\n"
        "The first refusal ends the run; a check that fails or times out defers the message (451 4.3.0).",
        ["classified", "malware", "encoding", "spam"],
    )
    check_timeout: float = setting("Seconds one check (or the content extraction) may take.", 30.0)
    workers: int = setting(
        "Worker processes extracting attachments (docx, pdf, zip...); 0: a thread, for small setups.\n"
        "They start with the first message that needs them.", 2
    )
    worker_idle: float = setting(
        "Seconds without work after which the worker processes stop (their memory is returned);\n"
        "the next attachment starts them again. 0: keep them.", 300.0
    )
    inline_size: int = setting(
        "Messages made only of text bodies (text/plain, text/html; no attachment) up to this\n"
        "many octets are scanned in the server process, without a worker. 0: always a worker.",
        524288,
    )
    max_scan_size: int = setting(
        "Largest message inspected, in octets; larger ones are refused (554 5.6.0).", 33554432
    )
    max_depth: int = setting("Deepest nesting of archives and attached messages unpacked.", 5)
    max_unpacked: int = setting("Most octets unpacked from archives and documents of one message.", 209715200)
    max_ratio: float = setting("Highest compression ratio of an archive member (zip bomb guard).", 150.0)
    max_members: int = setting("Most members read from the archives of one message.", 2000)
    clamd: str = setting("ClamAV daemon, host:port or a unix socket path; empty: not used.", "")
    spamd: str = setting("SpamAssassin spamd host:port; empty: not used.", "")
    rspamd: str = setting("rspamd controller host:port (HTTP /checkv2); empty: not used.", "")
    client_timeout: float = setting("Seconds clamd, spamd or rspamd may take.", 10.0)
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


@dataclass(frozen=True, slots=True)
class DnsSettings:
    nameservers: list[str] = setting(
        "Name servers as host or host:port; empty: those in /etc/resolv.conf.\n"
        "Tests point this at a local stub server.",
        [],
    )
    timeout: float = setting("Seconds one lookup may take in all.", 3.0)
    static: dict[str, list[str]] = setting(
        'Fixed answers consulted before any server, keyed "NAME TYPE", e.g.\n'
            '{ "example.org MX" = ["10 mx.example.org."], "mx.example.org A" = ["192.0.2.7"] }.\n'
            "A name listed here with any type is answered only from here.",
        {},
    )
    use_servers: bool = setting("Ask name servers for what the static map does not answer.", True)
    dnssec_resolver: str = setting(
        "A validating resolver (host or host:port) trusted to set the AD bit; used for\n"
        "DANE TLSA lookups (RFC 7672). Empty: no DANE. Use one on loopback or a trusted path.",
        "",
    )

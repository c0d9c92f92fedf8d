"""ManageSieve commands (RFC 5804 section 2): a ``Line`` of tokens -> one typed
command, or ``CommandError`` with the text of the NO answer.

Each command is a frozen dataclass; ``STATES`` names where it is allowed
(section 2: AUTHENTICATE and STARTTLS before login, script commands after,
CAPABILITY, LOGOUT and NOOP always).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Final

from mailserver.managesieve.parser import Atom, Line, Token

__all__ = [
    "Authenticate",
    "Capability",
    "CheckScript",
    "Command",
    "CommandError",
    "DeleteScript",
    "GetScript",
    "HaveSpace",
    "ListScripts",
    "Logout",
    "Noop",
    "PutScript",
    "RenameScript",
    "SetActive",
    "StartTls",
    "Unauthenticate",
    "parse_command",
]

ANY: Final = frozenset({"nonauth", "auth"})
NONAUTH: Final = frozenset({"nonauth"})
AUTH: Final = frozenset({"auth"})


class CommandError(Exception):
    """A command that is not well formed (answered NO, section 1.3)."""


@dataclass(frozen=True, slots=True)
class Capability:
    STATES: ClassVar[frozenset[str]] = ANY


@dataclass(frozen=True, slots=True)
class Logout:
    STATES: ClassVar[frozenset[str]] = ANY


@dataclass(frozen=True, slots=True)
class Noop:
    STATES: ClassVar[frozenset[str]] = ANY
    tag: str | None = None


@dataclass(frozen=True, slots=True)
class StartTls:
    STATES: ClassVar[frozenset[str]] = NONAUTH


@dataclass(frozen=True, slots=True)
class Authenticate:
    STATES: ClassVar[frozenset[str]] = NONAUTH
    mechanism: str
    """Upper-case."""
    initial: str | None = None
    """The initial response, still base64."""


@dataclass(frozen=True, slots=True)
class Unauthenticate:
    STATES: ClassVar[frozenset[str]] = AUTH


@dataclass(frozen=True, slots=True)
class HaveSpace:
    STATES: ClassVar[frozenset[str]] = AUTH
    name: str
    size: int


@dataclass(frozen=True, slots=True)
class PutScript:
    STATES: ClassVar[frozenset[str]] = AUTH
    name: str
    text: str


@dataclass(frozen=True, slots=True)
class ListScripts:
    STATES: ClassVar[frozenset[str]] = AUTH


@dataclass(frozen=True, slots=True)
class SetActive:
    STATES: ClassVar[frozenset[str]] = AUTH
    name: str
    """Empty: deactivate (section 2.8)."""


@dataclass(frozen=True, slots=True)
class GetScript:
    STATES: ClassVar[frozenset[str]] = AUTH
    name: str


@dataclass(frozen=True, slots=True)
class DeleteScript:
    STATES: ClassVar[frozenset[str]] = AUTH
    name: str


@dataclass(frozen=True, slots=True)
class RenameScript:
    STATES: ClassVar[frozenset[str]] = AUTH
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class CheckScript:
    STATES: ClassVar[frozenset[str]] = AUTH
    text: str


Command = (
    Capability
    | Logout
    | Noop
    | StartTls
    | Authenticate
    | Unauthenticate
    | HaveSpace
    | PutScript
    | ListScripts
    | SetActive
    | GetScript
    | DeleteScript
    | RenameScript
    | CheckScript
)

# name -> (class, argument kinds: "s" string, "n" number; "?" marks optional ones)
_SHAPES: Final[dict[str, tuple[type[Command], str]]] = {
    "CAPABILITY": (Capability, ""),
    "LOGOUT": (Logout, ""),
    "NOOP": (Noop, "s?"),
    "STARTTLS": (StartTls, ""),
    "AUTHENTICATE": (Authenticate, "ss?"),
    "UNAUTHENTICATE": (Unauthenticate, ""),
    "HAVESPACE": (HaveSpace, "sn"),
    "PUTSCRIPT": (PutScript, "ss"),
    "LISTSCRIPTS": (ListScripts, ""),
    "SETACTIVE": (SetActive, "s"),
    "GETSCRIPT": (GetScript, "s"),
    "DELETESCRIPT": (DeleteScript, "s"),
    "RENAMESCRIPT": (RenameScript, "ss"),
    "CHECKSCRIPT": (CheckScript, "s"),
}


def parse_command(line: Line) -> Command:
    first, args = line.tokens[0], line.tokens[1:]
    if not isinstance(first, Atom):
        raise CommandError("Expected a command name")
    name = first.value.upper()
    shape = _SHAPES.get(name)
    if shape is None:
        raise CommandError(f"Unknown command {first.value[:40]}")
    cls, kinds = shape
    required = kinds.replace("?", "")
    optional = kinds.count("?")
    if not len(required) - optional <= len(args) <= len(required):
        raise CommandError(f"Wrong number of arguments for {name}")
    values: list[str | int] = []
    for kind, arg in zip(required, args, strict=False):
        values.append(_argument(name, kind, arg))
    if cls is Authenticate:
        return Authenticate(str(values[0]).upper(), *(str(v) for v in values[1:]))
    return cls(*values)  # type: ignore[arg-type]


def _argument(name: str, kind: str, arg: Token) -> str | int:
    if kind == "n":
        if not isinstance(arg, int) or isinstance(arg, bool):
            raise CommandError(f"{name} expects a number")
        return arg
    if not isinstance(arg, str):
        raise CommandError(f"{name} expects a string argument (quoted or literal)")
    return arg

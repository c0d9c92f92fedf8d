"""The Sieve interpreter: a compiled ``Script`` run against one message for
one recipient, producing the actions to take (RFC 5228 sections 2.10, 4).

Theory of operation: ``Run`` holds the state of one delivery for one
recipient, shared by the operator's ``sieve.before`` script, the user's
active script and ``sieve.after`` (and every script they include): the
actions so far, whether the implicit keep still stands (section 2.10.2), the
imap4flags internal variable (RFC 5232 section 3) and the global variables
(RFC 6609 section 3.3). Each script (or included script) runs with its own
variables. Evaluation is synchronous: what needs the database (duplicate
tracking, included scripts, folder names) is loaded by the engine before
running and handed in. A ``SieveRuntimeError`` cancels every action of the
run: the caller falls back to the implicit keep (section 2.10.6) and tells
the owner.

Actions are only recorded here; ``mailserver.sieve.deliver`` carries them
out. Duplicate fileinto/keep to one folder is done once (section 2.10.3).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime, parsedate_to_datetime
from typing import Final, TypeVar

from mailserver.sieve.compiler import VARIABLE_NAME, Node, Script
from mailserver.sieve.match import Matcher
from mailserver.sieve.message import MessageView

__all__ = ["FileInto", "Outcome", "Run", "SieveRuntimeError", "Vacation"]

T = TypeVar("T")
INBOX: Final = "INBOX"
MAX_INCLUDE_DEPTH: Final = 8
MAX_VARIABLE_LENGTH: Final = 4000
MAX_ACTIONS: Final = 64


class SieveRuntimeError(Exception):
    """A failure while running a script (section 2.10.6): keep the message."""


@dataclass(frozen=True, slots=True)
class FileInto:
    folder: str
    flags: tuple[str, ...]
    create: bool = False


@dataclass(frozen=True, slots=True)
class Vacation:
    reason: str
    subject: str | None
    from_: str | None
    addresses: tuple[str, ...]
    mime: bool
    handle: str
    seconds: int


@dataclass(slots=True)
class Outcome:
    """What the scripts decided for one recipient."""

    keep: list[FileInto] = field(default_factory=list)
    redirects: list[str] = field(default_factory=list)
    reject: str | None = None
    ereject: bool = False
    vacation: Vacation | None = None
    discarded: bool = False
    implicit_keep: bool = True
    duplicates: list[tuple[str, int]] = field(default_factory=list)
    """(tracking key, seconds to remember) for the engine to store (RFC 7352 section 3)."""

    def add_file(self, target: FileInto) -> None:
        for i, have in enumerate(self.keep):
            if have.folder == target.folder:
                flags = tuple(dict.fromkeys(have.flags + target.flags))
                self.keep[i] = FileInto(have.folder, flags, have.create or target.create)
                return
        if len(self.keep) >= MAX_ACTIONS:
            raise SieveRuntimeError("too many fileinto actions")
        self.keep.append(target)


@dataclass(slots=True)
class Environment:
    """What the scripts see about the delivery besides the message."""

    message: MessageView
    sender: str
    """Envelope MAIL FROM ("" for the null sender)."""
    recipient: str
    """The address the message is delivered to (envelope "to")."""
    owner: str
    """The mailbox whose scripts run."""
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    includes: Mapping[tuple[str, str], Script] = field(default_factory=dict)
    seen_duplicates: frozenset[str] = frozenset()
    """Tracking keys already recorded (RFC 7352), loaded by the engine."""
    folders: frozenset[str] = frozenset()
    """The owner's folder names, for mailboxexists (RFC 5490 section 3.1)."""
    max_redirects: int = 4
    default_vacation_seconds: int = 7 * 86400
    min_vacation_seconds: int = 86400
    max_vacation_seconds: int = 90 * 86400


class _Stop(Exception):  # noqa: N818 - control flow, not an error
    pass


class _Return(Exception):  # noqa: N818 - control flow, not an error
    pass


class _Frame:
    """Variables of one running script (RFC 5229 section 3: per script)."""

    __slots__ = ("globals_", "matched", "script", "variables")

    def __init__(self, script: Script) -> None:
        self.script = script
        self.variables: dict[str, str] = {}
        self.matched: list[str] = []
        self.globals_ = script.globals_


class Run:
    """One recipient's run over its scripts; ``outcome`` collects the actions."""

    def __init__(self, env: Environment) -> None:
        self.env = env
        self.outcome = Outcome()
        self.flags: list[str] = []
        self.globals: dict[str, str] = {}
        self._included: set[tuple[str, str]] = set()
        self._depth = 0

    def execute(self, script: Script) -> None:
        """Run one top-level script; a ``stop`` ends every later script too
        (raised as _Stop to the caller, which stops the chain)."""
        try:
            self._script(script)
        except _Return:
            pass

    def _script(self, script: Script) -> None:
        frame = _Frame(script)
        self._block(script.nodes, frame)

    # -- commands ----------------------------------------------------------------
    def _block(self, nodes: Sequence[Node], frame: _Frame) -> None:
        for node in nodes:
            handler = _COMMANDS.get(node.name)
            if handler is None:  # if/else
                self._if(node, frame)
            else:
                handler(self, node, frame)

    def _if(self, node: Node, frame: _Frame) -> None:
        while True:
            if node.name == "else" or self._test(node.tests[0], frame):
                self._block(node.block or (), frame)
                return
            if not node.orelse:
                return
            node = node.orelse[0]

    def _stop(self, node: Node, frame: _Frame) -> None:
        raise _Stop

    def _return(self, node: Node, frame: _Frame) -> None:
        raise _Return

    def _keep(self, node: Node, frame: _Frame) -> None:
        self._check_reject("keep")
        self.outcome.add_file(FileInto(INBOX, self._flags_of(node, frame)))
        self.outcome.implicit_keep = False

    def _discard(self, node: Node, frame: _Frame) -> None:
        self.outcome.discarded = True
        self.outcome.implicit_keep = False

    def _fileinto(self, node: Node, frame: _Frame) -> None:
        folder = self._expand(str(node.args[0]), frame).strip()
        if not folder or len(folder) > 255 or any(ord(c) < 32 for c in folder):
            raise SieveRuntimeError(f"fileinto: invalid folder name {folder!r}")
        if folder.upper() == INBOX:
            folder = INBOX
        if "copy" not in node.tags:
            self._check_reject("fileinto")
            self.outcome.implicit_keep = False
        self.outcome.add_file(FileInto(folder, self._flags_of(node, frame), "create" in node.tags))

    def _redirect(self, node: Node, frame: _Frame) -> None:
        address = self._expand(str(node.args[0]), frame).strip()
        if address.startswith("<") and address.endswith(">"):
            address = address[1:-1]
        local, at, domain = address.rpartition("@")
        if not at or not local or not domain or any(c in address for c in ' \t\r\n<>,;"()'):
            raise SieveRuntimeError(f"redirect: invalid address {address!r} (RFC 5228 section 4.2)")
        if address.lower() in (a.lower() for a in self.outcome.redirects):
            return  # section 2.10.3: the same redirect twice is done once
        if len(self.outcome.redirects) >= self.env.max_redirects:
            raise SieveRuntimeError(f"redirect: more than sieve.max_redirects ({self.env.max_redirects})")
        if "copy" not in node.tags:
            self._check_reject("redirect")
            self.outcome.implicit_keep = False
        self.outcome.redirects.append(address)

    def _reject(self, node: Node, frame: _Frame) -> None:
        # RFC 5429 section 2.1: at most one reject, and not together with a
        # keep, fileinto, redirect (without :copy) or vacation.
        if self.outcome.reject is not None:
            raise SieveRuntimeError(f"{node.name}: a message can be refused only once")
        if (
            self.outcome.keep
            or self.outcome.vacation is not None
            or (self.outcome.redirects and not self.outcome.implicit_keep)
        ):
            raise SieveRuntimeError(
                f"{node.name} cannot be combined with keep, fileinto, redirect or vacation"
            )
        self.outcome.reject = self._expand(str(node.args[0]), frame)
        self.outcome.ereject = node.name == "ereject"
        self.outcome.implicit_keep = False

    def _check_reject(self, what: str) -> None:
        if self.outcome.reject is not None:
            raise SieveRuntimeError(f"{what} after reject (RFC 5429 section 2.1)")

    def _flagcmd(self, node: Node, frame: _Frame) -> None:
        if len(node.args) == 2:
            name = self._expand(str(node.args[0]), frame).lower()
            current = _split_flags(self._get(name, frame))
        else:
            name, current = "", self.flags
        given = _split_flags(" ".join(self._expand(v, frame) for v in node.args[-1]))  # type: ignore[union-attr]
        if node.name == "setflag":
            new = given
        elif node.name == "addflag":
            new = current + [f for f in given if f.lower() not in {c.lower() for c in current}]
        else:
            drop = {f.lower() for f in given}
            new = [f for f in current if f.lower() not in drop]
        if name:
            self._set(name, " ".join(new), frame)
        else:
            self.flags = new

    def _flags_of(self, node: Node, frame: _Frame) -> tuple[str, ...]:
        if "flags" in node.tags:
            given = node.tags["flags"]
            assert isinstance(given, tuple)  # noqa: S101 - the compiler checked the kind
            return tuple(_split_flags(" ".join(self._expand(v, frame) for v in given)))
        return tuple(self.flags)

    def _set(self, name: str, value: str, frame: _Frame) -> None:
        if len(value) > MAX_VARIABLE_LENGTH:
            value = value[:MAX_VARIABLE_LENGTH]
        if name.startswith("global."):
            self.globals[name[7:]] = value
        elif name in frame.globals_:
            self.globals[name] = value
        else:
            frame.variables[name] = value

    def _get(self, name: str, frame: _Frame) -> str:
        if name.isascii() and name.isdigit():
            n = int(name)
            return frame.matched[n] if n < len(frame.matched) else ""
        if name.startswith("global."):
            return self.globals.get(name[7:], "")
        if name in frame.globals_:
            return self.globals.get(name, "")
        return frame.variables.get(name, "")

    def _setcmd(self, node: Node, frame: _Frame) -> None:
        # RFC 5229 section 4.1: modifiers apply from the highest precedence down.
        value = self._expand(str(node.args[1]), frame)
        tags = node.tags
        if "lower" in tags:
            value = value.lower()
        if "upper" in tags:
            value = value.upper()
        if "lowerfirst" in tags:
            value = value[:1].lower() + value[1:]
        if "upperfirst" in tags:
            value = value[:1].upper() + value[1:]
        if "quotewildcard" in tags:
            value = value.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")
        if "length" in tags:
            value = str(len(value))
        self._set(str(node.args[0]).lower(), value, frame)

    def _vacation(self, node: Node, frame: _Frame) -> None:
        if self.outcome.reject is not None:
            raise SieveRuntimeError("vacation after reject (RFC 5230 section 4.7)")
        if self.outcome.vacation is not None:
            raise SieveRuntimeError("vacation used twice (RFC 5230 section 4.7)")
        tags, env = node.tags, self.env
        if "seconds" in tags:
            seconds = int(tags["seconds"])  # type: ignore[arg-type]
            # RFC 6131 section 2: 0 means reply every time; otherwise clamp to the site limits.
            seconds = seconds if seconds == 0 else min(max(seconds, 1), env.max_vacation_seconds)
        elif "days" in tags:
            seconds = int(tags["days"]) * 86400  # type: ignore[arg-type]
            seconds = min(max(seconds, env.min_vacation_seconds), env.max_vacation_seconds)
        else:
            seconds = env.default_vacation_seconds
        reason = self._expand(str(node.args[0]), frame)
        subject = self._expand(str(tags["subject"]), frame) if "subject" in tags else None
        sender = self._expand(str(tags["from"]), frame) if "from" in tags else None
        addresses = tuple(self._expand(a, frame) for a in tags.get("addresses") or ())  # type: ignore[union-attr]
        # RFC 5230 section 4.2: without :handle, the reason (and subject, from) identify the response.
        handle = (
            str(tags["handle"])
            if "handle" in tags
            else hashlib.sha256(f"{reason}\0{subject}\0{sender}\0{'mime' in tags}".encode()).hexdigest()[:32]
        )
        self.outcome.vacation = Vacation(reason, subject, sender, addresses, "mime" in tags, handle, seconds)

    def _include(self, node: Node, frame: _Frame) -> None:
        where = "global" if "global" in node.tags else "personal"
        key = (where, str(node.args[0]))
        if "once" in node.tags and key in self._included:
            return
        script = self.env.includes.get(key)
        if script is None:
            if "optional" in node.tags:
                return
            raise SieveRuntimeError(f"include: no {where} script {key[1]!r}")
        if self._depth >= MAX_INCLUDE_DEPTH:
            raise SieveRuntimeError("include: nested too deeply (RFC 6609 section 3.2)")
        self._included.add(key)
        self._depth += 1
        try:
            self._script(script)
        except _Return:
            pass
        finally:
            self._depth -= 1

    def _global(self, node: Node, frame: _Frame) -> None:
        pass  # declared at compile time (Script.globals_)

    # -- tests -------------------------------------------------------------------
    def _test(self, node: Node, frame: _Frame) -> bool:
        return _TESTS[node.name](self, node, frame)

    def _matcher(self, node: Node) -> Matcher:
        return Matcher(node.match, node.comparator, node.relation)

    def _keys(self, node: Node, frame: _Frame, arg: int = -1) -> Sequence[str]:
        values = node.args[arg]
        assert isinstance(values, tuple)  # noqa: S101 - the compiler checked the kind
        if "variables" not in frame.script.requires:
            return values  # nothing to expand (RFC 5229 section 3: only with the extension)
        return [self._expand(v, frame) for v in values]

    def _compare(self, node: Node, frame: _Frame, values: Sequence[str], keys: Sequence[str]) -> bool:
        matcher = self._matcher(node)
        ok = matcher.test(values, keys)
        if ok and node.match == "matches" and "variables" in frame.script.requires:
            frame.matched = matcher.groups or []
        return ok

    def _indexed(self, node: Node, values: list[T]) -> list[T]:
        # RFC 5260 section 6: :index picks one occurrence, counted from the end with :last.
        if "index" not in node.tags:
            return values
        n = int(node.tags["index"])  # type: ignore[arg-type]
        if n < 1 or n > len(values):
            return []
        return [values[-n] if "last" in node.tags else values[n - 1]]

    def _t_header(self, node: Node, frame: _Frame) -> bool:
        values: list[str] = []
        for name in self._keys(node, frame, 0):
            values.extend(self._indexed(node, self.env.message.header(name)))
        return self._compare(node, frame, values, self._keys(node, frame))

    def _t_address(self, node: Node, frame: _Frame) -> bool:
        values: list[str] = []
        for name in self._keys(node, frame, 0):
            for field_addresses in self._indexed(node, self.env.message.addresses(name)):
                for addr in field_addresses:
                    part = addr if node.part == "all" else _address_part(addr, node.part)
                    if part is not None:
                        values.append(part)
        return self._compare(node, frame, values, self._keys(node, frame))

    def _t_envelope(self, node: Node, frame: _Frame) -> bool:
        values: list[str] = []
        for name in self._keys(node, frame, 0):
            name = name.lower()
            addr = self.env.sender if name == "from" else self.env.recipient if name == "to" else None
            if addr is None:
                continue
            part = addr if addr == "" and node.part == "all" else _address_part(addr, node.part)
            if part is not None:
                values.append(part)
        return self._compare(node, frame, values, self._keys(node, frame))

    def _t_exists(self, node: Node, frame: _Frame) -> bool:
        return all(self.env.message.exists(name) for name in self._keys(node, frame, 0))

    def _t_size(self, node: Node, frame: _Frame) -> bool:
        if "over" in node.tags:
            return self.env.message.size > int(node.tags["over"])  # type: ignore[arg-type]
        if "under" in node.tags:
            return self.env.message.size < int(node.tags["under"])  # type: ignore[arg-type]
        raise SieveRuntimeError("size needs :over or :under")

    def _t_true(self, node: Node, frame: _Frame) -> bool:
        return True

    def _t_false(self, node: Node, frame: _Frame) -> bool:
        return False

    def _t_not(self, node: Node, frame: _Frame) -> bool:
        return not self._test(node.tests[0], frame)

    def _t_allof(self, node: Node, frame: _Frame) -> bool:
        return all(self._test(t, frame) for t in node.tests)

    def _t_anyof(self, node: Node, frame: _Frame) -> bool:
        return any(self._test(t, frame) for t in node.tests)

    def _t_body(self, node: Node, frame: _Frame) -> bool:
        if "raw" in node.tags:
            values = self.env.message.body("raw", ())
        elif "content" in node.tags:
            types = tuple(self._expand(t, frame) for t in node.tags["content"])  # type: ignore[union-attr]
            values = self.env.message.body("content", types)
        else:
            values = self.env.message.body("text", ())
        return self._compare(node, frame, values, self._keys(node, frame))

    def _t_string(self, node: Node, frame: _Frame) -> bool:
        return self._compare(node, frame, self._keys(node, frame, 0), self._keys(node, frame))

    def _t_hasflag(self, node: Node, frame: _Frame) -> bool:
        if len(node.args) == 2:
            flags: list[str] = []
            for name in self._keys(node, frame, 0):
                flags.extend(_split_flags(self._get(name.lower(), frame)))
        else:
            flags = self.flags
        return self._compare(node, frame, flags, self._keys(node, frame))

    def _t_date(self, node: Node, frame: _Frame) -> bool:
        values: list[str] = []
        raw = self._indexed(node, self.env.message.header(self._expand(str(node.args[0]), frame)))
        for value in raw:
            try:
                when = parsedate_to_datetime(value)
            except (TypeError, ValueError, IndexError):
                continue  # RFC 5260 section 4: an unparsable date makes no value
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            if "originalzone" not in node.tags:
                when = _in_zone(when, node.tags.get("zone"))
            part = _date_part(when, self._expand(str(node.args[1]), frame).lower())
            values.append(part)
        return self._compare(node, frame, values, self._keys(node, frame))

    def _t_currentdate(self, node: Node, frame: _Frame) -> bool:
        when = _in_zone(self.env.now, node.tags.get("zone"))
        part = _date_part(when, self._expand(str(node.args[0]), frame).lower())
        return self._compare(node, frame, [part], self._keys(node, frame))

    def _t_duplicate(self, node: Node, frame: _Frame) -> bool:
        # RFC 7352 section 3: the unique id is the Message-ID unless :header or
        # :uniqueid says otherwise; :handle separates independent checks.
        tags = node.tags
        if "uniqueid" in tags:
            unique = self._expand(str(tags["uniqueid"]), frame)
        else:
            values = self.env.message.header(str(tags.get("header", "Message-ID")))
            if not values:
                return False  # no id: never a duplicate (section 3.1)
            unique = values[0].strip()
            if "header" not in tags:
                unique = unique.strip("<>").lower()
        handle = self._expand(str(tags.get("handle", "")), frame)
        key = hashlib.sha256(f"{handle}\0{unique}".encode()).hexdigest()
        seconds = int(tags.get("seconds", 7 * 86400))  # type: ignore[arg-type]
        seen = key in self.env.seen_duplicates or any(k == key for k, _ in self.outcome.duplicates)
        if not seen or "last" in tags:
            self.outcome.duplicates.append((key, seconds))
        return seen

    def _t_mailboxexists(self, node: Node, frame: _Frame) -> bool:
        folders = {f.lower() for f in self.env.folders} | {INBOX.lower()}
        return all(name.lower() in folders for name in self._keys(node, frame, 0))

    # -- variables ---------------------------------------------------------------
    def _expand(self, text: str, frame: _Frame) -> str:
        """RFC 5229 section 3: ``${name}`` and ``${N}`` replaced when the script requires variables."""
        if "${" not in text or "variables" not in frame.script.requires:
            return text
        out: list[str] = []
        i = 0
        while True:
            j = text.find("${", i)
            if j < 0:
                out.append(text[i:])
                break
            k = text.find("}", j + 2)
            if k < 0:
                out.append(text[i:])
                break
            name = text[j + 2 : k]
            if VARIABLE_NAME.fullmatch(name):
                out.append(text[i:j])
                out.append(self._get(name.lower(), frame))
                i = k + 1
            else:
                out.append(text[i : j + 2])  # not a variable reference: kept as written
                i = j + 2
        return "".join(out)


def _split_flags(text: str) -> list[str]:
    seen: dict[str, str] = {}
    for flag in text.split():
        seen.setdefault(flag.lower(), flag)
    return list(seen.values())


def _address_part(addr: str, part: str) -> str | None:
    local, at, domain = addr.rpartition("@")
    if not at:
        local, domain = addr, ""
    match part:
        case "localpart":
            return local
        case "domain":
            return domain
        case "user":
            return local.split("+", 1)[0]
        case "detail":
            # RFC 5233 section 4: no separator, no detail (the test does not match).
            return local.split("+", 1)[1] if "+" in local else None
    return addr


def _in_zone(when: datetime, zone: object) -> datetime:
    if zone is None:
        return when.astimezone()
    text = str(zone)
    if len(text) == 5 and text[0] in "+-" and text[1:].isascii() and text[1:].isdigit():
        offset = timedelta(hours=int(text[1:3]), minutes=int(text[3:5]))
        return when.astimezone(timezone(offset if text[0] == "+" else -offset))
    return when.astimezone()


def _date_part(when: datetime, part: str) -> str:
    """RFC 5260 section 4.2."""
    offset = when.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    zone = f"{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"
    match part:
        case "year":
            return f"{when.year:04d}"
        case "month":
            return f"{when.month:02d}"
        case "day":
            return f"{when.day:02d}"
        case "date":
            return when.strftime("%Y-%m-%d")
        case "julian":
            # Modified Julian Day: days since 1858-11-17.
            return str((when.date() - datetime(1858, 11, 17).date()).days)
        case "hour":
            return f"{when.hour:02d}"
        case "minute":
            return f"{when.minute:02d}"
        case "second":
            return f"{when.second:02d}"
        case "time":
            return when.strftime("%H:%M:%S")
        case "iso8601":
            return when.strftime("%Y-%m-%dT%H:%M:%S") + (zone[:3] + ":" + zone[3:])
        case "std11":
            return format_datetime(when)
        case "zone":
            return zone
        case "weekday":
            return str((when.weekday() + 1) % 7)  # 0 = Sunday
    return ""


_COMMANDS: Final[dict[str, Callable[[Run, Node, _Frame], None]]] = {
    "stop": Run._stop,
    "return": Run._return,
    "keep": Run._keep,
    "discard": Run._discard,
    "fileinto": Run._fileinto,
    "redirect": Run._redirect,
    "reject": Run._reject,
    "ereject": Run._reject,
    "setflag": Run._flagcmd,
    "addflag": Run._flagcmd,
    "removeflag": Run._flagcmd,
    "set": Run._setcmd,
    "vacation": Run._vacation,
    "include": Run._include,
    "global": Run._global,
}
_TESTS: Final[dict[str, Callable[[Run, Node, _Frame], bool]]] = {
    "header": Run._t_header,
    "address": Run._t_address,
    "envelope": Run._t_envelope,
    "exists": Run._t_exists,
    "size": Run._t_size,
    "true": Run._t_true,
    "false": Run._t_false,
    "not": Run._t_not,
    "allof": Run._t_allof,
    "anyof": Run._t_anyof,
    "body": Run._t_body,
    "string": Run._t_string,
    "hasflag": Run._t_hasflag,
    "date": Run._t_date,
    "currentdate": Run._t_currentdate,
    "duplicate": Run._t_duplicate,
    "mailboxexists": Run._t_mailboxexists,
}


def run_scripts(scripts: Sequence[Script], env: Environment) -> Outcome:
    """Run ``scripts`` in order (before, user, after) for one recipient.
    Raises SieveRuntimeError; the caller keeps the message then."""
    run = Run(env)
    try:
        for script in scripts:
            run.execute(script)
    except _Stop:
        pass
    outcome = run.outcome
    if outcome.implicit_keep and not outcome.discarded:
        # Section 2.10.2, with the imap4flags internal variable (RFC 5232 section 3).
        outcome.add_file(FileInto(INBOX, tuple(run.flags)))
    return outcome

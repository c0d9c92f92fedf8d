"""Sieve semantic checks: syntax tree -> ``Script`` ready to run.

Checks every command and test against the table ``SPECS``: its extension was
named in ``require`` (RFC 5228 section 3.2, "require" must come first), its
tags are known and their parameters have the right type (section 2.6.2), its
positional arguments and tests are as many as the grammar of its RFC says.
Match-type, comparator and address-part tags are read once here (sections
2.7.1 to 2.7.4) so the interpreter never looks at raw arguments again.

Extensions: fileinto, reject/ereject (RFC 5429), envelope, encoded-character
(RFC 5228 2.4.2.4), copy (RFC 3894), mailbox (RFC 5490), imap4flags (RFC
5232), body (RFC 5173), variables (RFC 5229), relational (RFC 5231),
subaddress (RFC 5233), date and index (RFC 5260), include (RFC 6609),
duplicate (RFC 7352), vacation and vacation-seconds (RFC 5230, 6131),
comparator-i;ascii-numeric (RFC 4790) and comparator-i;unicode-casemap.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Final

from mailserver.sieve.parser import Argument, Command, Number, SieveSyntaxError, Tag, Test, parse

__all__ = ["EXTENSIONS", "Node", "Script", "compile_script"]

EXTENSIONS: Final = (
    "fileinto",
    "reject",
    "ereject",
    "envelope",
    "encoded-character",
    "copy",
    "mailbox",
    "imap4flags",
    "body",
    "variables",
    "relational",
    "subaddress",
    "date",
    "index",
    "include",
    "duplicate",
    "vacation",
    "vacation-seconds",
    "comparator-i;ascii-numeric",
    "comparator-i;unicode-casemap",
)
"""What the SIEVE capability of ManageSieve lists (RFC 5804 section 1.7)."""

MATCH_TYPES: Final = {
    "is": None,
    "contains": None,
    "matches": None,
    "count": "relational",
    "value": "relational",
}
ADDRESS_PARTS: Final = {
    "all": None,
    "localpart": None,
    "domain": None,
    "user": "subaddress",
    "detail": "subaddress",
}
COMPARATORS: Final = {
    "i;octet": None,
    "i;ascii-casemap": None,
    "i;ascii-numeric": "comparator-i;ascii-numeric",
    "i;unicode-casemap": "comparator-i;unicode-casemap",
}
RELATIONS: Final = frozenset({"gt", "ge", "lt", "le", "eq", "ne"})

# Argument kinds in the table: "s" one string, "l" string list, "n" number, None a tag without one.
_MATCH = {"is": None, "contains": None, "matches": None, "count": "s", "value": "s", "comparator": "s"}
_APART = {"all": None, "localpart": None, "domain": None, "user": None, "detail": None}
_INDEX = {"index": "n", "last": None}


@dataclass(frozen=True, slots=True)
class _Spec:
    ext: str | None
    tags: dict[str, str | None]
    positional: tuple[str, ...]
    optional: int = 0
    """How many leading positional arguments may be left out (setflag's variable name)."""
    tests: str = ""
    """"" none, "1" exactly one test, "+" a test list."""
    tag_ext: dict[str, str] = field(default_factory=dict)


SPECS: Final[dict[str, _Spec]] = {
    # commands
    "require": _Spec(None, {}, ("l",)),
    "stop": _Spec(None, {}, ()),
    "keep": _Spec(None, {"flags": "l"}, (), tag_ext={"flags": "imap4flags"}),
    "discard": _Spec(None, {}, ()),
    "fileinto": _Spec(
        "fileinto",
        {"copy": None, "create": None, "flags": "l"},
        ("s",),
        tag_ext={"copy": "copy", "create": "mailbox", "flags": "imap4flags"},
    ),
    "redirect": _Spec(None, {"copy": None}, ("s",), tag_ext={"copy": "copy"}),
    "reject": _Spec("reject", {}, ("s",)),
    "ereject": _Spec("ereject", {}, ("s",)),
    "setflag": _Spec("imap4flags", {}, ("s", "l"), optional=1),
    "addflag": _Spec("imap4flags", {}, ("s", "l"), optional=1),
    "removeflag": _Spec("imap4flags", {}, ("s", "l"), optional=1),
    "set": _Spec(
        "variables",
        {
            "lower": None,
            "upper": None,
            "lowerfirst": None,
            "upperfirst": None,
            "quotewildcard": None,
            "length": None,
        },
        ("s", "s"),
    ),
    "vacation": _Spec(
        "vacation",
        {
            "days": "n",
            "seconds": "n",
            "subject": "s",
            "from": "s",
            "addresses": "l",
            "mime": None,
            "handle": "s",
        },
        ("s",),
        tag_ext={"seconds": "vacation-seconds"},
    ),
    "include": _Spec("include", {"personal": None, "global": None, "once": None, "optional": None}, ("s",)),
    "return": _Spec("include", {}, ()),
    "global": _Spec("include", {}, ("l",)),
    # tests
    "address": _Spec(None, {**_MATCH, **_APART, **_INDEX}, ("l", "l"), tag_ext={"index": "index"}),
    "envelope": _Spec("envelope", {**_MATCH, **_APART}, ("l", "l")),
    "header": _Spec(None, {**_MATCH, **_INDEX}, ("l", "l"), tag_ext={"index": "index"}),
    "exists": _Spec(None, {}, ("l",)),
    "size": _Spec(None, {"over": "n", "under": "n"}, ()),
    "true": _Spec(None, {}, ()),
    "false": _Spec(None, {}, ()),
    "not": _Spec(None, {}, (), tests="1"),
    "allof": _Spec(None, {}, (), tests="+"),
    "anyof": _Spec(None, {}, (), tests="+"),
    "body": _Spec("body", {**_MATCH, "raw": None, "content": "l", "text": None}, ("l",)),
    "string": _Spec("variables", dict(_MATCH), ("l", "l")),
    "hasflag": _Spec("imap4flags", dict(_MATCH), ("l", "l"), optional=1),
    "date": _Spec(
        "date",
        {**_MATCH, **_INDEX, "zone": "s", "originalzone": None},
        ("s", "s", "l"),
        tag_ext={"index": "index"},
    ),
    "currentdate": _Spec("date", {**_MATCH, "zone": "s"}, ("s", "l")),
    "duplicate": _Spec(
        "duplicate", {"handle": "s", "header": "s", "uniqueid": "s", "seconds": "n", "last": None}, ()
    ),
    "mailboxexists": _Spec("mailbox", {}, ("l",)),
}
_COMMANDS: Final = frozenset(
    {
        "require",
        "stop",
        "keep",
        "discard",
        "fileinto",
        "redirect",
        "reject",
        "ereject",
        "setflag",
        "addflag",
        "removeflag",
        "set",
        "vacation",
        "include",
        "return",
        "global",
    }
)
_TESTS: Final = frozenset(SPECS) - _COMMANDS
_EXCLUSIVE: Final = (
    frozenset({"is", "contains", "matches", "count", "value"}),
    frozenset({"all", "localpart", "domain", "user", "detail"}),
    frozenset({"over", "under"}),
    frozenset({"days", "seconds"}),
    frozenset({"personal", "global"}),
    frozenset({"raw", "content", "text"}),
    frozenset({"zone", "originalzone"}),
    frozenset({"header", "uniqueid"}),
    frozenset({"lower", "upper"}),
    frozenset({"lowerfirst", "upperfirst"}),
)
VARIABLE_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*|[0-9]+")
# RFC 5228 section 2.4.2.4: ${hex: 20 41} and ${unicode: 1F600}
_ENCODED: Final = re.compile(r"\$\{(hex|unicode):([0-9A-Fa-f \t\r\n]*)\}", re.IGNORECASE)
_DATE_PARTS: Final = frozenset(
    {
        "year",
        "month",
        "day",
        "date",
        "julian",
        "hour",
        "minute",
        "second",
        "time",
        "iso8601",
        "std11",
        "zone",
        "weekday",
    }
)


@dataclass(slots=True)
class Node:
    """One command or test with its arguments sorted out."""

    name: str
    tags: dict[str, str | int | tuple[str, ...] | None]
    args: list[str | int | tuple[str, ...]]
    tests: tuple[Node, ...] = ()
    block: tuple[Node, ...] | None = None
    orelse: tuple[Node, ...] | None = None
    """For ``if``: the elsif/else chain as a nested block."""
    line: int = 0
    column: int = 0
    match: str = "is"
    relation: str = ""
    comparator: str = "i;ascii-casemap"
    part: str = "all"


@dataclass(slots=True)
class Script:
    name: str
    nodes: tuple[Node, ...]
    requires: frozenset[str]
    includes: set[tuple[str, str]] = field(default_factory=set)
    """(``personal``/``global``, name) of every include: the engine loads them before running."""
    uses_duplicate: bool = False
    uses_mailboxexists: bool = False
    globals_: frozenset[str] = frozenset()


class _Compiler:
    def __init__(self, name: str) -> None:
        self.script = Script(name, (), frozenset())
        self.requires: set[str] = set()
        self.globals: set[str] = set()

    def fail(self, message: str, where: Command | Test | Argument) -> SieveSyntaxError:
        return SieveSyntaxError(message, where.line, where.column)

    def need(self, ext: str | None, where: Command | Test | Argument) -> None:
        if ext is not None and ext not in self.requires:
            raise self.fail(f'missing require "{ext}"', where)

    def string(self, text: str) -> str:
        text = unicodedata.normalize("NFC", text)
        if "encoded-character" in self.requires and "${" in text:
            text = _ENCODED.sub(_decode_encoded, text)
        return text

    def commands(self, commands: tuple[Command, ...], *, top: bool) -> tuple[Node, ...]:
        out: list[Node] = []
        i = 0
        allow_require = top
        while i < len(commands):
            cmd = commands[i]
            if cmd.name == "require":
                if not allow_require:
                    raise self.fail("require must come before any other command", cmd)
                node = self.node(cmd, is_test=False)
                for ext in node.args[0]:  # type: ignore[union-attr]
                    if ext not in EXTENSIONS:
                        raise self.fail(f'unsupported extension "{ext}"', cmd.arguments[0])
                    self.requires.add(str(ext))
                i += 1
                continue
            allow_require = False
            if cmd.name in ("elsif", "else"):
                raise self.fail(f"{cmd.name} without if", cmd)
            if cmd.name == "if":
                node, i = self.if_chain(commands, i)
                out.append(node)
                continue
            if cmd.name not in _COMMANDS:
                kind = "a test, not a command" if cmd.name in _TESTS else "unknown command"
                raise self.fail(f"{cmd.name}: {kind}", cmd)
            if cmd.block is not None:
                raise self.fail(f"{cmd.name} takes no block", cmd)
            out.append(self.node(cmd, is_test=False))
            i += 1
        return tuple(out)

    def if_chain(self, commands: tuple[Command, ...], i: int) -> tuple[Node, int]:
        cmd = commands[i]
        if cmd.name == "else":
            if cmd.arguments or cmd.tests or cmd.block is None:
                raise self.fail("else takes a block only", cmd)
            return Node(
                "else", {}, [], block=self.commands(cmd.block, top=False), line=cmd.line, column=cmd.column
            ), i + 1
        if len(cmd.tests) != 1 or cmd.arguments or cmd.block is None:
            raise self.fail(f"{cmd.name} takes one test and a block", cmd)
        node = Node(
            "if",
            {},
            [],
            tests=(self.test(cmd.tests[0]),),
            block=self.commands(cmd.block, top=False),
            line=cmd.line,
            column=cmd.column,
        )
        i += 1
        if i < len(commands) and commands[i].name in ("elsif", "else"):
            rest, i = self.if_chain(commands, i)
            node.orelse = (rest,)
        return node, i

    def test(self, test: Test) -> Node:
        if test.name not in _TESTS:
            kind = "a command, not a test" if test.name in _COMMANDS else "unknown test"
            raise self.fail(f"{test.name}: {kind}", test)
        return self.node(test, is_test=True)

    def node(self, item: Command | Test, *, is_test: bool) -> Node:
        spec = SPECS[item.name]
        self.need(spec.ext, item)
        tags: dict[str, str | int | tuple[str, ...] | None] = {}
        args: list[str | int | tuple[str, ...]] = []
        arguments = item.arguments
        j = 0
        while j < len(arguments):
            arg = arguments[j]
            j += 1
            if isinstance(arg, Tag):
                if args:
                    raise self.fail(f":{arg.name} must come before the other arguments of {item.name}", arg)
                if arg.name not in spec.tags:
                    raise self.fail(f"{item.name}: unknown tag :{arg.name}", arg)
                if arg.name in tags:
                    raise self.fail(f"{item.name}: :{arg.name} given twice", arg)
                self.need(
                    spec.tag_ext.get(arg.name) or MATCH_TYPES.get(arg.name) or ADDRESS_PARTS.get(arg.name),
                    arg,
                )
                kind = spec.tags[arg.name]
                if kind is None:
                    tags[arg.name] = None
                    continue
                if j >= len(arguments):
                    raise self.fail(f":{arg.name} needs an argument", arg)
                tags[arg.name] = self.value(arguments[j], kind, f":{arg.name}")
                j += 1
            else:
                args.append(self.value(arg, "?", item.name))
        for group in _EXCLUSIVE:
            if len(group & tags.keys()) > 1:
                raise self.fail(
                    f"{item.name}: "
                    + " and ".join(f":{t}" for t in sorted(group & tags.keys()))
                    + " exclude each other",
                    item,
                )
        wanted = spec.positional
        if spec.optional and len(args) == len(wanted) - spec.optional:
            wanted = wanted[spec.optional :]
        if len(args) != len(wanted):
            raise self.fail(f"{item.name} takes {len(spec.positional)} argument(s), got {len(args)}", item)
        for k, (got, kind) in enumerate(zip(args, wanted, strict=True)):
            if kind == "n" and not isinstance(got, int):
                raise self.fail(f"{item.name}: argument {k + 1} must be a number", item)
            if kind in ("s", "l") and isinstance(got, int):
                raise self.fail(f"{item.name}: argument {k + 1} must be a string", item)
            if kind == "s" and isinstance(got, tuple) and len(got) != 1:
                raise self.fail(f"{item.name}: argument {k + 1} must be one string", item)
        args = [
            a[0] if kind == "s" and isinstance(a, tuple) else a for a, kind in zip(args, wanted, strict=True)
        ]
        node = Node(item.name, tags, args, line=item.line, column=item.column)
        if spec.tests == "1" and len(item.tests) != 1:
            raise self.fail(f"{item.name} takes one test", item)
        if spec.tests == "+" and not item.tests:
            raise self.fail(f"{item.name} takes a list of tests", item)
        if not spec.tests and item.tests:
            raise self.fail(f"{item.name} takes no test", item)
        node.tests = tuple(self.test(t) for t in item.tests)
        self.options(node, item)
        return node

    def value(self, arg: Argument, kind: str, what: str) -> str | int | tuple[str, ...]:
        if isinstance(arg, Tag):
            raise self.fail(f"{what}: unexpected tag :{arg.name}", arg)
        if isinstance(arg, Number):
            if kind in ("s", "l"):
                raise self.fail(f"{what} needs a string", arg)
            return arg.value
        if kind == "n":
            raise self.fail(f"{what} needs a number", arg)
        values = tuple(self.string(v) for v in arg.values)
        if kind == "s":
            if len(values) != 1:
                raise self.fail(f"{what} needs one string", arg)
            return values[0]
        return values

    def options(self, node: Node, item: Command | Test) -> None:
        """Match type, comparator, address part and per-command checks."""
        tags = node.tags
        for name in MATCH_TYPES:
            if name in tags:
                node.match = name
                if name in ("count", "value"):
                    relation = str(tags[name]).lower()
                    if relation not in RELATIONS:
                        raise self.fail(f'unknown relation "{relation}" (RFC 5231)', item)
                    node.relation = relation
        if "comparator" in tags:
            comparator = str(tags["comparator"]).lower()
            if comparator not in COMPARATORS:
                raise self.fail(f'unknown comparator "{comparator}"', item)
            self.need(COMPARATORS[comparator], item)
            if comparator == "i;ascii-numeric" and node.match in ("contains", "matches"):
                raise self.fail(f":{node.match} cannot use i;ascii-numeric (RFC 4790 section 9.1)", item)
            node.comparator = comparator
        for name in ADDRESS_PARTS:
            if name in tags:
                node.part = name
        if "last" in tags and "index" not in tags and node.name != "duplicate":
            raise self.fail(":last needs :index (RFC 5260 section 6)", item)
        if node.name == "date" and str(node.args[1]).lower() not in _DATE_PARTS:
            raise self.fail(f'unknown date part "{node.args[1]}"', item)
        if node.name == "currentdate" and str(node.args[0]).lower() not in _DATE_PARTS:
            raise self.fail(f'unknown date part "{node.args[0]}"', item)
        if node.name == "set" and not VARIABLE_NAME.fullmatch(str(node.args[0])):
            raise self.fail(f'invalid variable name "{node.args[0]}"', item)
        if node.name == "global":
            self.need("variables", item)
            self.globals.update(str(v).lower() for v in node.args[0])  # type: ignore[union-attr]
        if node.name == "include":
            where = "global" if "global" in tags else "personal"
            name = str(node.args[0])
            if "${" in name or "/" in name or not name:
                raise self.fail(f'include: invalid script name "{name}" (RFC 6609 section 3.2)', item)
            self.script.includes.add((where, name))
        if node.name == "duplicate":
            self.script.uses_duplicate = True
        if node.name == "mailboxexists":
            self.script.uses_mailboxexists = True
        if node.name == "vacation" and isinstance(tags.get("days"), int) and "seconds" in tags:
            raise self.fail("vacation: :days and :seconds exclude each other", item)


def _decode_encoded(m: re.Match[str]) -> str:
    units = m.group(2).split()
    try:
        if m.group(1).lower() == "hex":
            return bytes(int(u, 16) for u in units).decode("utf-8")
        return "".join(chr(int(u, 16)) for u in units)
    except (ValueError, UnicodeDecodeError, OverflowError):
        return m.group(0)  # section 2.4.2.4: a malformed sequence stays as written


def compile_script(text: str, name: str = "script") -> Script:
    """Parse and check ``text``; raises SieveSyntaxError with line:column."""
    compiler = _Compiler(name)
    compiler.script.nodes = compiler.commands(parse(text), top=True)
    compiler.script.requires = frozenset(compiler.requires)
    compiler.script.globals_ = frozenset(compiler.globals)
    return compiler.script

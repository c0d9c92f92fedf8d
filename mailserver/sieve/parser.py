"""Sieve lexer and parser (RFC 5228 section 8): script text -> syntax tree.

Theory of operation: ``parse(text)`` runs a hand-written tokenizer (section
8.1: comments, quoted strings with ``\\`` escapes, ``text:`` multi-line
strings with dot-stuffing, numbers with K/M/G quantifiers, tags, identifiers)
and a recursive-descent parser over the section 8.2 grammar::

    commands   = *command
    command    = identifier arguments (";" / block)
    block      = "{" commands "}"
    arguments  = *argument [ test / test-list ]
    argument   = string-list / number / tag
    test       = identifier arguments
    test-list  = "(" test *("," test) ")"

It knows nothing about what commands mean: ``mailserver.sieve.compiler``
checks names, arguments and ``require`` against the extensions we support.
Every error is a ``SieveSyntaxError`` carrying line and column (1-based), so
``mailserver sieve check`` and ManageSieve CHECKSCRIPT can point at it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = ["Command", "Number", "SieveSyntaxError", "StringList", "Tag", "Test", "parse"]

MAX_NESTING: Final = 32
"""Deepest block/test nesting accepted: a script is untrusted input."""


class SieveSyntaxError(Exception):
    """A script that is not valid Sieve, with where it went wrong."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(f"{line}:{column}: {message}")
        self.message = message
        self.line = line
        self.column = column


@dataclass(frozen=True, slots=True)
class Tag:
    name: str
    """Lower-case, without the colon (RFC 5228 section 2.6.2: case-insensitive)."""
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class Number:
    value: int
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class StringList:
    values: tuple[str, ...]
    single: bool
    """Written as one string, not in brackets (some positions require that)."""
    line: int
    column: int


Argument = Tag | Number | StringList


@dataclass(frozen=True, slots=True)
class Test:
    name: str
    arguments: tuple[Argument, ...]
    tests: tuple[Test, ...]
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    arguments: tuple[Argument, ...]
    tests: tuple[Test, ...]
    block: tuple[Command, ...] | None
    line: int
    column: int


# -- tokens (RFC 5228 section 8.1) ------------------------------------------------

# identifier = (ALPHA / "_") *(ALPHA / DIGIT / "_")
_IDENT: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# number = 1*DIGIT [ QUANTIFIER ] ; QUANTIFIER = "K" / "M" / "G"
_NUMBER: Final = re.compile(r"([0-9]+)([KkMmGg]?)")
_QUANT: Final = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
# multi-line = "text:" *(SP / HTAB) (hash-comment / CRLF) *(multiline-literal / multiline-dotstart) "." CRLF
_TEXT_START: Final = re.compile(r"text:[ \t]*(?:#[^\n]*)?\r?\n", re.IGNORECASE)
_WS: Final = re.compile(r"(?:[ \t\r\n]+|#[^\n]*|/\*.*?\*/)+", re.DOTALL)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "ident", "tag", "number", "string", "text" or the punctuation itself
    value: str | int
    pos: int


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def where(self, pos: int) -> tuple[int, int]:
        lo, hi = 0, len(self._line_starts) - 1
        while lo < hi:  # the last line start <= pos
            mid = (lo + hi + 1) // 2
            if self._line_starts[mid] <= pos:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1, pos - self._line_starts[lo] + 1

    def error(self, message: str, pos: int) -> SieveSyntaxError:
        line, column = self.where(pos)
        return SieveSyntaxError(message, line, column)

    def tokens(self) -> list[_Token]:
        out: list[_Token] = []
        text, n = self.text, len(self.text)
        while True:
            m = _WS.match(text, self.pos)
            if m:
                self.pos = m.end()
            if self.pos >= n:
                return out
            start = self.pos
            c = text[start]
            if text.startswith("/*", start):
                raise self.error("unterminated comment", start)
            if c in "[](){},;":
                out.append(_Token(c, c, start))
                self.pos += 1
            elif c == '"':
                out.append(_Token("string", self._quoted(), start))
            elif c == ":":
                m = _IDENT.match(text, start + 1)
                if m is None:
                    raise self.error("expected a tag name after ':'", start)
                out.append(_Token("tag", m.group().lower(), start))
                self.pos = m.end()
            elif "0" <= c <= "9":
                m = _NUMBER.match(text, start)
                assert m is not None  # noqa: S101 - c is a digit
                value = int(m.group(1)) * _QUANT[m.group(2).lower()]
                if value >= 1 << 63:
                    raise self.error("number too large", start)
                out.append(_Token("number", value, start))
                self.pos = m.end()
            elif (tm := _TEXT_START.match(text, start)) is not None:
                self.pos = tm.end()
                out.append(_Token("text", self._multiline(start), start))
            elif (im := _IDENT.match(text, start)) is not None:
                out.append(_Token("ident", im.group().lower(), start))
                self.pos = im.end()
            else:
                raise self.error(f"unexpected character {c!r}", start)

    def _quoted(self) -> str:
        # RFC 5228 section 2.4.2: "\\" and "\"" are escapes; a backslash before
        # any other character is dropped (the character stands for itself).
        text, i = self.text, self.pos + 1
        parts: list[str] = []
        while True:
            j = text.find('"', i)
            k = text.find("\\", i)
            if j < 0:
                raise self.error("unterminated string", self.pos)
            if 0 <= k < j:
                parts.append(text[i:k])
                if k + 1 >= len(text):
                    raise self.error("unterminated string", self.pos)
                parts.append(text[k + 1])
                i = k + 2
                continue
            parts.append(text[i:j])
            self.pos = j + 1
            return "".join(parts)

    def _multiline(self, start: int) -> str:
        # Lines up to a line holding only "."; a leading ".." stands for "."
        # (section 2.4.2, dot-stuffing as in SMTP).
        text = self.text
        lines: list[str] = []
        while True:
            end = text.find("\n", self.pos)
            if end < 0:
                raise self.error("unterminated text: string (no line with a single '.')", start)
            line = text[self.pos : end].removesuffix("\r")
            self.pos = end + 1
            if line == ".":
                return "".join(lines)
            lines.append((line[1:] if line.startswith("..") else line) + "\r\n")


class _Parser:
    def __init__(self, lexer: _Lexer, tokens: list[_Token]) -> None:
        self.lexer = lexer
        self.tokens = tokens
        self.i = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def error(self, message: str, token: _Token | None) -> SieveSyntaxError:
        pos = token.pos if token is not None else len(self.lexer.text)
        return self.lexer.error(message, pos)

    def expect(self, kind: str, what: str) -> _Token:
        token = self.peek()
        if token is None or token.kind != kind:
            found = "end of script" if token is None else repr(token.value)
            raise self.error(f"expected {what}, found {found}", token)
        self.i += 1
        return token

    def commands(self, depth: int, closing: bool) -> tuple[Command, ...]:
        out: list[Command] = []
        while True:
            token = self.peek()
            if token is None:
                if closing:
                    raise self.error("missing '}'", None)
                return tuple(out)
            if token.kind == "}" and closing:
                self.i += 1
                return tuple(out)
            out.append(self.command(depth))

    def command(self, depth: int) -> Command:
        name = self.expect("ident", "a command name")
        line, column = self.lexer.where(name.pos)
        arguments, tests = self.arguments(depth)
        token = self.peek()
        if token is not None and token.kind == ";":
            self.i += 1
            return Command(str(name.value), arguments, tests, None, line, column)
        if token is not None and token.kind == "{":
            if depth >= MAX_NESTING:
                raise self.error("blocks nested too deeply", token)
            self.i += 1
            block = self.commands(depth + 1, closing=True)
            return Command(str(name.value), arguments, tests, block, line, column)
        found = "end of script" if token is None else repr(token.value)
        raise self.error(f"expected ';' or '{{' after {name.value}, found {found}", token)

    def arguments(self, depth: int) -> tuple[tuple[Argument, ...], tuple[Test, ...]]:
        args: list[Argument] = []
        while (token := self.peek()) is not None:
            line, column = self.lexer.where(token.pos)
            if token.kind == "tag":
                args.append(Tag(str(token.value), line, column))
            elif token.kind == "number":
                args.append(Number(int(token.value), line, column))
            elif token.kind in ("string", "text"):
                args.append(StringList((str(token.value),), True, line, column))
            elif token.kind == "[":
                self.i += 1
                args.append(self.string_list(line, column))
                continue
            else:
                break
            self.i += 1
        token = self.peek()
        if token is not None and token.kind == "ident":
            return tuple(args), (self.test(depth + 1),)
        if token is not None and token.kind == "(":
            if depth >= MAX_NESTING:
                raise self.error("tests nested too deeply", token)
            self.i += 1
            tests = [self.test(depth + 1)]
            while (token := self.peek()) is not None and token.kind == ",":
                self.i += 1
                tests.append(self.test(depth + 1))
            self.expect(")", "',' or ')' in the test list")
            return tuple(args), tuple(tests)
        return tuple(args), ()

    def string_list(self, line: int, column: int) -> StringList:
        # string-list = "[" string *("," string) "]" / string
        values: list[str] = []
        while True:
            token = self.peek()
            if token is None or token.kind not in ("string", "text"):
                raise self.error("expected a string in the list", token)
            values.append(str(token.value))
            self.i += 1
            token = self.peek()
            if token is not None and token.kind == ",":
                self.i += 1
                continue
            self.expect("]", "',' or ']' in the string list")
            return StringList(tuple(values), False, line, column)

    def test(self, depth: int) -> Test:
        if depth > MAX_NESTING:
            raise self.error("tests nested too deeply", self.peek())
        name = self.expect("ident", "a test name")
        line, column = self.lexer.where(name.pos)
        arguments, tests = self.arguments(depth)
        return Test(str(name.value), arguments, tests, line, column)


def parse(text: str) -> tuple[Command, ...]:
    """The commands of a script; raises SieveSyntaxError (with line:column)."""
    lexer = _Lexer(text)
    parser = _Parser(lexer, lexer.tokens())
    return parser.commands(0, closing=False)

"""ManageSieve parser and command table, from RFC 5804's examples and its grammar."""

from __future__ import annotations

import pytest

from mailserver.managesieve import commands as c
from mailserver.managesieve.parser import NEED_DATA, Atom, BadLine, Line, Parser, TooBig
from mailserver.managesieve.responses import Data, No, Ok, ScriptData


def events(data: bytes, **limits: int) -> list[object]:
    parser = Parser(**limits)
    parser.receive_data(data)
    out: list[object] = []
    while (event := parser.next_event()) is not NEED_DATA:
        out.append(event)
        if isinstance(event, TooBig):
            break
    return out


@pytest.mark.parametrize(
    ("wire", "command"),
    [
        (b'Authenticate "PLAIN" "QJIrweAPyo6Q1T9xu"\r\n', c.Authenticate("PLAIN", "QJIrweAPyo6Q1T9xu")),
        (
            b'AUTHENTICATE "PLAIN" {20+}\r\nAGhvbWVyAHNlY3JldA==\r\n',
            c.Authenticate("PLAIN", "AGhvbWVyAHNlY3JldA=="),
        ),
        (
            b'Putscript "foo" {31+}\r\n#comment\r\nInvalidSieveCommand\r\n\r\n',
            c.PutScript("foo", "#comment\r\nInvalidSieveCommand\r\n"),
        ),
        (b'HAVESPACE "myscript" 999999\r\n', c.HaveSpace("myscript", 999999)),
        (b'SETACTIVE ""\r\n', c.SetActive("")),
        (b'RENAMESCRIPT "a\\"b" "c\\\\d"\r\n', c.RenameScript('a"b', "c\\d")),
        (b"Noop\r\n", c.Noop()),
        (b'NOOP "STARTTLS-SYNC-42"\r\n', c.Noop("STARTTLS-SYNC-42")),
        (b"listscripts\n", c.ListScripts()),
    ],
)
def test_rfc_examples(wire: bytes, command: c.Command) -> None:
    (line,) = events(wire)
    assert isinstance(line, Line)
    assert c.parse_command(line) == command


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (b"\r\n", "Empty command"),
        (b'PUTSCRIPT "a\r\n', "Unterminated"),
        (b'NOOP "\\n"\r\n', "escaped"),
        (b"NOOP {x+}\r\nab\r\n", "literal length"),
        (b"NOOP {2+} junk\r\n", "must end its line"),
        (b"NOOP 99999999999\r\n", "Number too large"),
        (b"NOOP \x01\r\n", "Unexpected character"),
        (b'NOOP "a""b"\r\n', "Expected a space"),
    ],
)
def test_bad_lines_are_consumed(wire: bytes, reason: str) -> None:
    got = events(wire + b"LOGOUT\r\n")
    assert isinstance(got[0], BadLine) and reason in got[0].text
    assert got[-1] == Line((Atom("LOGOUT"),))  # the next command still parses


def test_limits() -> None:
    (big,) = events(b'PUTSCRIPT "a" {100+}\r\n', max_literal=50)
    assert isinstance(big, TooBig) and "100" in big.text
    (long,) = events(b"NOOP " + b"a" * 200, max_line=100)
    assert isinstance(long, TooBig)
    assert events(b'PUTSCRIPT "a" {10+}\r\nabc', max_literal=50) == []  # waits for the rest


@pytest.mark.parametrize(
    ("wire", "error"),
    [
        (b"FROB\r\n", "Unknown command"),
        (b'"CAPABILITY"\r\n', "command name"),
        (b'HAVESPACE "a" "b"\r\n', "expects a number"),
        (b"GETSCRIPT 12\r\n", "expects a string"),
        (b"LOGOUT now\r\n", "Wrong number"),
    ],
)
def test_command_errors(wire: bytes, error: str) -> None:
    (line,) = events(wire)
    assert isinstance(line, Line)
    with pytest.raises(c.CommandError, match=error):
        c.parse_command(line)


def test_responses() -> None:
    assert Ok("Done", 'TAG "x"').to_bytes() == b'OK (TAG "x") "Done"\r\n'
    assert No("line 1\nline 2", "WARNINGS").to_bytes() == b"NO (WARNINGS) {13}\r\nline 1\nline 2\r\n"
    assert Data(("lọc",), "ACTIVE").to_bytes() == '"lọc" ACTIVE\r\n'.encode()
    assert ScriptData("keep;\r\n").to_bytes() == b"{7}\r\nkeep;\r\n\r\n"

"""ManageSieve parser properties (hypothesis): any bytes, cut anywhere, give
lines, bad lines or TooBig - never an exception - and a command's wire form
parses back to the same tokens however it is split into reads."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailserver.managesieve.commands import CommandError, parse_command
from mailserver.managesieve.parser import NEED_DATA, Atom, BadLine, Line, Parser, TooBig


def drain(parser: Parser) -> list[object]:
    events: list[object] = []
    while True:
        event = parser.next_event()
        if event is NEED_DATA:
            return events
        events.append(event)
        if isinstance(event, TooBig):
            return events


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=12))
def test_any_bytes_never_crash(chunks: list[bytes]) -> None:
    parser = Parser(max_line=128, max_literal=64)
    for chunk in chunks:
        parser.receive_data(chunk)
        for event in drain(parser):
            assert isinstance(event, Line | BadLine | TooBig)
            if isinstance(event, Line):
                try:
                    parse_command(event)
                except CommandError:
                    pass


def _wire(token: str | int) -> bytes:
    if isinstance(token, int):
        return str(token).encode()
    data = token.encode()
    return b"{%d+}\r\n" % len(data) + data


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(st.text(max_size=20), st.integers(0, 2**32 - 1)), max_size=4),
    st.integers(1, 7),
)
def test_round_trip_in_pieces(args: list[str | int], step: int) -> None:
    wire = b"PUTSCRIPT" + b"".join(b" " + _wire(a) for a in args) + b"\r\n"
    parser = Parser(max_line=4096, max_literal=4096)
    events: list[object] = []
    for i in range(0, len(wire), step):
        parser.receive_data(wire[i : i + step])
        events += drain(parser)
    assert events == [Line((Atom("PUTSCRIPT"), *args))]

"""Fast paths of the SMTP front end against the slow code they stand in for:
the chunked, streaming DATA reader (``handler.read_data_into``) against a line-by-line reading
of RFC 5321 sections 4.1.1.4 and 4.5.2 as aiosmtpd does it (content,
dot-unstuffing, limits, what stays unread); the path parser against aiosmtpd's;
the bare CR/LF finder against its regular expression."""

from __future__ import annotations

import asyncio
import re
import types

import pytest
from aiosmtpd.handlers import Sink
from aiosmtpd.smtp import SMTP
from hypothesis import given, settings
from hypothesis import strategies as st

from mailserver.smtp import delivery, protocol
from mailserver.smtp.limits import MemoryBudget, Spool
from mailserver.smtp.protocol import _SIMPLE_PATH, DataTooLong, MxSMTP, path_error, read_data, read_data_into

LINE_LIMIT = 1001
TOO_LONG = "500 Line too long (see RFC5321 4.5.3.1.6)"
TOO_MUCH = "552 Error: Too much mail data"


def by_lines(stream: bytes, size_limit: int | None) -> tuple[bytes | str, bytes]:
    """Reference: (unstuffed content or the refusal, octets after the end)."""
    lines: list[bytes] = []
    pos = 0
    size = 0
    failure: str | None = None
    while True:
        end = stream.index(b"\r\n", pos) + 2
        line = stream[pos:end]
        pos = end
        if line == b".\r\n":
            break
        size += len(line)
        if failure is None and len(line) > LINE_LIMIT:
            failure = TOO_LONG
        if failure is None and size_limit and size > size_limit:
            failure = TOO_MUCH
        lines.append(line[1:] if line.startswith(b".") else line)
    return (failure if failure is not None else b"".join(lines)), stream[pos:]


async def chunked(stream: bytes, cuts: list[int], size_limit: int | None) -> tuple[bytes | str, bytes]:
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]

    async def feed() -> None:
        for piece in pieces:
            reader.feed_data(piece)
            await asyncio.sleep(0)
        reader.feed_eof()

    feeder = asyncio.create_task(feed())
    try:
        # read_data streams through read_data_into (what a session runs):
        # complete lines are unstuffed as they arrive, so a transparency dot
        # split from its CRLF by a read boundary must still be removed.
        result: bytes | str = await read_data(reader, size_limit=size_limit, line_limit=LINE_LIMIT)
    except DataTooLong as exc:
        result = exc.reply
    await feeder
    return result, await reader.read()


CASES = [
    b".\r\n",
    b"\r\n.\r\n",
    b"\r\n\r\n.\r\n",
    b"Subject: x\r\n.\r\n",
    b"Subject: x\r\n\r\nEnd.\r\n.\r\n",
    b"..\r\n.\r\n",
    b"..x\r\n...\r\n.\r\n",
    b"a\r\n.b\r\n..\r\n.\r\nQUIT\r\n",
    b"x.\r\n.\r\nMAIL FROM:<a@b>\r\n",
    b"bare\n.\r\nstill data\r.\r\n\r\n.\r\nRSET\r\n",
    b"\r\n.\r.\r\n.\r\n",
    b"A" * 999 + b"\r\n.\r\n",
    b"A" * 1000 + b"\r\n.\r\n",
    (b"B" * 78 + b"\r\n") * 3000 + b".\r\nQUIT\r\n",
    (b"end of a sentence.\r\n" * 500) + b".\r\n",
]


@pytest.mark.parametrize("stream", CASES)
@pytest.mark.parametrize("step", [1, 3, 7, 1000, 65536])
async def test_same_as_line_by_line(stream: bytes, step: int) -> None:
    cuts = list(range(step, len(stream), step))
    assert await chunked(stream, cuts, None) == by_lines(stream, None)


async def test_size_limit_reads_to_the_end() -> None:
    stream = b"x" * 50 + b"\r\n" + b"y" * 50 + b"\r\n.\r\nQUIT\r\n"
    assert await chunked(stream, [7, 60], 80) == (TOO_MUCH, b"QUIT\r\n")
    assert await chunked(stream, [7, 60], 104) == (stream[:104].replace(b"\r\n.\r\n", b""), b"QUIT\r\n")


async def test_long_line_before_the_size_limit() -> None:
    stream = b"z" * 1500 + b"\r\n" + b"w" * 5000 + b"\r\n.\r\n"
    assert await chunked(stream, [100], 4000) == (TOO_LONG, b"")


_LINE = st.one_of(
    st.sampled_from([b"", b".", b"..", b".x", b"x.", b"\r", b"\n", b".\r", b"a\nb"]),
    st.binary(max_size=40).filter(lambda b: b"\r\n" not in b),
)


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(_LINE, max_size=30),
    after=st.sampled_from([b"", b"QUIT\r\n", b".\r\n", b"\r\n.\r\n"]),
    cuts=st.lists(st.integers(min_value=1, max_value=400), max_size=8),
)
def test_any_stream(lines: list[bytes], after: bytes, cuts: list[int]) -> None:
    stuffed = [b"." + line if line.startswith(b".") else line for line in lines]
    stream = b"".join(line + b"\r\n" for line in stuffed) + b".\r\n" + after
    points = sorted({c for c in cuts if c < len(stream)})
    got = asyncio.run(chunked(stream, points, None))
    assert got == by_lines(stream, None)
    assert got[0] == b"".join(line + b"\r\n" for line in lines)


# -- MAIL/RCPT paths -----------------------------------------------------------------
_ATEXT = "abcXYZ019!#$%&'*+/=?^_`{|}~-"
_PATHS = st.builds(
    lambda local, domain, after: f"<{local}@{domain}>{after}",
    st.lists(st.text(_ATEXT, min_size=1, max_size=6), min_size=1, max_size=3).map(".".join),
    st.lists(st.text("ab9-_", min_size=1, max_size=5), min_size=1, max_size=3).map(".".join),
    st.sampled_from(["", " ", "  SIZE=10", "\tBODY=8BITMIME", " (c) SIZE=1", "SIZE=1", " a b", ">", "x"]),
)


@settings(max_examples=500, deadline=None)
@given(arg=st.one_of(_PATHS, st.text("ab.@<> \t()-_=\"[]1:,;é", max_size=16)))
def test_path_parser_agrees_with_aiosmtpd(arg: str) -> None:
    loop = asyncio.new_event_loop()
    try:
        reference = SMTP(Sink(), loop=loop)
        ours = MxSMTP(types.SimpleNamespace(), on_close=lambda _: None, loop=loop)  # type: ignore[arg-type]
        try:
            expected: tuple[str | None, str | None] = reference._getaddr(arg)
        except (IndexError, ValueError, AttributeError):
            expected = (None, None)  # what MxSMTP answers for the stdlib's crash
        assert ours._getaddr(arg) == expected
    finally:
        loop.close()


# -- bare line endings ------------------------------------------------------------------
@settings(max_examples=500, deadline=None)
@given(data=st.lists(st.sampled_from([b"a", b"\r\n", b"\r", b"\n", b"xy"]), max_size=12).map(b"".join))
def test_bare_line_ending_finder(data: bytes) -> None:
    match = delivery._BARE_LINE_ENDING.search(data)
    assert delivery.find_bare_line_ending(data) == (match.start() if match else None)


_CLEAN_OR_NOT = st.one_of(
    st.sampled_from([b"", b".", b"..x", b"\r", b"\n", b"a\rb", b"a\nb", b"\r\r", b"\n\n", b"x\r"]),
    st.text("ab.", max_size=30).map(str.encode),
)


@settings(max_examples=400, deadline=None)
@given(
    lines=st.lists(_CLEAN_OR_NOT, max_size=40),
    cuts=st.lists(st.integers(min_value=1, max_value=300), max_size=8),
    block=st.integers(min_value=1, max_value=80),
)
def test_reader_tells_bare_line_endings_as_the_finder_does(
    lines: list[bytes], cuts: list[int], block: int
) -> None:
    """read_data_into's verdict (no bare CR or LF) is what delivery.find_bare_line_ending
    says of the content it gives, whatever the read and block boundaries (small
    blocks here, so a CR and its LF fall in different reads and blocks)."""
    stuffed = [b"." + line if line.startswith(b".") else line for line in lines]
    stream = b"".join(line + b"\r\n" for line in stuffed) + b".\r\nQUIT\r\n"
    points = sorted({c for c in cuts if c < len(stream)})

    async def run() -> tuple[bytes, bool]:
        reader = asyncio.StreamReader(limit=LINE_LIMIT)
        for a, b in zip([0, *points], [*points, len(stream)], strict=True):
            reader.feed_data(stream[a:b])
        reader.feed_eof()
        spool = Spool(None)
        clean = await read_data_into(reader, spool, size_limit=None, line_limit=LINE_LIMIT)
        return await spool.read(), clean

    original = protocol._BLOCK
    protocol._BLOCK = block  # type: ignore[misc]
    try:
        content, clean = asyncio.run(run())
    finally:
        protocol._BLOCK = original  # type: ignore[misc]
    assert content == b"".join(line + b"\r\n" for line in lines)
    assert clean == (delivery.find_bare_line_ending(content) is None)


# -- the DATA spool ------------------------------------------------------------------------
@settings(max_examples=150, deadline=None)
@given(
    lines=st.lists(_LINE, max_size=30),
    cuts=st.lists(st.integers(min_value=1, max_value=400), max_size=8),
    threshold=st.integers(min_value=1, max_value=64),
)
def test_spooled_to_disk_same_as_in_memory(tmp_path_factory: pytest.TempPathFactory, lines: list[bytes],
                                           cuts: list[int], threshold: int) -> None:
    """What a session spools to its file (limits.Spool, tiny threshold so every
    message goes to disk) is what the line-by-line reading gives."""
    directory = tmp_path_factory.mktemp("spool")
    stuffed = [b"." + line if line.startswith(b".") else line for line in lines]
    stream = b"".join(line + b"\r\n" for line in stuffed) + b".\r\nQUIT\r\n"
    points = sorted({c for c in cuts if c < len(stream)})

    async def run() -> tuple[bytes, bool]:
        reader = asyncio.StreamReader(limit=LINE_LIMIT)
        for a, b in zip([0, *points], [*points, len(stream)], strict=True):
            reader.feed_data(stream[a:b])
        reader.feed_eof()
        spool = Spool(directory, threshold)
        try:
            await read_data_into(reader, spool, size_limit=None, line_limit=LINE_LIMIT)
            return await spool.read(), spool.on_disk
        finally:
            spool.close()

    content, on_disk = asyncio.run(run())
    assert content == b"".join(line + b"\r\n" for line in lines)
    assert on_disk == (len(content) >= threshold)
    assert list(directory.iterdir()) == [], "anonymous files: nothing left behind"


async def test_memory_budget_takes_turns_and_survives_cancellation() -> None:
    budget = MemoryBudget(100)
    await budget.acquire(60)
    second = asyncio.create_task(budget.acquire(60))
    third = asyncio.create_task(budget.acquire(30))
    await asyncio.sleep(0)
    assert not second.done() and not third.done(), "in order: the 30 waits behind the 60"
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second
    await asyncio.wait_for(third, 5)  # the cancelled waiter no longer blocks it
    assert budget.used == 90
    budget.release(60)
    budget.release(30)
    await asyncio.wait_for(budget.acquire(500), 5)  # larger than the budget: alone
    assert budget.used == 500


@settings(max_examples=500, deadline=None)
@given(arg=st.one_of(_PATHS, st.text("ab.@<> \t()-_=\"\\[]1:\r\x00\x1b\x7f\x85é", max_size=16)))
def test_path_checks_agree(arg: str) -> None:
    """The 501 pre-check (``path_refused``) never refuses what the fast path
    reads, and what it lets through has no control character (a tab included)
    in the address either parser returns."""
    loop = asyncio.new_event_loop()
    try:
        ours = MxSMTP(types.SimpleNamespace(), on_close=lambda _: None, loop=loop)  # type: ignore[arg-type]
        refused = ours.path_refused("FROM:" + arg, "FROM:")
        if _SIMPLE_PATH.match(arg.strip()) is not None:
            assert not refused and not path_error("FROM:" + arg, "FROM:")
        if not refused:
            address, _ = ours._getaddr(arg.strip())
            assert address is None or not re.search(r"[\x00-\x1f\x7f-\x9f]", address)
    finally:
        loop.close()

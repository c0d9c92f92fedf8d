"""Fast paths of the delivery's store half against the general code they stand
in for: the PDF pre-check (``pdfcheck.maybe_pdf``) against its regular
expression, and ``PdfHooks.annotate`` returning a message without PDF as it is."""

from __future__ import annotations

import asyncio
import itertools
import random
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from mailserver.dispatch import pdfcheck
from mailserver.dispatch.pdfcheck import _MAYBE_PDF, maybe_pdf, with_pdf_headers

_PIECES = [bytes(p) for p in itertools.product(b"pPdDfF", repeat=3)] + [
    b"JVBERi0",
    b"JVBERi",
    b"VBERi0",
    b"jvberi0",
    b"x-pdf-signature: valid\r\n",
    b"X-PDF-Signature:",
    b"\xd0\xb4f",
    b"\xc5\xbf",
    b"\r\n",
    b"%PDF-1.7",
    b"application/pdf",
    b"p\x00df",
    b"",
]


def regex_says(message: bytes) -> bool:
    return _MAYBE_PDF.search(message) is not None


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_PIECES) | st.binary(max_size=12), max_size=12))
def test_maybe_pdf_is_the_regex(pieces: list[bytes]) -> None:
    message = b"".join(pieces)
    assert maybe_pdf(message) == regex_says(message)


def test_maybe_pdf_over_every_byte_around_the_letters() -> None:
    """Every byte in each position of "pdf" (case folding is ASCII-only for bytes)."""
    for position in range(3):
        for byte in range(256):
            word = bytearray(b"pdf")
            word[position] = byte
            for message in (bytes(word), b"a " + bytes(word) + b" z", bytes(word).upper()):
                assert maybe_pdf(message) == regex_says(message), message


def test_random_text_agrees() -> None:
    rng = random.Random(17)
    alphabet = b"pdfPDFJVBERi0 \r\nax"
    for _ in range(3000):
        message = bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))
        assert maybe_pdf(message) == regex_says(message), message


class _Settings:
    verify_pdf = True
    fetch_revocation = False
    pdf_timeout = 5.0
    pdf_max_size = 1 << 20


def test_annotate_without_pdf_is_the_general_path() -> None:
    """No "pdf" anywhere: the general path (``with_pdf_headers`` with no checks) gives
    the message back octet for octet, so the fast path may skip it."""
    hooks = pdfcheck.PdfHooks.__new__(pdfcheck.PdfHooks)
    hooks._settings = _Settings()  # type: ignore[assignment]
    messages = [
        b"From: a@b\r\nSubject: hi\r\n\r\nbody\r\n",
        b"From: a@b\r\nSubject: folded\r\n more\r\n",  # no body
        b"\r\nno header at all\r\n",
        b"X-Other: v\r\n\r\n\r\n\r\n",
        b"",
    ]
    for message in messages:
        assert not maybe_pdf(message)
        assert asyncio.run(hooks.annotate(message)) == with_pdf_headers(message, []) == message


# -- headers.addresses: plain mailboxes without email.utils.getaddresses --------

_ADDRESS_PIECES = [
    "a",
    "b",
    "Zz",
    "0",
    "nguyen.van.a",
    "x+tag",
    "o'neil",
    "=?UTF-8?B?QsOh?=",
    "_",
    "-",
    "!#$%&*/=?^`{|}~",
    "@",
    "<",
    ">",
    " ",
    "  ",
    "\t",
    ".",
    "..",
    ",",
    ";",
    ":",
    '"',
    "\\",
    "(",
    ")",
    "[",
    "]",
    "é",
    "Đ",
    "example.org",
    "dongnai.gov.vn",
    "a@b",
    "<a@b.c>",
    "Name <x@y.z>",
    "-x-",
    "x-",
    "\r\n",
]


def _reference(values: list[str]) -> list[tuple[str, str]]:
    import email.utils

    try:
        return email.utils.getaddresses(values)
    except Exception:  # noqa: BLE001 - headers.addresses answers [] then
        return []


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.lists(st.sampled_from(_ADDRESS_PIECES), max_size=8).map("".join), min_size=1, max_size=3))
def test_addresses_are_getaddresses(values: list[str]) -> None:
    from storage import headers

    assert headers.addresses(values) == _reference(values)


def test_addresses_of_plain_forms_take_the_fast_path_and_agree() -> None:
    import email.utils

    from storage import headers

    plain = [
        ["<sender@example.org>"],
        ["Citizen <bench@example.org>"],
        ["bench@dongnai.gov.vn"],
        ["Nguyen Van A<a@b.vn>"],
        ["=?UTF-8?B?QsOh?= <a.b@c-d.e>"],
        ["a@b", "<c@d>", "E F <g@h>"],
        ["o'neil+x@ex-ample.org"],
    ]
    for values in plain:
        assert all(headers._PLAIN_MAILBOX.fullmatch(v) for v in values), values
        assert headers.addresses(values) == email.utils.getaddresses(values), values
    general = [
        ["a@b, c@d"],
        ['"Q" <a@b>'],
        ["A (c) <a@b>"],
        ["A  B <a@b>"],
        ["a.@b"],
        ["J. Doe <a@b>"],
        ["<a@b> x"],
        ["a@[1.2.3.4]"],
        ["Đ <a@b>"],
        ["a@b."],
    ]
    for values in general:
        assert not all(headers._PLAIN_MAILBOX.fullmatch(v) for v in values), values
        assert headers.addresses(values) == _reference(values), values


# Mostly plain pieces (each shape reaches the fast path often), a few that are not.
_WORD = st.sampled_from(
    ["a", "Bb", "nguyen", "o'neil", "=?UTF-8?B?QsOh?=", "x+y", "-"] * 3
    + ["é", "J.", '"q"', "(c)", "a,b", "@", "\\"]
)
_SPACE = st.sampled_from([" "] * 4 + ["", "  ", "\t", " \t", "\r\n "])
_ADDR = st.sampled_from(
    ["a@b", "x.y@c-d.e", "o'n+x@ex-ample.org"] * 3
    + ["a..b@c", ".a@b", "a@b.", "a@-b", "a@b_c", "@b", "a@", "a@[1.2.3.4]", "a"]
)


@settings(max_examples=3000, deadline=None)
@given(
    st.lists(st.tuples(_WORD, _SPACE), max_size=4),
    st.sampled_from(["", " ", "  ", "\t"]),
    _ADDR,
    st.sampled_from(["<>"] * 4 + ["", "<", ">"]),
    st.sampled_from([""] * 6 + [" ", "\t", "x", ","]),
)
def test_mailbox_shapes_are_getaddresses(
    words: list[tuple[str, str]], gap: str, addr: str, brackets: str, tail: str
) -> None:
    from storage import headers

    display = "".join(w + s for w, s in words)
    inner = f"<{addr}>" if brackets == "<>" else brackets + addr
    value = display + gap + inner + tail
    assert headers.addresses([value]) == _reference([value]), value


# -- Maildir: staging names and directory ---------------------------------------


def test_unique_names_differ_in_a_forked_child() -> None:
    """The name's random part comes from a generator seeded once per process: a
    forked child must not repeat its parent's sequence (nor keep its pid)."""
    import os

    from storage import maildir

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, maildir._unique_name().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 4096).decode()
    os.close(read)
    mine = maildir._unique_name()
    assert f"P{pid}R" in child and f"P{os.getpid()}R" in mine
    assert child.split("R")[1][:16] != mine.split("R")[1][:16]
    names = {maildir._unique_name() for _ in range(1000)}
    assert len(names) == 1000
    assert all(len(n.split("R")[1].split(".")[0]) == 16 for n in names)


def test_staging_directory_is_made_when_missing(tmp_path: Path) -> None:
    from storage.maildir import Maildir

    box = Maildir(tmp_path / "mail")
    box.root.mkdir()
    first = box._stage(b"one")
    assert (box.staging / first).read_bytes() == b"one"
    (box.staging / first).unlink()
    box.staging.rmdir()  # removed behind its back: made again
    second = box._stage(b"two")
    assert (box.staging / second).read_bytes() == b"two"


def test_drop_staged_removes_the_file_once_its_write_is_over(tmp_path: Path) -> None:
    import time

    from storage.maildir import Maildir

    box = Maildir(tmp_path / "mail")
    box.root.mkdir()
    name, written = box.begin_stage(b"staged")
    box.drop_staged(name, written)  # possibly before the write ran: removed after it
    assert written.result(10) == name
    deadline = time.monotonic() + 10
    while (box.staging / name).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not (box.staging / name).exists()

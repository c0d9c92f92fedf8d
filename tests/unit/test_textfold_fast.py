"""The indexer's fast paths give the very index entries of the general ones:
``textfold.fold`` strips Vietnamese marks with an ASCII encode instead of a regex
substitution, ``textfold.joined_words`` cuts words with ``bytes.translate`` instead
of a regex match per word, and ``fulltext.build_doc`` cuts text with no diacritics
once for both forms. Every entry the index writes must stay as it was."""

from __future__ import annotations

import base64
import email.message
import random
import re
import unicodedata
from email.header import Header
from email.message import EmailMessage

import pytest

from mailserver.search.document import _HEADERS, _ROLES, _capped, _headers, _parsed, document
from policy.extract.walk import LimitExceeded, Limits, Walker, parse_message
from storage import fulltext, textfold
from storage.api import IndexDoc
from storage.textfold import exact, fold, joined_words

_WORD = re.compile(r"[^\W_]+")
_LATIN_MARKS = re.compile("[\u0300-\u036f]+")


def general_fold(text: str) -> str:
    """``fold`` as written before the ASCII-encode path."""
    if text.isascii():
        return text.lower()
    folded = text.casefold()
    for letter, base in textfold._D:
        if letter in folded:
            folded = folded.replace(letter, base)
    stripped = _LATIN_MARKS.sub("", unicodedata.normalize("NFD", folded))
    if stripped.isascii():
        return stripped
    return unicodedata.normalize("NFC", textfold._all_marks().sub("", stripped))


def general_joined(text: str) -> str:
    return " ".join(_WORD.findall(text))


def general_build_doc(
    message_id: int, *, subject: str, from_: str, to: str, cc: str, bcc: str, bodies: list[str]
) -> IndexDoc:
    """``fulltext.build_doc`` as written before: each form folded and cut on its own."""
    header = "\n".join((subject, from_, to, cc, bcc))
    parts: list[str] = []
    size = 0
    for text in bodies:
        if size >= fulltext.MAX_TEXT:
            break
        parts.append(text[: fulltext.MAX_TEXT - size])
        size += len(parts[-1])
    body = "\n".join(parts)
    return IndexDoc(
        message_id=message_id,
        header=general_joined(general_fold(header)),
        body=general_joined(general_fold(body)),
        header_exact=general_joined(exact(header)),
        body_exact=general_joined(exact(body)),
        subject=fulltext._SPACE.sub(" ", general_fold(subject)).strip(),
        from_=fulltext._SPACE.sub(" ", general_fold(from_)).strip(),
        to=fulltext._SPACE.sub(" ", general_fold(to)).strip(),
        cc=fulltext._SPACE.sub(" ", general_fold(cc)).strip(),
        bcc=fulltext._SPACE.sub(" ", general_fold(bcc)).strip(),
    )


def general_document(message_id: int, data: bytes, limits: Limits) -> IndexDoc:
    """``document`` by the general paths: the whole ``Walker.message`` and the old build."""
    fields = _headers(data)
    walker = Walker(limits)
    try:
        walker.message(parse_message(data), "", 0)
    except (LimitExceeded, RecursionError):
        pass
    units = walker.analysis.units
    texts = _capped([u.text for u in units if u.role in _ROLES and u.where != "subject"])
    return general_build_doc(
        message_id, **{("from_" if k == "from" else k): v for k, v in fields.items()}, bodies=texts
    )


def _code_points() -> list[str]:
    return [chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000]


def test_every_code_point_folds_as_before() -> None:
    chars = _code_points()
    for i in range(0, len(chars), 64):
        chunk = chars[i : i + 64]
        # Alone, after a Vietnamese letter, and with marks of its own around it.
        for text in ("".join(chunk), "".join(f"ế{c}a\u0301" for c in chunk)):
            assert fold(text) == general_fold(text), [hex(ord(c)) for c in chunk]
    for c in chars[:0x3000]:
        assert fold(c) == general_fold(c), hex(ord(c))


def test_every_code_point_is_a_separator_or_a_word_character_as_the_regex_says() -> None:
    chars = _code_points()
    # Chunks of 16 stay under the fast path's limit of distinct separators.
    for i in range(0, len(chars), 16):
        text = "".join(f"a{c}1 {c}{c}ư{c}" for c in chars[i : i + 16])
        assert joined_words(text) == general_joined(text), [hex(ord(c)) for c in chars[i : i + 16]]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \r\n\t ",
        "Số 123/QĐ-UBND, ngày 5.",
        "a_b c__d _e_",
        "“Quyết định” – số 5… « ý kiến » no\u00a0break\u2003em space",
        "lone \ud800 surrogate, é",  # not UTF-8 encodable: the regex path
        "".join(chr(0x2000 + i) + "x" for i in range(80)),  # many distinct separators
        "한국어 텍스트와 tiếng Việt, 中文：标点。",
        "x" * 79 + "\r\n" + "X" * 79,
        "e\u0301\u0301 a\u0300 standalone marks \u0301 after a space",
        "digits ٣٤٥ ² ½ Ⅻ ①",
    ],
)
def test_joined_words_samples(text: str) -> None:
    assert joined_words(text) == general_joined(text)
    assert joined_words(fold(text)) == general_joined(general_fold(text))
    assert joined_words(exact(text)) == general_joined(exact(text))


def test_random_texts_agree() -> None:
    rng = random.Random(17)
    alphabet = (
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 \t\r\n.,;:-_/()'\"!?@#"
        "ạảãàáâậầấẩẫăắằặẳẵóòọõỏôộổỗồốơờớợởỡéèẻẹẽêếềệểễúùủũụưựữửừứíìỉịĩýỳỷỵỹđĐ"
        "ÀÁÂÃĒĚŒßſ“”‘’–—…«»\u00a0\u200b\u0301\u0323ı"
        "한국中文ДЖЯαβγ٣½²Ⅻ①🙂𝐕"
    )
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        assert fold(text) == general_fold(text), text
        assert joined_words(text) == general_joined(text), text
        assert joined_words(fold(text)) == general_joined(general_fold(text)), text
        assert joined_words(exact(text)) == general_joined(exact(text)), text


def _ew(text: str) -> str:
    return Header(text, "utf-8").encode()


def _messages() -> list[bytes]:
    rng = random.Random(21)
    vietnamese = "Quyết định số 123/QĐ-UBND về việc triển khai “chuyển đổi số” – tỉnh Đồng Nai…\r\n"
    found: list[bytes] = [
        b"From: <sender@example.org>\r\nTo: <bench@dongnai.gov.vn>\r\n"
        b"Date: Sun, 6 Dec 2026 01:00:00 +0000\r\n"
        b"Message-Id: <1@localhost>\r\n\r\n" + (b"X" * 79 + b"\r\n") * 60,
        (
            f"From: {_ew('Nguyễn Văn An')} <an@example.org>\r\nTo: {_ew('Hộp thư')} <a@dongnai.gov.vn>,\r\n"
            f" b@example.org\r\nCc: =?ISO-8859-1?Q?Andr=E9?= <andre@example.org>\r\n"
            f"Subject: {_ew('Báo cáo tuần: ý kiến “đóng góp”')}\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            + base64.encodebytes((vietnamese * 20).encode()).decode().replace("\n", "\r\n")
        ).encode(),
        "Subject: Straße ǅ İstanbul 한국어\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "Nội dung 8bit: Ｖｉｅｔ full width, 𝐕𝐢𝐞𝐭, a\u034fb, e\u0301\u0301\r\n".encode(),
        b"Subject: latin-1\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\nCaf=E9 na=EFve =E0 la carte=\r\n continued\r\n",
        b"Subject: no body at all\r\n\r\n",
        b"no header, just text that looks like a body\r\n\r\nand a second paragraph\r\n",
    ]
    for i in range(12):
        msg = EmailMessage()
        msg["From"] = f"Trần Thị {i} <tran{i}@example.org>"
        msg["To"] = "Phòng Tổng hợp <tonghop@dongnai.gov.vn>"
        msg["Cc"] = "" if i % 3 else "Lê Hoàng Minh <minh@example.org>"
        msg["Subject"] = rng.choice(
            ["Giấy mời họp", "Kế hoạch 2024 (lần 2)", "Re: Fwd: ĐỀ NGHỊ cấp tài khoản"]
        )
        words = "đồng nai ủy ban nhân dân tỉnh sở thông tin “truyền thông” văn bản – quyết định".split()
        msg.set_content("\n".join(" ".join(rng.choice(words) for _ in range(12)) for _ in range(20)))
        if i % 2:
            msg.add_alternative(
                f"<html><body><p>Kính gửi <b>anh {i}</b>, xem tệp đính kèm.</p></body></html>", subtype="html"
            )
        if i % 3 == 0:
            msg.add_attachment(
                f"Tờ trình số {i}, tài liệu kèm theo".encode(),
                maintype="text",
                subtype="plain",
                filename=f"Tài liệu {i}.txt",
            )
        if i % 4 == 0:
            msg.add_attachment(
                b"%PDF-1.4\n" + rng.randbytes(3000),
                maintype="application",
                subtype="pdf",
                filename=f"Quyết định {i}.pdf",
            )
        if i % 5 == 0:
            inner = EmailMessage()
            inner["Subject"] = "Thư chuyển tiếp: Công văn đến"
            inner.set_content("Nội dung thư được chuyển tiếp, số 45/BC-STTTT.")
            msg.add_attachment(inner)
        found.append(msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    return found


@pytest.mark.parametrize("data", _messages(), ids=lambda _: "message")  # ids stable across processes (xdist)
def test_documents_agree_with_the_general_path(data: bytes) -> None:
    limits = Limits()
    assert document(7, data, limits) == general_document(7, data, limits)


def test_the_sample_messages_have_text() -> None:
    docs = [document(i, data, Limits()) for i, data in enumerate(_messages())]
    assert sum(1 for d in docs if d.body) == len(docs) - 1  # all but "no body at all"
    assert sum(1 for d in docs if d.body != d.body_exact) > 10  # Vietnamese: two forms


def test_documents_of_the_bench_corpus_agree() -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    import corpus  # type: ignore[import-not-found]

    limits = Limits()
    for i, message in enumerate(corpus.build(40)):
        assert document(i, message.data, limits) == general_document(i, message.data, limits), i


def test_the_walker_depth_check_still_holds() -> None:
    data = _messages()[1]
    assert document(1, data, Limits(max_depth=-1)).body == ""
    assert set(_HEADERS) == {"subject", "from", "to", "cc", "bcc"}


def _tree(msg: email.message.Message) -> object:
    """What the walker reads of a parsed message: each part's header fields, type and payload."""
    payload = msg.get_payload()
    inner = [_tree(p) for p in payload] if isinstance(payload, list) else payload
    return (msg.items(), msg.get_content_type(), msg.get_default_type(), inner)


def _multipart(body: str, boundary: str = "B", subtype: str = "mixed") -> bytes:
    return (
        "From: a@example.org\r\nSubject: parts\r\n"
        f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n' + body
    ).encode()


_LEAF = "Content-Type: text/plain; charset=utf-8\r\n\r\n"
_B64 = (
    'Content-Type: application/octet-stream; name="a.txt"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
    + base64.encodebytes("Tờ trình số 5\r\n".encode() * 40).decode().replace("\n", "\r\n")
)
MULTIPARTS = {
    "plain": (_multipart(f"preamble\r\n--B\r\n{_LEAF}một\r\n--B\r\n{_B64}\r\n--B--\r\nepilogue\r\n"), True),
    "no preamble, trailing blanks": (_multipart(f"--B\r\n{_LEAF}một\r\n\r\n\r\n--B--"), True),
    "delimiter whitespace": (_multipart(f"--B \t\r\n{_LEAF}hai\r\n--B--  \r\n"), True),
    "look-alike lines": (
        _multipart(f"--B\r\n{_LEAF}--Bx\r\n--B--x\r\n-- B\r\n --B\r\nba\r\n--B--\r\n"),
        True,
    ),
    "empty line part": (_multipart(f"--B\r\n\r\n--B\r\n{_LEAF}bốn\r\n--B--\r\n"), False),
    "part without header": (_multipart("--B\r\n\r\nnăm, no header\r\n--B--\r\n"), False),
    "part without header, two paragraphs": (_multipart("--B\r\n\r\nnăm\r\n\r\nsáu\r\n--B--\r\n"), False),
    "header only part": (_multipart(f"--B\r\n{_LEAF}\r\n--B--\r\n"), True),
    "nested alternative": (
        _multipart(
            f'--B\r\nContent-Type: multipart/alternative; boundary="B2"\r\n\r\n--B2\r\n{_LEAF}sáu\r\n'
            "--B2\r\nContent-Type: text/html\r\n\r\n<p>bảy</p>\r\n--B2--\r\ninner epilogue\r\n"
            f"--B\r\n{_B64}\r\n--B--\r\n"
        ),
        True,
    ),
    "nested boundary prefix": (
        _multipart(
            f'--B\r\nContent-Type: multipart/alternative; boundary="B--x"\r\n\r\n--B--x\r\n{_LEAF}tám\r\n'
            "--B--x--\r\n--B--\r\n"
        ),
        True,
    ),
    "only a closing delimiter": (_multipart(f"preamble\r\n{_LEAF}x\r\n--B--\r\nepilogue"), False),
    "no closing delimiter": (_multipart(f"--B\r\n{_LEAF}chín\r\n"), False),
    "repeated delimiters": (_multipart(f"--B\r\n--B\r\n{_LEAF}mười\r\n--B--\r\n"), False),
    "repeated closing": (_multipart(f"--B\r\n{_LEAF}x\r\n--B\r\n--B--\r\n{_LEAF}y\r\n"), False),
    "bare LF and CR in a part": (_multipart(f"--B\r\n{_LEAF}một\nhai\rba\n\r\n--B--\r\n"), True),
    "part ending in a bare CR": (_multipart(f"--B\r\n{_LEAF}x\r\r\n--B--\r\n"), True),
    "bare LF header in a part": (
        _multipart("--B\r\nSubject: y\nContent-Type: text/html\r\n\r\nx\r\n--B--\r\n"),
        True,
    ),
    "delimiter after a bare LF": (_multipart(f"--B\r\n{_LEAF}một\n--B\r\n{_LEAF}hai\r\n--B--\r\n"), False),
    "delimiter after a bare CR": (_multipart(f"--B\r\n{_LEAF}một\r--B\r\n{_LEAF}hai\r\n--B--\r\n"), False),
    "delimiter ending in a bare LF": (_multipart(f"--B\r\n{_LEAF}x\r\n--B\n{_LEAF}y\r\n--B--\r\n"), False),
    "closing ending in a bare CR": (_multipart(f"--B\r\n{_LEAF}x\r\n--B--\r\r\n"), False),
    "body starting with a bare LF": (_multipart(f"\n--B\r\n{_LEAF}x\r\n--B--\r\n"), False),
    "attached message": (
        _multipart("--B\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nthư\r\n--B--\r\n"),
        False,
    ),
    "digest": (_multipart(f"--B\r\n{_LEAF}x\r\n--B--\r\n", subtype="digest"), False),
    "no boundary": (b"Content-Type: multipart/mixed\r\n\r\n--B\r\n\r\nx\r\n--B--\r\n", False),
    "boundary never found": (_multipart(f"--C\r\n{_LEAF}x\r\n--C--\r\n"), False),
    "leaf": (f"Subject: x\r\n{_LEAF}mười một".encode(), True),
    "no blank line": (b"Subject: x\r\nFrom: y", False),
    "header defect": (b"Subject: x\r\nnot a header\r\n\r\nbody", False),
    "LF header": (b"Subject: x\nContent-Type: multipart/mixed; boundary=B\n\n--B\n\nx\n--B--\n", False),
}


@pytest.mark.parametrize("name", MULTIPARTS)
def test_the_fast_parse_builds_the_tree_of_the_general_one(name: str) -> None:
    data, fast = MULTIPARTS[name]
    parsed = _parsed(data)
    if parsed is not None:
        assert _tree(parsed) == _tree(parse_message(data))
    assert (parsed is not None) == fast
    assert document(3, data, Limits()) == general_document(3, data, Limits())


def test_the_sample_and_corpus_multiparts_take_the_fast_parse() -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    import corpus  # type: ignore[import-not-found]

    datas = _messages() + [m.data for m in corpus.build(40)]
    fast = 0
    for data in datas:
        parsed = _parsed(data)
        if parsed is not None:
            fast += parsed.is_multipart()
            assert _tree(parsed) == _tree(parse_message(data))
    assert fast >= 12  # the corpus's attachments and the samples' alternatives


def _nested(levels: int) -> bytes:
    body = f"{_LEAF}đáy"
    for level in range(levels):
        body = (
            f'Content-Type: multipart/mixed; boundary="L{level}"\r\n\r\n--L{level}\r\n'
            f"{_LEAF}tầng {level}\r\n--L{level}\r\n{body}\r\n--L{level}--"
        )
    return f"Subject: nested\r\n{body}\r\n".encode()


@pytest.mark.parametrize(("levels", "fast"), [(3, True), (20, True), (21, False), (60, False), (400, False)])
def test_deep_nesting_takes_the_general_parse(levels: int, fast: bool) -> None:
    data = _nested(levels)
    parsed = _parsed(data)
    assert (parsed is not None) == fast
    if parsed is not None:
        assert _tree(parsed) == _tree(parse_message(data))
    doc = document(5, data, Limits())
    assert doc == general_document(5, data, Limits())
    assert "tang 0" in doc.body or levels > 50


def test_mutated_multiparts_parse_alike() -> None:
    """Line breaks, delimiters and header lines inserted or cut at random: whenever the
    fast parse answers, its tree is the general one's (a fuzz run of 80,000 found the
    case "only a closing delimiter" above)."""
    rng = random.Random(1)
    seeds = [data for data in _messages() if b"multipart" in data] + [data for data, _ in MULTIPARTS.values()]
    fragments = [
        b"\r\n", b"\n", b"\r", b"--", b"-- ", b"\r\n--B", b"\r\n--B--", b"\r\n\r\n", b" ", b"\t", b"x",
        b"--B\r\n", b"--B--", b"Content-Type: multipart/mixed; boundary=B\r\n",
        b"Content-Type: message/rfc822\r\n", b":",
    ]  # fmt: skip
    fast = 0
    for _ in range(3000):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 5)):
            at = rng.randrange(len(data) + 1)
            if rng.random() < 0.3:
                del data[at : at + rng.randint(1, 4)]
            else:
                data[at:at] = rng.choice(fragments)
        parsed = _parsed(bytes(data))
        if parsed is not None:
            fast += parsed.is_multipart()
            assert _tree(parsed) == _tree(parse_message(bytes(data))), bytes(data)
    assert fast > 500

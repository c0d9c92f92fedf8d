"""Text-only mail is scanned in the server process, the rest in workers that
start when first needed and stop when idle; both give the verdicts the
workers alone would give. The fast parsing and text helpers agree with the
slow code they replace."""

from __future__ import annotations

import email
import email.policy
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policy.checks.authentication import verify_dkim
from policy.dns import StaticResolver
from policy.extract.walk import Limits, analyse, analyse_message, parse_message, text_only
from policy.markings import scan_text
from policy.pipeline import Pipeline
from policy.rules.normalize import CONFUSABLES, fold
from policy.settings import PolicySettings
from tests.policy import corpus
from tests.policy.test_policy_units import ctx

SAMPLES = corpus.build()
TEXT_ONLY = corpus.message("Báo cáo tuần", "Nội dung báo cáo.\n" * 50, html="<p>Nội dung <b>báo cáo</b></p>")
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
WITH_DOCX = corpus.message("Hồ sơ", attachments=[("hs.docx", corpus.docx(["Nội dung"]), DOCX_TYPE)])


def crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
@pytest.mark.parametrize("line_end", ["lf", "crlf"])
def test_fast_parse_gives_the_same_analysis(sample: corpus.Sample, line_end: str) -> None:
    data = crlf(sample.data) if line_end == "crlf" else sample.data
    full = email.message_from_bytes(data, policy=email.policy.compat32)
    assert analyse(data, Limits()) == analyse_message(full, Limits())
    assert text_only(parse_message(data)) == text_only(full)


def test_what_counts_as_text_only() -> None:
    assert text_only(parse_message(crlf(TEXT_ONLY)))
    assert text_only(parse_message(b"Subject: x\r\n\r\nno type at all\r\n"))
    assert not text_only(parse_message(crlf(WITH_DOCX)))
    assert not text_only(parse_message(corpus.message("x", attachments=[("a.txt", b"t", "text/plain")])))
    assert not text_only(parse_message(corpus.message("x", attach_message=corpus.inner("y"))))


async def test_verdicts_alike_inline_and_in_a_worker(tmp_path: Path) -> None:
    inline = Pipeline.from_settings(PolicySettings(workers=0), data_dir=tmp_path / "a",
                                    local_domains=["dongnai.gov.vn"])
    worker = Pipeline.from_settings(PolicySettings(workers=0, inline_size=0), data_dir=tmp_path / "b",
                                    local_domains=["dongnai.gov.vn"])
    try:
        for sample in SAMPLES:
            data = crlf(sample.data)
            a = await inline.check_data(ctx(sample.sender), data)
            b = await worker.check_data(ctx(sample.sender), data)
            assert (a.action, a.reply, a.reasons, a.header_bytes()) == (b.action, b.reply, b.reasons,
                                                                     b.header_bytes()), sample.name
    finally:
        await inline.close()
        await worker.close()


async def test_pool_starts_only_for_attachments_and_stops_when_idle(tmp_path: Path) -> None:
    pipe = Pipeline.from_settings(PolicySettings(workers=1, worker_idle=30.0), data_dir=tmp_path,
                                  local_domains=["dongnai.gov.vn"])
    try:
        assert (await pipe.check_data(ctx(), crlf(TEXT_ONLY))).accepted
        assert pipe._pool is None  # no worker process for text-only mail
        assert (await pipe.check_data(ctx(), crlf(WITH_DOCX))).accepted
        assert pipe._pool is not None and pipe._idle_timer is not None
        pipe._watch_idle()  # too early: the pool stays, checked again later
        assert pipe._pool is not None and pipe._idle_timer is not None
        pipe._last_used -= 31.0
        pipe._idle_timer.cancel()
        pipe._watch_idle()
        assert pipe._pool is None and pipe._idle_timer is None and pipe._stopping is not None
        await pipe._stopping  # workers, forkserver and resource tracker gone
        from multiprocessing import forkserver
        assert forkserver._forkserver._forkserver_pid is None
        # The next attachment starts a new pool.
        assert (await pipe.check_data(ctx(), crlf(WITH_DOCX))).accepted
        assert pipe._pool is not None
    finally:
        await pipe.close()


# -- helpers that replaced slower code -------------------------------------------------
def reference_strip_accents(text: str) -> str:
    text = text.replace("đ", "d").replace("Đ", "D")
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(), st.text("aăâeêioôơuưyAĂÂĐđ \u0300\u0301\u0303\u0309\u0323\u034f\u05b0é€"
                                         "\u200b\u2060аеоΑɡ가Ｖ")))
def test_fold_strips_accents(text: str) -> None:
    folded = fold(text)
    prepared = "".join(c for c in unicodedata.normalize("NFKC", text) if unicodedata.category(c) != "Cf")
    prepared = prepared.translate(str.maketrans(CONFUSABLES)).casefold()
    # Compared in NFC: a Hangul syllable is one letter, not its decomposed jamo.
    assert folded.plain == unicodedata.normalize("NFC", reference_strip_accents(prepared))
    assert len(folded.plain) == len(folded.accented)  # one position each: phrase matches map back


def test_scan_text_shortcuts_keep_markings() -> None:
    assert scan_text("plain ASCII text\nMAT\n", structural=True) == []
    assert scan_text("Ho so\nnot secret\n", structural=True) == []
    decomposed = unicodedata.normalize("NFD", "MẬT")  # "ậ" appears only after NFC
    assert [m.level for m in scan_text(f"Báo cáo\n{decomposed}\n", structural=True)] == ["MẬT"]


def test_dkim_needs_a_signature_to_parse_the_body() -> None:
    resolver = StaticResolver({})
    body = b"x" * 100 + b"\r\n"
    assert verify_dkim(resolver, b"From: a@example.org\r\n\r\n" + body * 1000) == ()
    broken = verify_dkim(resolver, b"From: a@example.org\r\n\x01garbage\r\n\r\n" + body)
    assert len(broken) == 1 and broken[0].result == "permerror" and "unparsable" in broken[0].reason
    signed = verify_dkim(resolver, b"DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=s; h=from;"
                         b" bh=AAAA; b=AAAA\r\nFrom: a@example.org\r\n\r\n" + body)
    assert len(signed) == 1 and signed[0].domain == "example.org"

# ruff: noqa: E501 - tables of samples and expected replies read best on one line
"""The policy pipeline wired into every SMTP path, end to end over real SMTP.

The labelled corpus (``tests/policy/corpus.py``) goes through the running
server's MX port with a foreign sender, and a subset through authenticated
submission (RFC 6409) to a colleague and to the outside; each verdict is read
off the SMTP reply and the recipient's folders, with precision and recall per
category. Then: forged verdict fields are deleted, tagged spam is visible in
Junk over IMAP, a quarantined message is released by ``mailserver quarantine
release``, a crashing or hanging check defers the message (451 4.3.0) with
nothing stored or queued, and one verdict covers all recipients or none.

One server (default policy settings, two extraction worker processes) serves
the module's shared tests; the tests that need other settings start their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import json
import logging
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

import aiosmtplib
import pytest
import pytest_asyncio

from mailserver.app import App
from mailserver.config import Config
from mailserver.smtp.delivery import strip_policy_fields
from policy import codes
from policy.checks import Check, MessageView, Resources
from policy.checks.classified import ClassifiedCheck
from policy.context import PolicyContext
from policy.settings import PolicySettings
from policy.verdict import Verdict, reject
from storage.api import INBOX
from tests.conftest import RunningServer, make_config
from tests.policy import corpus
from tests.policy.test_corpus import check_goals, summary

pytestmark = pytest.mark.asyncio(loop_scope="module")

NHAN = "nhan@dongnai.gov.vn"
BINH = "binh@dongnai.gov.vn"
VANTHU = "vanthu@dongnai.gov.vn"
OUTSIDE = "partner@example.org"
FOREIGN = "nguoigui@example.org"
PASSWORD = "Mat-khau-that-dai-2026"
CATEGORIES = ("classified", "malware", "spam")
REFUSED = {"classified": (550, "5.7.1"), "malware": (554, "5.7.0"), "spam": (550, "5.7.1")}
# Tagged (tag 5 / reject 12, see TAGGED_REPORT): no Date, no Message-ID, From
# unlike the envelope, a subject in capitals, a gift with a Zalo contact.
TAGGED = (
    "From: Khuyen Mai <promo@khuyenmai.example>\r\nTo: nhan@dongnai.gov.vn\r\n"
    "Subject: KHUYEN MAI SOC CHI HOM NAY\r\nMIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n\r\n"
    "Khuyến mãi sốc cho quý khách: nhận quà tặng tại cửa hàng, chi tiết qua Zalo 0912 345 678.\r\n"
).encode()
TAGGED_REPORT = (
    "MISSING_DATE=1.5 MISSING_MID=1.5 FROM_ENVELOPE_MISMATCH=1 SUBJ_ALL_CAPS=1.5 URGENCY=0.5 PRIZE=2 CONTACT_CHAT=1"
    " SCAM_CONTACT=1.5"
)
PLAIN = (
    b"From: Nguoi Gui <nguoigui@example.org>\r\nTo: nhan@dongnai.gov.vn\r\n"
    b"Subject: Lich hop tuan toi\r\nDate: Mon, 6 May 2024 08:30:00 +0000\r\n"
    b"Message-ID: <plain-1@example.org>\r\n\r\nKinh gui anh, lich hop tuan toi dinh kem.\r\n"
)


# -- server and clients ---------------------------------------------------------
def cli_config(config: Config, tmp_path: Path) -> Path:
    """A config file for ``mailserver quarantine``: the server's data_dir."""
    path = tmp_path / "mailserver.toml"
    path.write_text(f'[server]\ndata_dir = "{config.data_dir}"\n', encoding="utf-8")
    return path


@contextlib.asynccontextmanager
async def running(tmp_path: Path, policy: PolicySettings | None = None) -> AsyncIterator[tuple[RunningServer, Path]]:
    """A server (tests/conftest.py defaults) with ``policy``; the outside is unreachable."""
    config = make_config(tmp_path / "data")
    config = replace(
        config,
        policy=policy or config.policy,
        outbound=replace(config.outbound, static_routes={"example.org": "127.0.0.1:9"}, retry_base=3600,
                         delay_warning_hours=0),
    )
    async with App(config) as app:
        server = RunningServer(app, config)
        for address in (NHAN, BINH, VANTHU):
            await server.add_account(address, PASSWORD)
        yield server, cli_config(config, tmp_path)


class Smtp:
    """One aiosmtplib connection for many transactions; ``send`` returns
    (code, enhanced code, text) of the final reply of the transaction."""

    def __init__(self, port: int, login: str | None = None) -> None:
        self.client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=60)
        self.login = login

    async def __aenter__(self) -> Smtp:
        await self.client.connect()
        if self.login is not None:
            await self.client.login(self.login, PASSWORD)
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(aiosmtplib.SMTPException):
            await self.client.quit()

    async def send(self, sender: str, rcpts: list[str], data: bytes) -> tuple[int, str, str]:
        try:
            await self.client.mail(sender)
            for rcpt in rcpts:
                await self.client.rcpt(rcpt)
            response = await self.client.data(data)
            code, message = response.code, response.message
        except aiosmtplib.SMTPResponseException as exc:
            code, message = exc.code, exc.message
            await self.client.rset()
        enhanced, _, text = message.partition(" ")
        return code, enhanced, text


def as_staff(data: bytes) -> bytes:
    """The sample as written by the submitting staff member (From aligned)."""
    return re.sub(rb"(?m)^From: [^\r\n]*", f"From: {VANTHU}".encode(), data, count=1)


async def messages(server: RunningServer, address: str, folder: str) -> list[bytes]:
    store = server.app.store
    account = await store.get_account(address)
    assert account is not None
    found = await store.get_folder(account.id, folder)
    return [await store.read_message(account.id, found.id, info.uid)
            for info in await store.list_messages(account.id, found.id)]


async def counts(server: RunningServer, address: str) -> tuple[int, int]:
    """How many messages are in (INBOX, Junk) of ``address``."""
    store = server.app.store
    account = await store.get_account(address)
    assert account is not None
    found = []
    for name in (INBOX, "Junk"):
        folder = await store.get_folder(account.id, name)
        found.append(len(await store.list_messages(account.id, folder.id)))
    return found[0], found[1]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningServer]:
    """A server with the default policy settings, for the whole module."""
    async with running(tmp_path_factory.mktemp("policy-smtp")) as (server, _):
        yield server


@pytest.fixture(scope="module")
def samples() -> list[corpus.Sample]:
    return corpus.build("tune")


def predicted(code: int, enhanced: str, text: str, landed: str | None) -> str:
    """The category an observer of the SMTP reply and the mailbox would assign."""
    if code == 250:
        return {INBOX: "negative", "Junk": "spam"}.get(landed or "", f"250 but stored in {landed}")
    if (code, enhanced, text) == (550, "5.7.1", codes.S550_CLASSIFIED.text):
        return "classified"
    if (code, enhanced) == (554, "5.7.0"):
        return "malware"
    # A From claiming our own domain from outside is refused by sender
    # authentication before the content checks; the corpus labels it spam.
    if (code, enhanced) == (550, "5.7.1") and text in (codes.S550_SPAM.text, codes.S550_LOCAL_SENDER_UNAUTHENTICATED.text):
        return "spam"
    return f"other: {code} {enhanced} {text}"


def report(results: list[tuple[corpus.Sample, str]], title: str) -> None:
    print(f"\n{title}")
    for category in CATEGORIES:
        tp = sum(1 for s, p in results if s.category == category and p == category)
        fp = sum(1 for s, p in results if s.category != category and p == category)
        fn = sum(1 for s, p in results if s.category == category and p != category)
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        print(f"{category:10s} n={tp + fn:3d} precision={precision:.3f} recall={recall:.3f} (tp={tp} fp={fp} fn={fn})")
    negatives = [p for s, p in results if s.category == "negative"]
    print(f"negative   n={len(negatives):3d} false positives={sum(1 for p in negatives if p != 'negative')}")


# -- the corpus -------------------------------------------------------------------
@pytest.mark.parametrize("split", corpus.SPLITS)
async def test_corpus_over_mx(shared: RunningServer, split: str) -> None:
    """Every sample from an outside sender through the MX, headers as written
    (external From, no DKIM, DNS off): spam must be refused or land in Junk."""
    samples = corpus.build(split)
    results: list[tuple[corpus.Sample, str]] = []
    wrong: list[tuple[str, str, str, tuple[int, str, str]]] = []
    async with Smtp(shared.port("smtp")) as mx:
        for sample in samples:
            before = await counts(shared, NHAN)
            reply = await mx.send(sample.sender, [NHAN], sample.data)
            after = await counts(shared, NHAN)
            landed = INBOX if after[0] > before[0] else "Junk" if after[1] > before[1] else None
            if reply[0] != 250:
                assert after == before, f"{sample.name}: refused but stored"
            else:
                assert sum(after) == sum(before) + 1, f"{sample.name}: accepted, stored {sum(after) - sum(before)} times"
            guess = predicted(*reply, landed)
            results.append((sample, guess))
            if guess != sample.category:
                wrong.append((sample.category, sample.name, guess, reply))
            elif reply[0] != 250:
                assert reply[:2] == REFUSED[sample.category], (sample.name, reply)
    report(results, f"corpus {split} over SMTP (MX, direction inbound)")
    for item in wrong:
        print("MISMATCH", item)
    print(summary(split, "MX", results))
    check_goals(results)
    assert shared.app.pipeline.stats["action.reject"] > 0
    assert shared.app.quarantine.list() == []
    inbox = await messages(shared, NHAN, INBOX)
    assert all(m.count(b"\r\nX-Policy: classified=pass; malware=clean;") == 1 for m in inbox)


SUBMITTED = {  # a subset through authenticated submission
    "classified": ["subject-tag", "body-field", "docx-paragraph", "pdf-stamp", "zip-docx", "rfc822-docx", "filename-ascii"],
    "malware": ["eicar", "exe", "docm", "encrypted-zip", "js-in-zip"],
    "negative": ["seed-body-0", "seed-docx-1", "ordinary-body-0", "ordinary-docx-7", "subject-bimat", "tcvn3-plain"],
}


async def test_corpus_over_submission(shared: RunningServer, samples: list[corpus.Sample]) -> None:
    """Classified and malware checks apply to staff too, to a colleague
    (internal) and to the outside (submission); spam is scored inbound only."""
    by_name = {s.name: s for s in samples}
    chosen = [by_name[name] for names in SUBMITTED.values() for name in names]
    spam = next(s for s in samples if s.category == "spam")
    results: list[tuple[corpus.Sample, str]] = []
    queued_before = len(await shared.app.queue.list())
    async with Smtp(shared.port("submission"), login=VANTHU) as msa:
        for sample in [*chosen, spam]:
            data = as_staff(sample.data)
            for rcpts in ([NHAN], [OUTSIDE]):
                before = await counts(shared, NHAN)
                code, enhanced, text = await msa.send(VANTHU, rcpts, data)
                after = await counts(shared, NHAN)
                if sample is spam:
                    assert code == 250, (sample.name, code, text)  # not scored on submission by default
                    continue
                landed = INBOX if after[0] > before[0] else "Junk" if after[1] > before[1] else None
                if rcpts == [OUTSIDE] and code == 250:
                    landed = INBOX  # queued for the outside: counted as delivered
                guess = predicted(code, enhanced, text, landed)
                results.append((sample, guess))
                assert guess == sample.category, (sample.name, rcpts, code, enhanced, text)
                if code != 250:
                    assert after == before and (code, enhanced) == REFUSED[sample.category]
    report(results, "corpus subset over submission (directions internal and submission)")
    # Only what was accepted for the outside is queued: negatives and the spam sample.
    assert len(await shared.app.queue.list()) - queued_before == len(SUBMITTED["negative"]) + 1


# -- header fields, Junk, all or none ------------------------------------------------
async def test_strip_policy_fields() -> None:
    data = (b"X-Policy: classified=allowed\r\nSubject: a\r\nX-Spam-Score: -50\r\n\t folded\r\n"
            b"x-spam-flag:NO\r\nX-Legacy-Encoding: none\r\nX-Policyholder: kept\r\n\r\nX-Policy: in the body\r\n")
    assert strip_policy_fields(data) == b"Subject: a\r\nX-Policyholder: kept\r\n\r\nX-Policy: in the body\r\n"
    assert strip_policy_fields(b"Subject: a\r\n\r\nbody\r\n") == b"Subject: a\r\n\r\nbody\r\n"
    assert strip_policy_fields(b"\r\nX-Policy: body only\r\n") == b"\r\nX-Policy: body only\r\n"


async def test_forged_verdict_fields_are_deleted(shared: RunningServer) -> None:
    forged = (b"X-Policy: classified=allowed; spam=0.0\r\nX-Spam-Flag: NO\r\nX-Spam-Score: -100\r\n\t-100\r\n"
              b"X-Spam-Report: -100 (tag 5, reject 12) ALLOWED=-100\r\n\tWHITELIST=-100\r\n"
              b"X-Legacy-Encoding: none\r\n") + PLAIN
    async with Smtp(shared.port("smtp")) as mx:
        assert (await mx.send(FOREIGN, [BINH], forged))[:2] == (250, "2.0.0")
    stored = (await messages(shared, BINH, INBOX))[-1]
    assert stored.endswith(PLAIN)
    head = stored[: len(stored) - len(PLAIN)].decode()
    assert "allowed" not in head and "-100" not in head and "X-Spam-Flag" not in head and "X-Legacy" not in head
    assert "WHITELIST" not in head and "ALLOWED" not in head
    assert head.count("X-Policy: ") == 1 and "X-Spam-Score: " in head and head.count("X-Spam-Report: ") == 1
    # Our fields follow the trace fields (Return-Path, Received).
    assert head.index("Received: ") < head.index("X-Policy: classified=pass")


async def test_gtube_is_refused_over_mx(shared: RunningServer) -> None:
    """The GTUBE test string (SpamAssassin's) is refused whatever else the message says."""
    gtube = PLAIN.replace(b"Kinh gui anh", b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\nKinh gui anh")
    before = await counts(shared, NHAN)
    async with Smtp(shared.port("smtp")) as mx:
        assert await mx.send(FOREIGN, [NHAN], gtube) == (550, "5.7.1", codes.S550_SPAM.text)
    assert await counts(shared, NHAN) == before


async def test_tagged_spam_in_junk_over_imap(shared: RunningServer) -> None:
    before = await counts(shared, NHAN)
    async with Smtp(shared.port("smtp")) as mx:
        assert (await mx.send(FOREIGN, [NHAN], TAGGED))[0] == 250
    assert await counts(shared, NHAN) == (before[0], before[1] + 1)

    def imap() -> tuple[int, bytes]:
        client = imaplib.IMAP4("127.0.0.1", shared.port("imap"))
        try:
            client.login(NHAN, PASSWORD)
            status, data = client.select("Junk", readonly=True)
            assert status == "OK"
            exists = int(data[0] or 0)
            status, fetched = client.fetch(str(exists), "(BODY.PEEK[HEADER])")
            assert status == "OK" and isinstance(fetched[0], tuple)
            return exists, fetched[0][1]
        finally:
            client.logout()

    exists, header = await asyncio.to_thread(imap)
    assert exists == before[1] + 1
    assert b"X-Spam-Flag: YES" in header and b"KHUYEN MAI" in header
    # The rules that fired, with their scores, as SpamAssassin's report does.
    report = re.search(rb"\r\nX-Spam-Report: ([-\d.]+) \(tag 5, reject 12\) ([^\r\n]*)\r\n", header)
    assert report is not None, header
    assert report.group(2).decode().startswith(TAGGED_REPORT)
    assert f"spam={report.group(1).decode()}/tag".encode() in header


async def test_one_verdict_for_all_recipients(shared: RunningServer, samples: list[corpus.Sample]) -> None:
    classified = next(s for s in samples if s.name == "docx-paragraph")
    start = {a: await counts(shared, a) for a in (NHAN, BINH)}
    queued = len(await shared.app.queue.list())
    async with Smtp(shared.port("smtp")) as mx:
        code, enhanced, _ = await mx.send(FOREIGN, [NHAN, BINH], classified.data)
        assert (code, enhanced) == (550, "5.7.1")
        assert {a: await counts(shared, a) for a in (NHAN, BINH)} == start  # refused for everyone
        assert (await mx.send(FOREIGN, [NHAN, BINH], TAGGED))[0] == 250
        assert {a: await counts(shared, a) for a in (NHAN, BINH)} == {a: (c[0], c[1] + 1) for a, c in start.items()}
    data = as_staff(classified.data)
    async with Smtp(shared.port("submission"), login=VANTHU) as msa:
        assert (await msa.send(VANTHU, [NHAN, OUTSIDE], data))[:2] == (550, "5.7.1")
        assert len(await shared.app.queue.list()) == queued  # neither stored nor queued
        assert (await counts(shared, NHAN))[0] == start[NHAN][0]
        plain = as_staff(PLAIN)
        assert (await msa.send(VANTHU, [NHAN, OUTSIDE], plain))[0] == 250
        assert len(await shared.app.queue.list()) == queued + 1
        assert (await counts(shared, NHAN))[0] == start[NHAN][0] + 1


# -- quarantine and failures (own servers) -------------------------------------------
async def cli(config: Path, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mailserver", "--config", str(config), "quarantine", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_quarantine_then_release(tmp_path: Path, samples: list[corpus.Sample]) -> None:
    classified = next(s for s in samples if s.name == "subject-tag")
    policy = PolicySettings(classified={"action": "quarantine"})
    async with running(tmp_path, policy) as (server, path):
        async with Smtp(server.port("smtp")) as mx:
            assert (await mx.send(FOREIGN, [NHAN, BINH], classified.data))[:2] == (250, "2.0.0")
        assert await counts(server, NHAN) == (0, 0) and await counts(server, BINH) == (0, 0)
        code, out, err = await cli(path, "list", "--json")
        assert code == 0, err
        (entry,) = json.loads(out)
        assert entry["recipients"] == [NHAN, BINH] and entry["sender"] == FOREIGN
        assert any(r.startswith("classified: ") for r in entry["reasons"])
        held = (server.config.data_dir / "quarantine" / f"{entry['id']}.eml").read_bytes()
        assert held.startswith(b"Return-Path: <nguoigui@example.org>\r\n")
        assert re.search(rb"\r\nX-Policy: classified=[a-z/-]*/quarantine", held) and b"Received: from " in held
        code, out, err = await cli(path, "release", entry["id"])
        assert code == 0, err
        assert "released" in out
        assert await messages(server, NHAN, INBOX) == [held] and await messages(server, BINH, INBOX) == [held]
        assert server.app.quarantine.list() == []
        code, out, err = await cli(path, "release", entry["id"])
        assert code != 0 and "no such quarantine entry" in err and "Traceback" not in err


async def test_failing_check_defers_and_stores_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    policy = PolicySettings(workers=0, check_timeout=1.0, spam={"block_senders": ["@blocked.example"]})

    async def crash(self: ClassifiedCheck, ctx: PolicyContext, message: MessageView) -> Verdict:
        raise RuntimeError("parser bug")

    async def hang(self: ClassifiedCheck, ctx: PolicyContext, message: MessageView) -> Verdict:
        await asyncio.sleep(60)
        raise AssertionError("not reached")

    plain = as_staff(PLAIN)
    async with running(tmp_path, policy) as (server, _):
        async with Smtp(server.port("smtp")) as mx:
            # The MAIL stage of the pipeline: a block-listed sender.
            assert (await mx.send("spammer@blocked.example", [NHAN], PLAIN))[:2] == (550, "5.7.1")
            for fault in (crash, hang):
                monkeypatch.setattr(ClassifiedCheck, "data", fault)
                with caplog.at_level(logging.INFO, logger="policy.pipeline"):
                    assert (await mx.send(FOREIGN, [NHAN], PLAIN))[:2] == (451, "4.3.0")
                    async with Smtp(server.port("submission"), login=VANTHU) as msa:
                        assert (await msa.send(VANTHU, [NHAN, OUTSIDE], plain))[:2] == (451, "4.3.0")
                expected = "failed at data" if fault is crash else "timed out at data"
                assert any(expected in r.getMessage() for r in caplog.records), caplog.text
                assert await counts(server, NHAN) == (0, 0)
                assert await server.app.queue.list() == [] and server.app.quarantine.list() == []
            monkeypatch.undo()
            assert (await mx.send(FOREIGN, [NHAN], PLAIN))[:2] == (250, "2.0.0")
        assert await counts(server, NHAN) == (1, 0)


class RcptRule(Check):
    """A check with connect and RCPT stages, to see them wired in."""

    name: ClassVar[str] = "rcpt-rule"
    seen: ClassVar[list[str]] = []

    async def connect(self, ctx: PolicyContext) -> Verdict | None:
        self.seen.append(f"connect {ctx.session.client_ip} {ctx.direction}")
        return None

    async def rcpt(self, ctx: PolicyContext, rcpt: str) -> Verdict | None:
        if rcpt == BINH:
            return reject(self.name, codes.S550_POLICY, "test rule")
        return None


async def test_connect_and_rcpt_stages(tmp_path: Path) -> None:
    async with running(tmp_path, PolicySettings(workers=0)) as (server, _):
        server.app.pipeline.checks.append(RcptRule(Resources(server.app.pipeline.settings, tmp_path)))
        async with Smtp(server.port("smtp")) as mx:
            await mx.client.mail(FOREIGN)
            assert (await mx.client.rcpt(NHAN)).code == 250
            with pytest.raises(aiosmtplib.SMTPRecipientRefused) as refused:
                await mx.client.rcpt(BINH)
            assert refused.value.code == 550
            assert (await mx.client.data(PLAIN)).code == 250
        assert await counts(server, NHAN) == (1, 0) and await counts(server, BINH) == (0, 0)
        stored = (await messages(server, NHAN, INBOX))[0]
        assert b"for <nhan@dongnai.gov.vn>;" in stored  # the refused recipient left no trace
        assert RcptRule.seen == ["connect 127.0.0.1 inbound"]

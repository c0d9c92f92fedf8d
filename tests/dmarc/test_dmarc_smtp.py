"""DMARC aggregate reports and ARC end to end: a real App on port 0 with static
DNS answers (no network), smtplib to the MX, and the outbound queue delivering
to a recording SMTP server on loopback that stands for the outside domains.

* a report that the RFC 7489 appendix C schema accepts (and our parser reads)
  reaches the domain's rua, gzip-attached under the section 7.2.1.1 name,
  DKIM-signed; an unverified outside destination and one whose size limit is
  too small get nothing;
* a forwarded message (``forward set`` to an outside address) carries an ARC
  set that dkimpy verifies;
* a Google-style report mailed to our ``dmarc.rua`` is summarised on
  ``/admin/dmarc`` (who sends as dongnai.gov.vn, pass/fail).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import gzip
import re
import smtplib
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import date, timedelta
from email.message import EmailMessage
from pathlib import Path

import dkim
import pytest
from aiohttp.test_utils import TestClient, TestServer

from mailserver.app import App
from mailserver.directory.addressing import Addressing
from mailserver.dispatch.groups import GroupStore
from mailserver.ops.settings import DmarcSettings
from mailserver.web.server import build_application
from mailserver.web.settings import WebSettings
from pki.arc import seal_forwarded
from pki.dkim import key_directory
from pki.keystore import DkimKeyStore
from pki.settings import ArcSettings
from policy.aggregate import parse_report
from policy.settings import DnsSettings
from storage.directory import By
from storage.dmarc import dmarc_for
from tests.clients.test_submission import PASSWORD, RemoteMx, outbound_config, submit
from tests.conftest import RunningServer, eventually
from tests.dmarc.samples import GOOGLE_REPORT, report_message, schema_errors
from tests.web.helpers import OPERATOR, OPERATOR_PASSWORD, csrf_of

ANNV = "annv@dongnai.gov.vn"
BINH = "binhtt@dongnai.gov.vn"
RUA = "dmarc@dongnai.gov.vn"
PARTNER = "doitac@partner.test"
BY = By("test", "Số 9/QĐ-UBND")


def zone(keys: DkimKeyStore) -> dict[str, list[str]]:
    return {
        "partner.test TXT": ["v=spf1 ip4:127.0.0.1 -all"],
        "_dmarc.partner.test TXT": [
            "v=DMARC1; p=none; rua=mailto:dmarc@reports.example!10m,mailto:agg@partner.test,"
            "mailto:x@unverified.example,mailto:tiny@partner.test!100"
        ],
        "partner.test._report._dmarc.reports.example TXT": ["v=DMARC1"],
        **{f"{k.dns_name} TXT": [k.txt] for k in keys.keys()},
    }


def list_keys(tmp_path: Path) -> DkimKeyStore:
    """Keys of two mailing lists: one we trust as an ARC sealer, one we do not."""
    keys = DkimKeyStore(tmp_path / "list-keys")
    until = date.today() + timedelta(days=30)
    keys.generate("lists.example.org", "arc1", "rsa", retire_after=until)
    keys.generate("other-list.example", "arc1", "rsa", retire_after=until)
    return keys


def dnsfunc_for(records: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        found = records.get(f"{name.decode().rstrip('.')} TXT")
        return found[0].encode() if found else None

    return dnsfunc


@pytest.fixture
async def mx(tmp_path: Path, remote: RemoteMx) -> AsyncIterator[tuple[RunningServer, dict[str, list[str]]]]:
    routes = {d: f"127.0.0.1:{remote.port}"
              for d in ("partner.test", "reports.example", "unverified.example", "example.org")}
    config = outbound_config(tmp_path / "data", routes)
    keys = DkimKeyStore(key_directory(config.dkim, config.data_dir))
    keys.generate("dongnai.gov.vn", "s1", "rsa", retire_after=date.today() + timedelta(days=30))
    lists = list_keys(tmp_path)
    records = {**zone(keys), **{f"{k.dns_name} TXT": [k.txt] for k in lists.keys()},
               "_dmarc.strict.test TXT": ["v=DMARC1; p=reject"],
               "lists.example.org TXT": ["v=spf1 ip4:127.0.0.1 -all"],
               "other-list.example TXT": ["v=spf1 ip4:127.0.0.1 -all"]}
    config = replace(
        config,
        dns=DnsSettings(static=records, use_servers=False),
        dmarc=DmarcSettings(rua=RUA, check_interval=3600.0),
        arc=ArcSettings(trusted_sealers=["lists.example.org"]),
        web=WebSettings(listen="127.0.0.1:0", operators=[OPERATOR]),
    )
    async with App(config) as app:
        running = RunningServer(app, config)
        for address in (ANNV, BINH, RUA):
            await running.add_account(address, PASSWORD)
        await running.add_account(OPERATOR, OPERATOR_PASSWORD)
        yield running, records


def _send(port: int, sender: str, rcpts: list[str], data: bytes) -> dict[str, tuple[int, bytes]]:
    with smtplib.SMTP("127.0.0.1", port, local_hostname="mail.partner.test", timeout=30) as smtp:
        return smtp.sendmail(sender, rcpts, data)


async def mx_send(server: RunningServer, sender: str, rcpts: list[str], data: bytes) -> None:
    assert await asyncio.to_thread(_send, server.port("smtp"), sender, rcpts, data) == {}


def message(from_addr: str, to: str, subject: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = from_addr
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = "Sat, 05 Dec 2026 08:00:00 +0700"
    msg["Message-ID"] = f"<{abs(hash(subject))}@partner.test>"
    msg.set_content("Xin chào từ đối tác.")
    return msg.as_bytes(policy=email.policy.SMTP)


async def test_aggregate_report_reaches_the_rua(
    mx: tuple[RunningServer, dict[str, list[str]]], remote: RemoteMx
) -> None:
    server, records = mx
    await mx_send(server, PARTNER, [ANNV], message(PARTNER, ANNV, "Hợp lệ"))  # SPF aligned: pass
    # Someone else's envelope with partner.test's From: DMARC fails (p=none: delivered).
    await mx_send(server, "x@elsewhere.test", [ANNV], message(PARTNER, ANNV, "Giả mạo"))
    await mx_send(server, "x@elsewhere.test", [BINH], message(PARTNER, BINH, "Giả mạo 2"))
    assert server.app.dmarc is not None
    outcome = await server.app.dmarc.send_due(force=True)
    assert sorted(s.destination for s in outcome.sent) == ["agg@partner.test", "dmarc@reports.example"]
    assert any("x@unverified.example" in s and "7.1" in s for s in outcome.skipped), outcome.skipped
    assert any("tiny@partner.test" in s and "limit of 100" in s for s in outcome.skipped), outcome.skipped
    assert await dmarc_for(server.app.store).pending() == []  # reported rows are gone

    async def two() -> bool:
        return len(remote.messages) >= 2

    await eventually(two, "both reports delivered")
    assert sorted(r for m in remote.messages for r in m.rcpt_tos) == ["agg@partner.test",
                                                                      "dmarc@reports.example"]
    for sent in remote.messages:
        assert sent.mail_from == "noreply-dmarc@dongnai.gov.vn"
        # Signed with our DKIM key like all our mail (verified through our "DNS").
        assert dkim.verify(sent.content, dnsfunc=dnsfunc_for(records))
        parsed = email.message_from_bytes(sent.content, policy=email.policy.default)
        assert re.fullmatch(r"Report Domain: partner\.test Submitter: dongnai\.gov\.vn Report-ID: <.+>",
                            str(parsed["Subject"]))
        (attachment,) = [p for p in parsed.iter_attachments()]
        assert attachment.get_content_type() == "application/gzip"
        name = attachment.get_filename() or ""
        match = re.fullmatch(r"dongnai\.gov\.vn!partner\.test!(\d+)!(\d+)\.xml\.gz", name)
        assert match and int(match.group(1)) <= int(match.group(2)), name
        xml = gzip.decompress(attachment.get_content())
        assert schema_errors(xml) == []
        report = parse_report(xml)
        assert (report.domain, report.policy, report.org_name) == ("partner.test", "none", "dongnai.gov.vn")
        assert (report.begin, report.end) == (int(match.group(1)), int(match.group(2)))
        counts = sorted((r.source_ip, r.dkim, r.spf, r.disposition, r.count) for r in report.rows)
        assert counts == [("127.0.0.1", "fail", "fail", "none", 2), ("127.0.0.1", "fail", "pass", "none", 1)]

    # Nothing pending: a second run sends nothing.
    assert (await server.app.dmarc.send_due(force=True)).sent == []


async def test_forward_carries_an_arc_set_dkimpy_verifies(
    mx: tuple[RunningServer, dict[str, list[str]]], remote: RemoteMx
) -> None:
    server, records = mx
    await Addressing(server.app.store, server.config).set_forward(BINH, "binh.nha@example.org",
                                                                  keep_copy=False, by=BY)
    await mx_send(server, PARTNER, [BINH], message(PARTNER, BINH, "Chuyển tiếp"))

    async def forwarded() -> bool:
        return any(m.rcpt_tos == ["binh.nha@example.org"] for m in remote.messages)

    await eventually(forwarded, "the forwarded copy reached example.org")
    sent = next(m for m in remote.messages if m.rcpt_tos == ["binh.nha@example.org"])
    assert sent.content.startswith(b"ARC-Seal: i=1; cv=none; a=rsa-sha256; d=dongnai.gov.vn; s=s1;")
    cv, sets, reason = dkim.arc_verify(sent.content, dnsfunc=dnsfunc_for(records))
    assert cv == dkim.CV_Pass, reason
    assert sets[0]["as-domain"] == b"dongnai.gov.vn"
    aar = sets[0]["aar-value"].decode()
    assert "mx.test.dongnai.gov.vn" in aar and "dmarc=pass" in aar and "spf=pass" in aar
    # A change on the way breaks it: the check above could fail.
    tampered = sent.content.replace(b"Subject:", b"Subject: [sua]", 1)
    assert dkim.arc_verify(tampered, dnsfunc=dnsfunc_for(records))[0] == dkim.CV_Fail


async def test_a_trusted_sealer_overrides_a_dmarc_reject(
    mx: tuple[RunningServer, dict[str, list[str]]], tmp_path: Path
) -> None:
    server, _ = mx
    keys = DkimKeyStore(tmp_path / "list-keys")

    def through(list_domain: str, subject: str) -> bytes:
        """strict.test (p=reject) mail that a list changed and sealed after seeing DMARC pass."""
        seen = (f"Authentication-Results: mx.{list_domain}; spf=pass smtp.mailfrom=strict.test;\r\n"
                " dmarc=pass header.from=strict.test\r\n").encode()
        return seal_forwarded(seen + message("chu.tich@strict.test", ANNV, subject), keys=keys,
                              domain=list_domain, authserv_id=f"mx.{list_domain}")

    await mx_send(server, "bounces@lists.example.org", [ANNV], through("lists.example.org", "Qua danh sách"))
    account = await server.app.store.get_account(ANNV)
    assert account is not None
    folder = await server.app.store.get_folder(account.id, "INBOX")
    (info,) = await server.app.store.list_messages(account.id, folder.id)
    stored = (await server.app.store.read_message(account.id, folder.id, info.uid)).decode()
    results = re.sub(r"\r\n[\t ]+", " ", stored.split("\r\nReceived:", 1)[0])
    assert "dmarc=fail (p=reject dis=none arc-override=lists.example.org) header.from=strict.test" in results
    assert "arc=pass" in results and "header.as-d=lists.example.org" in results
    # The same from a list we do not trust is refused (p=reject honoured).
    with pytest.raises(smtplib.SMTPDataError) as refused:
        await mx_send(server, "bounces@other-list.example", [ANNV], through("other-list.example", "Khác"))
    assert refused.value.smtp_code == 550


async def test_a_group_seals_what_it_sends_outside_not_what_the_user_named(
    mx: tuple[RunningServer, dict[str, list[str]]], remote: RemoteMx
) -> None:
    server, records = mx
    groups = GroupStore(server.config.data_dir)
    groups.add("doi-tac", "Đối tác")
    groups.add_member("doi-tac", BINH)
    groups.add_member("doi-tac", "nhom@example.org")
    data = message(ANNV, "doi-tac@dongnai.gov.vn", "Mời họp")
    await submit(server, ANNV, ["doi-tac@dongnai.gov.vn", "truc.tiep@example.org"], data)

    async def both() -> bool:
        return len(remote.messages) >= 2

    await eventually(both, "the group's and the named copy left")
    by_rcpt = {m.rcpt_tos[0]: m for m in remote.messages}
    expanded, named = by_rcpt["nhom@example.org"], by_rcpt["truc.tiep@example.org"]
    # Our DKIM signature (added at enqueue) on top, the ARC set below it.
    assert expanded.content.startswith(b"DKIM-Signature: ")
    assert b"\r\nARC-Seal: i=1; cv=none;" in expanded.content.split(b"\r\n\r\n", 1)[0]
    assert dkim.arc_verify(expanded.content, dnsfunc=dnsfunc_for(records))[0] == dkim.CV_Pass
    assert b"ARC-Seal" not in named.content.split(b"\r\n\r\n", 1)[0]
    for sent in (expanded, named):  # our own mail: DKIM-signed either way
        assert dkim.verify(sent.content, dnsfunc=dnsfunc_for(records))


async def test_reports_to_our_rua_are_summarised_on_admin(
    mx: tuple[RunningServer, dict[str, list[str]]]
) -> None:
    server, _ = mx
    # Not a report: stored like any mail, the parser only logs it.
    await mx_send(server, "someone@example.org", [RUA], message("someone@example.org", RUA, "Không phải"))
    report = report_message(GOOGLE_REPORT, RUA)
    await mx_send(server, "noreply-dmarc-support@google.com", [RUA], report)
    store = dmarc_for(server.app.store)

    async def parsed() -> bool:
        return bool(await store.senders())

    await eventually(parsed, "the report was parsed")
    await mx_send(server, "noreply-dmarc-support@google.com", [RUA], report)  # the same report again
    senders = {(s.header_from, s.source_ip): s for s in await store.senders(["dongnai.gov.vn"])}
    assert set(senders) == {("dongnai.gov.vn", "203.113.131.5"), ("dongnai.gov.vn", "198.51.100.66")}
    good, bad = senders[("dongnai.gov.vn", "203.113.131.5")], senders[("dongnai.gov.vn", "198.51.100.66")]
    assert (good.messages, good.passed) == (42, 42)  # stored once
    assert (bad.messages, bad.passed, bad.reporters) == (7, 0, ("google.com",))
    account = await server.app.store.get_account(RUA)
    assert account is not None
    inbox = await server.app.store.get_folder(account.id, "INBOX")
    assert len(await server.app.store.list_messages(account.id, inbox.id)) == 3  # every mail kept

    async with TestClient(TestServer(build_application(server.app.portal_dependencies()))) as client:
        assert (await client.get("/admin/dmarc", allow_redirects=False)).status == 303  # operators only
        token = csrf_of(await (await client.get("/admin/login")).text())
        login = await client.post("/admin/login", allow_redirects=False, data={
            "csrf": token, "address": OPERATOR, "password": OPERATOR_PASSWORD, "totp": ""})
        assert login.status == 303
        page = await (await client.get("/admin/dmarc")).text()
    assert 'id="dmarc-senders"' in page
    row = re.search(r'<tr class="dmarc-fail">(.*?)</tr>', page, re.DOTALL)
    assert row is not None and "198.51.100.66" in row.group(1) and ">7<" in row.group(1)
    assert "203.113.131.5" in page and "google.com" in page

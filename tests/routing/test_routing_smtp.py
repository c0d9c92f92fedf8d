"""Alias domains, address aliases and forwarding over real SMTP: smtplib to the
MX, aiosmtplib on submission, the outbound queue to a recording server on
loopback standing for the outside domains (mailserver/directory/routing.py,
mailserver/smtp/srs.py)."""

from __future__ import annotations

import smtplib

import aiosmtplib
import pytest

from mailserver.directory.addressing import Addressing, RouteError
from mailserver.directory.service import DirectoryService
from storage.directory import open_directory
from tests.clients.test_submission import (
    ANNV,
    BINH,
    OUTSIDE,
    RemoteMx,
    eventually,
    inbox_messages,
    message,
    parse,
    queue_empty,
    submit,
)
from tests.conftest import RunningServer
from tests.routing.conftest import BY, mx_send

Routed = tuple[RunningServer, Addressing]
PARTNER = "doitac@partner.test"


async def test_alias_domain_delivers_and_its_owner_sends_as_it(routed: Routed, remote: RemoteMx) -> None:
    server, routes = routed
    await routes.add_domain("dongnai.vn", "dongnai.gov.vn", by=BY)
    refused = await mx_send(server, PARTNER, ["annv@dongnai.vn", "ANNV@DongNai.VN"],
                            message(PARTNER, ["annv@dongnai.vn"], "Gửi qua tên miền cũ"))
    assert refused == {}
    (got,) = await inbox_messages(server, ANNV)  # two spellings, one mailbox, one copy
    assert "Gửi qua tên miền cũ" in str(parse(got)["Subject"])
    with pytest.raises(smtplib.SMTPRecipientsRefused) as unknown:
        await mx_send(server, PARTNER, ["khongco@dongnai.vn"], message(PARTNER, ["khongco@dongnai.vn"]))
    assert unknown.value.recipients["khongco@dongnai.vn"][0] == 550

    # annv sends as annv@dongnai.vn; binh may not.
    await submit(server, "annv@dongnai.vn", [OUTSIDE], message("annv@dongnai.vn", [OUTSIDE], "Từ địa chỉ cũ"))
    await eventually(_count(remote, 1), "sent as the alias-domain address")
    assert remote.messages[0].mail_from == "annv@dongnai.vn"
    with pytest.raises(aiosmtplib.SMTPSenderRefused) as not_owner:
        await submit(server, "annv@dongnai.vn", [OUTSIDE], message("annv@dongnai.vn", [OUTSIDE]), user=BINH)
    assert not_owner.value.code == 553
    # A bounce to annv@dongnai.vn lands in annv's INBOX (not queued to ourselves).
    remote.rcpt_replies["nobody@example.org"] = "550 5.1.1 No such user here"
    await submit(server, "annv@dongnai.vn", ["nobody@example.org"],
                 message("annv@dongnai.vn", ["nobody@example.org"], "Không tới"))

    async def bounced() -> bool:
        return len(await inbox_messages(server, ANNV)) == 2

    await eventually(bounced, "the DSN reached annv's INBOX")
    dsn = parse((await inbox_messages(server, ANNV))[1])
    assert dsn.get_content_type() == "multipart/report"
    await eventually(lambda: queue_empty(server), "queue drained (no notice queued to ourselves)")
    # The MX refuses the alias domain as a sender from outside (it is ours).
    with pytest.raises(smtplib.SMTPSenderRefused):
        await mx_send(server, "annv@dongnai.vn", [BINH], message("annv@dongnai.vn", [BINH]))


async def test_an_alias_delivers_to_several_targets_an_agency_included(routed: Routed) -> None:
    server, routes = routed
    directory = DirectoryService(server.app.store, open_directory(server.app.store), server.config)
    await directory.add_agency("stttt", "Sở Thông tin và Truyền thông", None, by=BY)
    added = await routes.add_alias("vanthu@dongnai.gov.vn", [ANNV, "stttt"], by=BY)  # an agency code
    assert [a.target for a in added] == [ANNV, "stttt@dongnai.gov.vn"]
    await routes.add_domain("dongnai.vn", "dongnai.gov.vn", by=BY)
    first = message(PARTNER, ["vanthu@dongnai.gov.vn"], "Công văn")
    await mx_send(server, PARTNER, ["vanthu@dongnai.gov.vn"], first)
    second = message(PARTNER, ["vanthu@dongnai.vn"], "Lần hai")
    await mx_send(server, PARTNER, ["vanthu@dongnai.vn", ANNV], second)
    subjects = [str(parse(m)["Subject"]) for m in await inbox_messages(server, ANNV)]
    assert subjects == ["Công văn", "Lần hai"]  # the second named annv twice: one copy
    assert len(await inbox_messages(server, "stttt@dongnai.gov.vn")) == 2
    assert len(await inbox_messages(server, BINH)) == 0

    # A target of the alias may send as it; someone else may not.
    await submit(server, "vanthu@dongnai.gov.vn", [BINH], message("vanthu@dongnai.gov.vn", [BINH], "Trả lời"))
    assert len(await inbox_messages(server, BINH)) == 1
    with pytest.raises(aiosmtplib.SMTPSenderRefused):
        await submit(server, "vanthu@dongnai.gov.vn", [ANNV], message("vanthu@dongnai.gov.vn", [ANNV]),
                     user=BINH)
    with pytest.raises(RouteError):
        await routes.add_alias("binhtt@dongnai.gov.vn", [ANNV], by=BY)  # a mailbox in use
    with pytest.raises(RouteError):
        await routes.add_alias("x@dongnai.gov.vn", ["nobody@dongnai.gov.vn"], by=BY)


def _count(remote: RemoteMx, n: int):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return len(remote.messages) >= n

    return check


async def test_forward_with_srs_and_the_bounce_comes_back(routed: Routed, remote: RemoteMx) -> None:
    server, routes = routed
    await routes.set_forward(BINH, "binh.nha@example.org", keep_copy=True, by=BY)
    original = message(PARTNER, [BINH], "Thư chuyển tiếp")
    assert await mx_send(server, PARTNER, [BINH], original) == {}
    await eventually(_count(remote, 1), "forwarded copy reached example.org")
    sent = remote.messages[0]
    assert sent.rcpt_tos == ["binh.nha@example.org"]
    srs = sent.mail_from
    assert srs.startswith("SRS0=") and srs.endswith("=partner.test=doitac@dongnai.gov.vn"), srs
    # Our Authentication-Results go along (no DKIM key here, so no ARC set:
    # tests/pki/test_arc_dmarc.py seals).
    assert sent.content.startswith(
        b"Delivered-To: binhtt@dongnai.gov.vn\r\nAuthentication-Results: mx.test.dongnai.gov.vn;"
    )
    assert b"\r\nReceived: " in sent.content.split(b"\r\n\r\n", 1)[0]
    assert original.split(b"\r\n\r\n", 1)[1] in sent.content
    assert len(await inbox_messages(server, BINH)) == 1  # --keep-copy

    # example.org cannot deliver: its bounce to the SRS address reaches the original sender.
    bounce = (b"From: MAILER-DAEMON@example.org\r\nTo: " + srs.encode() + b"\r\n"
              b"Subject: Undelivered Mail Returned to Sender\r\n\r\nmailbox full\r\n")
    assert await mx_send(server, "", [srs], bounce) == {}
    await eventually(_count(remote, 2), "bounce relayed to the original sender")
    back = remote.messages[1]
    assert (back.mail_from, back.rcpt_tos) == ("<>", [PARTNER])
    assert b"mailbox full" in back.content
    assert len(await inbox_messages(server, BINH)) == 1  # the bounce is not the mailbox's

    # A forged or altered SRS address is an unknown user, never an open relay.
    forged = "SRS0=AAAA" + srs[9:].replace("doitac", "victim")
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        await mx_send(server, "", [forged], bounce)
    assert refused.value.recipients[forged][0] == 550


async def test_a_forwarding_loop_stops(routed: Routed, remote: RemoteMx) -> None:
    server, routes = routed
    await routes.set_forward(ANNV, "an.nha@example.org", keep_copy=False, by=BY)
    assert await mx_send(server, PARTNER, [ANNV], message(PARTNER, [ANNV], "Vòng lặp")) == {}
    await eventually(_count(remote, 1), "forwarded once")
    assert await inbox_messages(server, ANNV) == []  # no copy kept
    looped = remote.messages[0]
    # example.org forwards it back (its user forwards to annv, sender rewritten
    # as example.org's): the MX sees its own Delivered-To.
    with pytest.raises(smtplib.SMTPDataError) as loop:
        await mx_send(server, "an.nha@example.org", [ANNV], looped.content)
    assert loop.value.smtp_code == 554 and b"5.4.6" in loop.value.smtp_error
    # Too many Received fields is a loop too, forward or not.
    hops = b"".join(b"Received: from relay%d.example by next; Sat, 5 Dec 2026 10:00:00 +0000\r\n" % i
                    for i in range(101))
    with pytest.raises(smtplib.SMTPDataError) as too_many:
        await mx_send(server, PARTNER, [BINH], hops + message(PARTNER, [BINH]))
    assert too_many.value.smtp_code == 554 and b"5.4.6" in too_many.value.smtp_error
    assert len(remote.messages) == 1
    await routes.clear_forward(ANNV, by=BY)
    assert await mx_send(server, PARTNER, [ANNV], message(PARTNER, [ANNV], "Sau khi dừng")) == {}
    assert len(await inbox_messages(server, ANNV)) == 1

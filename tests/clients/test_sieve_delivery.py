"""Sieve at final delivery over real sockets: smtplib to the MX, imaplib to
see where the message landed and with which flags, the outbound queue to a
recording SMTP server on loopback (tests/clients/test_submission.py) for
vacation replies and redirects (mailserver/sieve/deliver.py)."""

from __future__ import annotations

import asyncio
import imaplib
import re
import smtplib
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

import aiosmtplib
import pytest

from mailserver.app import App
from mailserver.config import Config
from mailserver.sieve.settings import SieveSettings
from pki.dkim import key_directory
from pki.keystore import DkimKeyStore
from storage.sieve import sieve_scripts_for
from tests.clients.test_submission import (
    ANNV,
    BINH,
    PASSWORD,
    RemoteMx,
    eventually,
    inbox_messages,
    message,
    outbound_config,
    parse,
    queue_empty,
    remote,
    remote_tls,
)
from tests.conftest import RunningServer
from tests.routing.conftest import mx_send

__all__ = ["remote", "remote_tls"]

PARTNER = "doitac@partner.test"
OTHER = "khac@partner.test"


@dataclass
class Setup:
    config: Config
    remote: RemoteMx


@pytest.fixture
def setup(tmp_path: Path, remote: RemoteMx) -> Setup:
    routes = {"example.org": f"127.0.0.1:{remote.port}", "partner.test": f"127.0.0.1:{remote.port}"}
    config = outbound_config(tmp_path / "data", routes)
    before = tmp_path / "before.sieve"
    before.write_text('require "imap4flags";\nif header :contains "X-Marker" "op" { addflag "$Operator"; }\n')
    return Setup(replace(config, sieve=SieveSettings(before=str(before))), remote)


async def started(config: Config) -> AsyncIterator[RunningServer]:
    async with App(config) as app:
        running = RunningServer(app, config)
        if await app.store.get_account(ANNV) is None:
            await running.add_account(ANNV, PASSWORD, "Nguyễn Văn An")
            await running.add_account(BINH, PASSWORD, "Trần Thị Bình")
        yield running


@pytest.fixture
async def server(setup: Setup) -> AsyncIterator[RunningServer]:
    async for running in started(setup.config):
        yield running


async def activate(server: RunningServer, address: str, text: str, name: str = "loc") -> None:
    scripts = sieve_scripts_for(server.app.store)
    await scripts.put_script(address, name, text)
    await scripts.set_active(address, name)


def _imap_folder(port: int, user: str, folder: str) -> list[tuple[str, bytes]]:
    """(FLAGS, message) of every message in ``folder``, read with imaplib."""
    with imaplib.IMAP4("127.0.0.1", port) as imap:
        imap.login(user, PASSWORD)
        typ, _ = imap.select(folder, readonly=True)
        assert typ == "OK", folder
        typ, data = imap.fetch("1:*", "(FLAGS BODY.PEEK[])")
        out: list[tuple[str, bytes]] = []
        for item in data:
            if isinstance(item, tuple):
                flags = re.search(rb"FLAGS \(([^)]*)\)", item[0])
                out.append((flags.group(1).decode() if flags else "", item[1]))
        return out


async def imap_folder(server: RunningServer, user: str, folder: str) -> list[tuple[str, bytes]]:
    return await asyncio.to_thread(_imap_folder, server.port("imap"), user, folder)


def marked(sender: str, to: list[str], subject: str, *extra: str) -> bytes:
    head = "".join(f"{h}\r\n" for h in extra)
    return head.encode() + message(sender, to, subject)


async def test_fileinto_with_flags_and_the_operator_script(server: RunningServer) -> None:
    await activate(
        server,
        ANNV,
        'require ["fileinto", "imap4flags", "mailbox"];\n'
        'if header :contains "subject" "Báo cáo" {\n'
        '  fileinto :create :flags ["\\\\Flagged", "$BaoCao"] "Reports";\n}\n',
    )
    # The subject arrives RFC 2047-encoded (email.message does that): matched after decoding.
    assert (
        await mx_send(server, PARTNER, [ANNV], marked(PARTNER, [ANNV], "Báo cáo tháng 12", "X-Marker: op"))
        == {}
    )
    assert await mx_send(server, PARTNER, [ANNV], message(PARTNER, [ANNV], "Thư thường")) == {}
    (filed,) = await imap_folder(server, ANNV, "Reports")
    assert "\\Flagged" in filed[0] and "$BaoCao" in filed[0]
    assert "$Operator" not in filed[0]  # :flags replaces the internal variable (RFC 5232 section 5)
    assert "Báo cáo tháng 12" in str(parse(filed[1])["Subject"])
    (plain,) = await imap_folder(server, ANNV, "INBOX")
    assert "Thư thường" in str(parse(plain[1])["Subject"])
    # The operator's sieve.before runs for a mailbox without a script of its own too.
    assert await mx_send(server, PARTNER, [BINH], marked(PARTNER, [BINH], "Chào", "X-Marker: op")) == {}
    (flagged,) = await imap_folder(server, BINH, "INBOX")
    assert "$Operator" in flagged[0]


async def test_vacation_once_per_sender_across_restarts_never_to_automatic_mail(setup: Setup) -> None:
    remote = setup.remote

    async def replies(n: int) -> None:
        await eventually(lambda: queue_empty(running), "queue drained")
        assert len(remote.messages) == n, [m.content[:300] for m in remote.messages]

    vacation = (
        'require "vacation";\nvacation :days 7 :subject "Vắng mặt / Out of office"\n'
        '  "Tôi đi công tác đến ngày 15/12. / I am away until 15 December.";\n'
    )
    async for running in started(setup.config):
        await activate(running, ANNV, vacation)
        keys = DkimKeyStore(key_directory(setup.config.dkim, setup.config.data_dir))
        keys.generate("dongnai.gov.vn", "s2026e", "ed25519", retire_after=date.today() + timedelta(days=7))
        first = marked(PARTNER, [ANNV], "Hỏi việc", "Message-ID: <q1@partner.test>")
        assert await mx_send(running, PARTNER, [ANNV], first) == {}
        await eventually(lambda: _count(remote, 1), "vacation reply reached partner.test")
        reply = remote.messages[0]
        assert (reply.mail_from, reply.rcpt_tos) == ("<>", [PARTNER])
        parsed = parse(reply.content)
        assert parsed["Auto-Submitted"].startswith("auto-replied")
        assert parsed["In-Reply-To"] == "<q1@partner.test>"
        assert str(parsed["Subject"]) == "Vắng mặt / Out of office"
        assert b"DKIM-Signature:" in reply.content and b"d=dongnai.gov.vn" in reply.content  # signed
        assert parsed.get_body().get_content().startswith("Tôi đi công tác")  # type: ignore[union-attr]
        # Never to automatic or list mail, nor to mail not naming the user.
        for sender, extra in (
            (OTHER, "Auto-Submitted: auto-generated"),
            (OTHER, "Precedence: bulk"),
            (OTHER, "List-Id: <tin.partner.test>"),
        ):
            assert await mx_send(running, sender, [ANNV], marked(sender, [ANNV], "Tự động", extra)) == {}
        assert await mx_send(running, "", [ANNV], message("mailer-daemon@partner.test", [ANNV], "DSN")) == {}
        assert await mx_send(running, OTHER, [ANNV], message(OTHER, [BINH], "Bcc tới An")) == {}
        await replies(1)
        # Once per sender per period: the second message gets no reply...
        assert await mx_send(running, PARTNER, [ANNV], message(PARTNER, [ANNV], "Hỏi lần hai")) == {}
        await replies(1)
    # ... and the period is remembered across a restart.
    async for running in started(setup.config):
        assert await mx_send(running, PARTNER, [ANNV], message(PARTNER, [ANNV], "Sau khởi động lại")) == {}
        await replies(1)
        assert await mx_send(running, OTHER, [ANNV], message(OTHER, [ANNV], "Người khác")) == {}
        await eventually(lambda: _count(remote, 2), "a different sender gets a reply")
        assert remote.messages[1].rcpt_tos == [OTHER]
        assert len(await inbox_messages(running, ANNV)) == 9  # every message kept


async def _count(remote: RemoteMx, n: int) -> bool:
    return len(remote.messages) >= n


async def test_script_error_keeps_the_message_and_notifies_once(server: RunningServer) -> None:
    scripts = sieve_scripts_for(server.app.store)
    await scripts.put_script(ANNV, "hong", 'require "fileinto";\nif header :contains "subject" "x" {\n')
    await scripts.set_active(ANNV, "hong")  # stored without the check (an operator repair path)
    for subject in ("Một", "Hai"):
        assert await mx_send(server, PARTNER, [ANNV], message(PARTNER, [ANNV], subject)) == {}
    subjects = [str(parse(m)["Subject"]) for m in await inbox_messages(server, ANNV)]
    assert subjects.count("Một") == 1 and subjects.count("Hai") == 1
    notices = [s for s in subjects if s.startswith("Lỗi bộ lọc thư")]
    assert notices == ["Lỗi bộ lọc thư / Mail filter error"]  # one notice, not one per message
    # A runtime failure (too many redirects) keeps it too.
    await activate(
        server,
        BINH,
        'redirect "a@example.org"; redirect "b@example.org"; redirect "c@example.org";'
        'redirect "d@example.org"; redirect "e@example.org";',
    )
    assert await mx_send(server, PARTNER, [BINH], message(PARTNER, [BINH], "Chuyển nhiều")) == {}
    got = [str(parse(m)["Subject"]) for m in await inbox_messages(server, BINH)]
    assert "Chuyển nhiều" in got and any(s.startswith("Lỗi bộ lọc thư") for s in got)


async def test_redirect_leaves_with_srs_and_a_loop_is_kept(server: RunningServer, setup: Setup) -> None:
    remote = setup.remote
    await activate(server, BINH, 'redirect "binh.nha@example.org";')
    assert await mx_send(server, PARTNER, [BINH], message(PARTNER, [BINH], "Chuyển đi")) == {}
    await eventually(lambda: _count(remote, 1), "redirected copy reached example.org")
    sent = remote.messages[0]
    assert sent.rcpt_tos == ["binh.nha@example.org"]
    assert sent.mail_from.startswith("SRS0=") and sent.mail_from.endswith("@dongnai.gov.vn")
    assert sent.content.startswith(b"Delivered-To: binhtt@dongnai.gov.vn\r\n")
    assert await inbox_messages(server, BINH) == []  # redirect cancels the implicit keep
    # The same message coming back (it carries our Delivered-To): kept, not sent round again.
    looped = b"Delivered-To: binhtt@dongnai.gov.vn\r\n" + message(PARTNER, [BINH], "Vòng lại")
    assert await mx_send(server, PARTNER, [BINH], looped) == {}
    await eventually(lambda: queue_empty(server), "queue drained")
    assert len(remote.messages) == 1
    assert any("Vòng lại" in str(parse(m)["Subject"]) for m in await inbox_messages(server, BINH))
    # A local redirect's target decides with its own script: BINH's sends it on.
    await activate(server, ANNV, 'require "copy"; redirect :copy "binhtt@dongnai.gov.vn";')
    assert await mx_send(server, PARTNER, [ANNV], message(PARTNER, [ANNV], "Sao cho Bình")) == {}
    await eventually(lambda: _count(remote, 2), "BINH's script redirected ANNV's copy")
    onward = remote.messages[1]
    assert onward.rcpt_tos == ["binh.nha@example.org"]
    assert onward.content.startswith(
        b"Delivered-To: binhtt@dongnai.gov.vn\r\nDelivered-To: annv@dongnai.gov.vn\r\n"
    )
    assert len(await inbox_messages(server, ANNV)) == 1


async def test_a_local_redirect_runs_the_targets_own_script(server: RunningServer) -> None:
    """Mail redirected to a colleague is delivered as if it had arrived for them:
    their own script files it; two scripts redirecting to each other stop at the
    Delivered-To loop check (each keeps one copy, nothing goes round again)."""
    await activate(server, BINH, 'require ["fileinto", "mailbox"];\n'
                                 'if header :contains "subject" "Công văn" { fileinto :create "CongVan"; }')
    await activate(server, ANNV, 'redirect "binhtt@dongnai.gov.vn";')
    assert await mx_send(server, PARTNER, [ANNV], message(PARTNER, [ANNV], "Công văn số 7")) == {}
    filed = await imap_folder(server, BINH, "CongVan")
    assert [str(parse(raw)["Subject"]) for _, raw in filed] == ["Công văn số 7"]
    assert await inbox_messages(server, BINH) == [] and await inbox_messages(server, ANNV) == []

    await activate(server, BINH, 'redirect "annv@dongnai.gov.vn";')
    assert await mx_send(server, PARTNER, [ANNV], message(PARTNER, [ANNV], "Vòng tròn")) == {}
    await eventually(lambda: queue_empty(server), "queue drained")
    back = [str(parse(m)["Subject"]) for m in await inbox_messages(server, ANNV)]
    assert back.count("Vòng tròn") == 1  # ANNV -> BINH -> ANNV: the loop check keeps it there


async def test_reject_refuses_in_smtp_when_every_recipient_rejects(server: RunningServer) -> None:
    await activate(
        server,
        ANNV,
        'require "ereject";\nif header :contains "subject" "quảng cáo" {\n'
        '  ereject "Không nhận quảng cáo / no advertising";\n}\n',
    )
    with pytest.raises(smtplib.SMTPDataError) as refused:
        await mx_send(server, PARTNER, [ANNV], message(PARTNER, [ANNV], "Thư quảng cáo"))
    assert refused.value.smtp_code == 550
    assert b"Khong nhan quang cao" in refused.value.smtp_error
    assert await inbox_messages(server, ANNV) == []
    # With another recipient the message is accepted: BINH gets it, ANNV's script refused its copy.
    assert await mx_send(server, PARTNER, [ANNV, BINH], message(PARTNER, [ANNV, BINH], "Thư quảng cáo")) == {}
    assert len(await inbox_messages(server, BINH)) == 1
    assert await inbox_messages(server, ANNV) == []


async def test_concurrent_deliveries_create_one_folder_and_lose_nothing(server: RunningServer) -> None:
    """Ten sessions at once, each filing into a folder that :create makes: the
    first creates it, the others wait for its directory (no 451, nothing lost)."""
    await activate(server, ANNV, 'require ["fileinto", "mailbox"]; fileinto :create "Song song/Mới";')

    async def one(i: int) -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=server.port("smtp"), start_tls=False)
        await smtp.connect()
        try:
            await smtp.sendmail(PARTNER, [ANNV], message(PARTNER, [ANNV], f"Thư {i}"))
        finally:
            await smtp.quit()

    await asyncio.gather(*(one(i) for i in range(10)))
    store = server.app.store
    account = await store.get_account(ANNV)
    assert account is not None
    folder = await store.get_folder(account.id, "Song song/Mới")
    assert len(await store.list_messages(account.id, folder.id)) == 10

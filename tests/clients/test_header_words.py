"""Issue 16: Vietnamese header text written by the server arrives letter for
letter. Python's own folder joins two encoded-words with the space between two
words as folding white space, which RFC 2047 section 6.2 tells readers to drop
("thư điện tử" arrives "thư điệntử"). Every writer goes through
mailserver/headers.py now: dispatch (the operator's CLI while the server runs),
delivery status notifications (a remote MX refuses), the password-expiry
warning and the agency-mailbox check notice. Each is read back over IMAP with
imaplib and parsed with the email package (the subject with the default
policy, display names with the RFC 2047 decoder of email.header)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import imaplib
from datetime import UTC, date, datetime, timedelta
from email.header import decode_header, make_header
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailserver.app import App
from mailserver.auth import hash_password
from mailserver.cli import main
from mailserver.directory.passwords import warn_expiring
from mailserver.directory.service import DirectoryService
from mailserver.headers import POLICY, mailbox, unstructured
from mailserver.ops.runtime import send_check_notices
from storage.directory import By, open_directory
from tests.clients.test_submission import (
    ANNV,
    OUTSIDE,
    PASSWORD,
    RemoteMx,
    inbox_messages,
    message,
    outbound_config,
    submit,
)
from tests.conftest import RunningServer, eventually, make_config
from tests.dispatch.docs import PASSWORD as AGENCY_PASSWORD
from tests.dispatch.docs import make_document, seed_province

SUBJECTS = (
    # Each lost a space with email.policy.SMTP on Python 3.11 ("thư điệntử", "trongcác").
    "V/v đẩy mạnh ứng dụng thư điện tử và chữ ký số",
    "Số 512/STTTT-CNTT - V/v tăng cường sử dụng thư điện tử công vụ trong các cơ quan nhà nước",
    "Số 1234/UBND-KGVX - V/v thống nhất sử dụng thư điện tử công vụ trong các cơ quan nhà nước của tỉnh "
    "Đồng Nai, bảo đảm an toàn thông tin và khai thác hộp thư tối thiểu hai lần trong ngày",
)


def fetch_all(port: int, user: str, password: str, folder: str = "INBOX") -> list[bytes]:
    with imaplib.IMAP4("127.0.0.1", port) as imap:
        imap.login(user, password)
        imap.select(folder, readonly=True)
        _, data = imap.fetch("1:*", "(BODY.PEEK[])")
        imap.logout()
    return [item[1] for item in data if isinstance(item, tuple)]


def check_head(raw: bytes) -> email.message.EmailMessage:
    """RFC 5322 header lines: ASCII, CRLF only, at most 76 characters where
    encoded-words are (RFC 2047 section 2); the parsed message."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    assert b"\n" not in head.replace(b"\r\n", b""), "bare LF in the header"
    for line in head.split(b"\r\n"):
        if b"=?" in line:
            assert len(line) <= 76, line
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def display_name(raw: bytes, field: str = "From") -> str:
    value = str(email.message_from_bytes(raw, policy=email.policy.compat32)[field])
    return str(make_header(decode_header(value.rsplit("<", 1)[0]))).strip()


@pytest.mark.parametrize("subject", SUBJECTS)
def test_helper_round_trips(subject: str) -> None:
    msg = EmailMessage(policy=POLICY)
    msg["From"] = "Ủy ban nhân dân thành phố Biên Hòa tỉnh Đồng Nai <ubndbienhoa@dongnai.gov.vn>"
    msg["Subject"] = subject
    msg.set_content("x")
    raw = msg.as_bytes()
    assert str(check_head(raw)["Subject"]) == subject
    assert display_name(raw) == "Ủy ban nhân dân thành phố Biên Hòa tỉnh Đồng Nai"
    field = unstructured("Subject", subject).encode()
    assert str(check_head(field + b"\r\n")["Subject"]) == subject
    assert display_name(mailbox("From", "Hệ thống thư điện tử", "x@y.vn").encode() + b"\r\n") == (
        "Hệ thống thư điện tử")


async def test_dispatch_subjects_read_back_over_imap(tmp_path: Path) -> None:
    province = await asyncio.to_thread(seed_province, tmp_path)
    config = make_config(tmp_path / "data")
    async with App(config) as app:
        port = app.addresses["imap"][1]
        for i, subject in enumerate(SUBJECTS):
            doc = make_document(tmp_path / f"cv{i}.docx", recipients=["Sở TT&TT;", "Lưu: VT."], typed=True)
            code = await asyncio.to_thread(main, ["--config", str(province), "dispatch", str(doc), "--from",
                                                  "ubndtinh", "--from-document", "--unsigned",
                                                  "--subject", subject])
            assert code == 0
        # From the document itself: "Số: 512/STTTT-CNTT" and its "V/v …" lines.
        doc = make_document(tmp_path / "cv-512.docx", recipients=["Sở TT&TT;"], number="Số: 512/STTTT-CNTT",
                            summary=["V/v tăng cường sử dụng thư điện tử công vụ",
                                     "trong các cơ quan nhà nước"])
        assert await asyncio.to_thread(main, ["--config", str(province), "dispatch", str(doc), "--from",
                                              "ubndtinh", "--from-document", "--unsigned"]) == 0
        received = await asyncio.to_thread(fetch_all, port, "stttt@dongnai.gov.vn", AGENCY_PASSWORD)
        subjects = [str(check_head(raw)["Subject"]) for raw in received]
        assert subjects == [*SUBJECTS, SUBJECTS[1]]
        assert {display_name(raw) for raw in received} == {"Ủy ban nhân dân tỉnh Đồng Nai"}
        copies = await asyncio.to_thread(fetch_all, port, "ubndtinh@dongnai.gov.vn", AGENCY_PASSWORD, "Sent")
        assert [str(check_head(raw)["Subject"]) for raw in copies] == subjects


async def test_bounce_subject_and_sender_over_imap(tmp_path: Path) -> None:
    remote = RemoteMx(None, rcpt_replies={"nobody@example.org": "550 5.1.1 No such user here"})
    await remote.start()
    config = outbound_config(tmp_path / "data", {"example.org": f"127.0.0.1:{remote.port}"})
    try:
        async with App(config) as app:
            running = RunningServer(app, config)
            await running.add_account(ANNV, PASSWORD, "Nguyễn Văn An")
            await submit(running, ANNV, ["nobody@example.org", OUTSIDE],
                         message(ANNV, ["nobody@example.org", OUTSIDE], SUBJECTS[2]))

            async def bounced() -> bool:
                return bool(await inbox_messages(running, ANNV))

            await eventually(bounced, "DSN in the sender's INBOX")
            [raw] = await asyncio.to_thread(fetch_all, running.port("imap"), ANNV, PASSWORD)
    finally:
        await remote.stop()
    notice = check_head(raw)
    assert str(notice["Subject"]) == "Thư không chuyển được / Undelivered Mail Returned to Sender"
    assert display_name(raw) == "Hệ thống thư điện tử"
    assert notice["From"].addresses[0].addr_spec.startswith("MAILER-DAEMON@")


def next_weekday(day: date) -> date:
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


async def test_password_warning_and_check_notice_over_imap(tmp_path: Path) -> None:
    config = make_config(tmp_path / "data")
    async with App(config) as app:
        running = RunningServer(app, config)
        service = DirectoryService(app.store, open_directory(app.store), config)
        by = By("test")
        await service.add_agency("ubndnhontrach", "Ủy ban nhân dân huyện Nhơn Trạch", None, by=by)
        head = await service.add_person("Trần Thị Bích Ngọc", "ubndnhontrach", by=by, position="Chủ tịch")
        await service.set_head("ubndnhontrach", head.address, by=by)
        account = await app.store.get_account(head.address)
        assert account is not None
        await app.store.set_password(account.id, hash_password(PASSWORD), must_change_password=False)
        await running.add_account(ANNV, PASSWORD)
        # The warning, as the hourly task sends it a few days before expiry.
        soon = datetime.now(UTC) + timedelta(days=config.accounts.max_password_age_days - 3)
        warned = await warn_expiring(app.store, service.directory, config.accounts,
                                     sender="postmaster@dongnai.gov.vn", hostname=config.server.hostname,
                                     now=soon)
        assert ANNV in warned
        [raw] = await asyncio.to_thread(fetch_all, running.port("imap"), ANNV, PASSWORD)
        parsed = check_head(raw)
        expires = str(parsed["Subject"]).split("ngày ", 1)[1].split(" ", 1)[0]
        assert str(parsed["Subject"]) == (
            f"Mật khẩu sắp hết hạn ngày {expires} / Your password expires on {expires}")
        assert display_name(raw) == "Hệ thống thư điện tử tỉnh Đồng Nai"
        # The agency mailbox was not opened on a working day: its head is told.
        day = next_weekday(datetime.now(UTC).date() + timedelta(days=1))
        assert await send_check_notices(app, day) == ["ubndnhontrach"]
        notices = await asyncio.to_thread(fetch_all, running.port("imap"), head.address, PASSWORD)
        subjects = [str(check_head(r)["Subject"]) for r in notices]
        need = config.report.min_checks
        # The head's own password warning came first (same expiry as annv's).
        assert subjects[-1] == (
            f"Hộp thư ubndnhontrach@dongnai.gov.vn chưa được kiểm tra đủ {need} lần ngày {day:%d/%m/%Y} / "
            f"Agency mailbox not checked {need} times on {day}"
        )
        assert display_name(notices[-1]) == "Hệ thống thư điện tử tỉnh Đồng Nai"

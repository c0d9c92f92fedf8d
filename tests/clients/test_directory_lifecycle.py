"""A civil servant's mailbox end to end over real IMAP and SMTP (Decision 70/2009
Điều 5): hired -> initial password refused with NO [EXPIRED] -> password changed
-> mail received over SMTP and read over IMAP -> transferred -> offboarded (login
refused, mail archived for the agency) -> purged (address never issued again)."""

from __future__ import annotations

import asyncio
import imaplib
import smtplib
import tarfile
from datetime import UTC, datetime, timedelta

import pytest

from mailserver.directory.passwords import change_password
from mailserver.directory.service import DirectoryService
from storage.directory import AddressState, AddressTaken, By, open_directory
from tests.conftest import RunningServer

BY = By("tccb", "Số 1234/QĐ-UBND")
NEW_PASSWORD = "Hop-thu-cong-vu-2026"


def imap_login(port: int, user: str, password: str) -> imaplib.IMAP4:
    m = imaplib.IMAP4("127.0.0.1", port)
    try:
        m.login(user, password)
    except BaseException:
        m.logout()
        raise
    return m


def read_inbox(port: int, user: str, password: str) -> list[bytes]:
    m = imap_login(port, user, password)
    try:
        m.select("INBOX")
        _, data = m.search(None, "ALL")
        bodies = []
        for num in data[0].split():
            _, parts = m.fetch(num, "(BODY.PEEK[])")
            item = parts[0]
            assert isinstance(item, tuple)
            bodies.append(item[1])
        return bodies
    finally:
        m.logout()


def send(port: int, to: str, subject: str) -> None:
    with smtplib.SMTP("127.0.0.1", port) as s:
        s.sendmail(
            "congdan@example.org",
            [to],
            f"From: congdan@example.org\r\nTo: {to}\r\nSubject: {subject}\r\n\r\nXin chao.\r\n".encode(),
        )


async def test_hire_use_transfer_offboard_purge(server: RunningServer) -> None:
    store = server.app.store
    svc = DirectoryService(store, open_directory(store), server.config)
    imap, smtp = server.port("imap"), server.port("smtp")
    await svc.add_agency("stttt", "Sở Thông tin và Truyền thông", None, by=BY)
    await svc.add_agency("ubndbienhoa", "UBND thành phố Biên Hòa", None, by=BY)

    # Hire: the mailbox exists with an initial password that must be changed.
    issued = await svc.add_person("Nguyễn Văn An", "stttt", by=BY, position="Chuyên viên")
    address = issued.address
    assert address == "annv@dongnai.gov.vn"
    with pytest.raises(imaplib.IMAP4.error, match=r"\[EXPIRED\]"):
        await asyncio.to_thread(imap_login, imap, address, issued.password)

    await change_password(
        store, svc.directory, server.config.accounts, address, issued.password, NEW_PASSWORD
    )
    await asyncio.to_thread(send, smtp, address, "Ho so so 1")
    bodies = await asyncio.to_thread(read_inbox, imap, address, NEW_PASSWORD)
    assert len(bodies) == 1 and b"Subject: Ho so so 1" in bodies[0]

    # Transfer: same address, same mail, other agency.
    person = await svc.transfer(address, "ubndbienhoa", by=BY)
    assert (person.address, person.agency_code) == (address, "ubndbienhoa")
    await asyncio.to_thread(send, smtp, address, "Ho so so 2")
    assert len(await asyncio.to_thread(read_inbox, imap, address, NEW_PASSWORD)) == 2

    # Offboard: login refused at once, mail archived for the (new) agency.
    result = await svc.offboard(address, by=BY)
    with pytest.raises(imaplib.IMAP4.error):
        await asyncio.to_thread(imap_login, imap, address, NEW_PASSWORD)
    assert result.archive.is_file()
    assert result.archive.parent == server.config.data_dir / "archives" / "ubndbienhoa"
    with tarfile.open(result.archive) as tar:
        inbox = tar.extractfile("annv/INBOX.mbox")
        assert inbox is not None
        mbox = inbox.read()
        assert "annv/Sent.mbox" in tar.getnames()
    assert mbox.count(b"\nFrom MAILER-DAEMON ") + mbox.startswith(b"From MAILER-DAEMON ") == 2
    assert b"Subject: Ho so so 1" in mbox and b"Subject: Ho so so 2" in mbox
    assert await store.get_account(address) is not None  # kept during the grace period

    # Purge after the grace period: the account goes, the address stays retired.
    later = datetime.now(UTC) + timedelta(days=server.config.directory.offboard_grace_days + 1)
    assert await svc.purge(by=BY, now=later) == [address]
    assert await store.get_account(address) is None
    entry = await svc.directory.lookup_address(address)
    assert entry is not None and entry.state is AddressState.RETIRED
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        await asyncio.to_thread(send, smtp, address, "Ho so so 3")
    with pytest.raises(AddressTaken):
        await svc.add_person("Nguyễn Văn An", "stttt", by=BY, local="annv")
    again = await svc.add_person("Nguyễn Văn An", "stttt", by=BY)
    assert again.address == "annv2@dongnai.gov.vn"

    actions = [e.action for e in await svc.directory.audit_log(subject=address)]
    assert actions == [
        "person.add",
        "password.change",
        "person.transfer",
        "address.offboarded",
        "person.left",
        "address.retired",
    ]

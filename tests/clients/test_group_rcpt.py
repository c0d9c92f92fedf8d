"""Mail to a distribution group (CODE@dongnai.gov.vn, mailserver/dispatch/groups.py)
over real SMTP: an authenticated user's message reaches every member (addresses,
agency mailboxes through the directory, nested groups) in one delivery; the MX
refuses unauthenticated writers; an unknown code is an unknown user."""

from __future__ import annotations

import aiosmtplib
import pytest

from mailserver.directory.service import DirectoryService
from mailserver.dispatch.groups import GroupStore
from storage.directory import By, open_directory
from tests.clients.test_smtp_inbound import RawClient, enhanced
from tests.clients.test_submission import ANNV, PASSWORD, inbox_messages, message, submit
from tests.conftest import RunningServer

BINH = "binhtt@dongnai.gov.vn"


@pytest.fixture
async def groups(server: RunningServer) -> GroupStore:
    await server.add_account(ANNV, PASSWORD)
    await server.add_account(BINH, PASSWORD)
    service = DirectoryService(server.app.store, open_directory(server.app.store), server.config)
    await service.add_agency("stttt", "Sở Thông tin và Truyền thông", None, by=By("test", "Số 1/QĐ-STTTT"))
    store = GroupStore(server.config.data_dir)
    store.add("phong-ban", "Các phòng")
    store.add_member("phong-ban", BINH)
    store.add("lanh-dao", "Lãnh đạo các sở")
    store.add_member("lanh-dao", "stttt")  # an agency code: its mailbox
    store.add_member("lanh-dao", "phong-ban")  # a nested group
    store.add("rong", "Nhóm không có hộp thư")
    store.add_member("rong", "nobody@dongnai.gov.vn")
    return store


async def test_authenticated_mail_to_a_group_reaches_every_member(
    server: RunningServer, groups: GroupStore
) -> None:
    data = message(ANNV, ["lanh-dao@dongnai.gov.vn"], "Giấy mời họp")
    await submit(server, ANNV, ["lanh-dao@dongnai.gov.vn"], data)
    for address in (BINH, "stttt@dongnai.gov.vn"):
        received = await inbox_messages(server, address)
        assert len(received) == 1 and b"Subject: =?utf-8?" in received[0], address
    assert await inbox_messages(server, ANNV) == []


async def test_the_mx_refuses_groups_to_unauthenticated_writers(
    server: RunningServer, groups: GroupStore
) -> None:
    client = await RawClient.open(server.port("smtp"), ehlo="outside.example.org")
    try:
        assert (await client.cmd("MAIL FROM:<citizen@example.org>"))[0] == 250
        code, text = await client.cmd("RCPT TO:<phong-ban@dongnai.gov.vn>")
        assert (code, enhanced(text)) == (550, "5.7.1")
        code, text = await client.cmd("RCPT TO:<khong-co@dongnai.gov.vn>")
        assert (code, enhanced(text)) == (550, "5.1.1")
    finally:
        await client.close()
    assert await inbox_messages(server, BINH) == []


async def test_a_group_without_mailboxes_is_refused(server: RunningServer, groups: GroupStore) -> None:
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
        await submit(server, ANNV, ["rong@dongnai.gov.vn"], message(ANNV, ["rong@dongnai.gov.vn"], "x"))
    assert refused.value.recipients[0].code == 550
    assert "5.1.1" in refused.value.recipients[0].message

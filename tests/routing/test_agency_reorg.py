"""Agency rename and merger (mailserver/directory/reorg.py) with mail arriving
over the real MX before and after: the merged agency's mail sits in ``Lưu
trữ/<old name>`` of the new mailbox byte for byte with its flags, the old
address keeps delivering and may be sent as by the new agency's head, the old
head's and delegates' rights end, staff move; a renamed agency's old address
still delivers and its head keeps every right."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailserver.directory import reorg
from mailserver.directory.addressing import Addressing
from mailserver.directory.service import DirectoryService
from mailserver.dispatch.groups import GroupStore
from storage.api import INBOX, MailStore
from storage.directory import DirectoryError, open_directory
from tests.clients.test_cli_directory import cli, conf
from tests.clients.test_submission import inbox_messages, message
from tests.conftest import RunningServer
from tests.routing.conftest import BY, mx_send

__all__ = ["conf"]

Routed = tuple[RunningServer, Addressing]
PARTNER = "doitac@partner.test"
STTTT, SKHCN = "stttt@dongnai.gov.vn", "skhcn@dongnai.gov.vn"


async def _folder(store: MailStore, address: str, name: str) -> list[tuple[bytes, frozenset[str]]]:
    account = await store.get_account(address)
    assert account is not None
    folder = await store.get_folder(account.id, name)
    return [(await store.read_message(account.id, folder.id, m.uid), m.flags)
            for m in await store.list_messages(account.id, folder.id)]


async def test_merged_agency_mail_and_address_keep_working(routed: Routed) -> None:
    server, _ = routed
    store = server.app.store
    service = DirectoryService(store, open_directory(store), server.config)
    await service.add_agency("stttt", "Sở Thông tin và Truyền thông", None, by=BY)
    await service.add_agency("skhcn", "Sở Khoa học và Công nghệ", None, by=BY)
    head = (await service.add_person("Phạm Văn Hùng", "stttt", by=BY)).address
    clerk = (await service.add_person("Lê Thị Mai", "stttt", by=BY)).address
    new_head = (await service.add_person("Võ Minh Quân", "skhcn", by=BY)).address
    await service.set_head("stttt", head, by=BY)
    await service.set_head("skhcn", new_head, by=BY)
    await service.delegate("stttt", clerk, by=BY)

    for subject in ("Công văn 1", "Công văn 2"):
        assert await mx_send(server, PARTNER, [STTTT], message(PARTNER, [STTTT], subject)) == {}
    old_account = await store.get_account(STTTT)
    assert old_account is not None
    filed = await store.create_folder(old_account.id, "Đã xử lý")
    kept = await store.append(old_account.id, filed.id, message(PARTNER, [STTTT], "Lưu"),
                              flags=["\\Seen", "$Important"])
    before_inbox = await _folder(store, STTTT, INBOX)

    result = await reorg.merge_agency(service, "stttt", "skhcn", by=BY)
    kinds = [c.kind for c in result.changes]
    assert kinds[0] == "agency.merged" and "head.removed" in kinds and "right.removed" in kinds
    assert result.changes[0].vi.startswith("stttt “Sở Thông tin và Truyền thông” đã sáp nhập vào skhcn")

    archive = "Lưu trữ/Sở Thông tin và Truyền thông"
    assert await _folder(store, SKHCN, archive) == before_inbox
    ((data, flags),) = await _folder(store, SKHCN, archive + "/Đã xử lý")
    assert flags == {"\\Seen", "$Important"} and len(data) == kept.size
    # Staff moved; the old head and the delegate hold nothing on the old mailbox.
    assert {p.address for p in await service.directory.list_persons(agency_code="skhcn")} == {
        head, clerk, new_head}
    for address in (head, clerk):
        account = await store.get_account(address)
        assert account is not None
        assert await service.directory.mailbox_access(account.id) == []
    # The old address delivers to the new agency, whose head may send as it.
    assert await mx_send(server, PARTNER, [STTTT], message(PARTNER, [STTTT], "Sau sáp nhập")) == {}
    assert len(await inbox_messages(server, SKHCN)) == 1
    boss = await store.get_account(new_head)
    clerk_account = await store.get_account(clerk)
    assert boss is not None and clerk_account is not None
    assert await server.app.sender_policy.may_send_as(boss, STTTT)
    assert not await server.app.sender_policy.may_send_as(clerk_account, STTTT)
    # A second run (an interrupted merge run again) copies nothing twice.
    again = await reorg.merge_agency(service, "stttt", "skhcn", by=BY)
    moved = next(c for c in again.changes if c.kind == "mail.moved")
    assert moved.en.startswith("0 message(s)")
    assert len(await _folder(store, SKHCN, archive)) == 2


async def test_renamed_agency_old_address_still_delivers(routed: Routed) -> None:
    server, _ = routed
    store = server.app.store
    service = DirectoryService(store, open_directory(store), server.config)
    await service.add_agency("sgtvt", "Sở Giao thông vận tải", None, by=BY)
    head = (await service.add_person("Đỗ Văn Long", "sgtvt", by=BY)).address
    await service.set_head("sgtvt", head, by=BY)
    old = "sgtvt@dongnai.gov.vn"
    assert await mx_send(server, PARTNER, [old], message(PARTNER, [old], "Trước khi đổi")) == {}
    before = await inbox_messages(server, old)

    groups = GroupStore(server.config.data_dir)
    groups.add("cac-so", "Các sở")
    groups.add_member("cac-so", "sgtvt")
    result = await reorg.rename_agency(service, "sgtvt", "Sở Xây dựng", "sxd", by=BY)
    assert groups.get("cac-so").members == ["sxd"]
    assert "group.member" in [c.kind for c in result.changes]
    assert result.agency.code == "sxd" and result.agency.address == "sxd@dongnai.gov.vn" and result.password
    assert await inbox_messages(server, "sxd@dongnai.gov.vn") == before
    assert await mx_send(server, PARTNER, [old], message(PARTNER, [old], "Sau khi đổi")) == {}
    assert len(await inbox_messages(server, "sxd@dongnai.gov.vn")) == 2
    account = await store.get_account(head)
    assert account is not None
    grants = await service.directory.mailbox_access(account.id)
    assert [(g.agency_code, g.mailbox_address) for g in grants] == [("sxd", "sxd@dongnai.gov.vn")]
    assert await server.app.sender_policy.may_send_as(account, old)
    names = [a.name for a in await service.directory.aliases("sxd")]
    assert "Sở Giao thông vận tải" in names and "sgtvt" in names
    entry = await service.directory.lookup_address(old)
    assert entry is not None and entry.state.value == "offboarded"  # history kept, purged later
    log = [e.action for e in await service.directory.audit_log(subject="sxd")]
    assert "agency.rename" in log


def test_agency_rename_and_merge_cli(conf: Path) -> None:
    cli(conf, "agency", "add", "stttt", "--name", "Sở Thông tin và Truyền thông")
    cli(conf, "agency", "add", "skhcn", "--name", "Sở Khoa học Công nghệ")
    out = cli(conf, "agency", "rename", "skhcn", "--name", "Sở Khoa học và Công nghệ",
              "--decision", "Số 5/QĐ-UBND").stdout
    assert "nay là skhcn “Sở Khoa học và Công nghệ”" in out
    out = cli(conf, "agency", "merge", "stttt", "--into", "skhcn", "--decision", "Số 6/QĐ-UBND").stdout
    first = out.splitlines()[0]
    assert first.startswith("- stttt “Sở Thông tin và Truyền thông” đã sáp nhập vào skhcn")
    assert " / stttt “Sở Thông tin và Truyền thông” merged into skhcn" in first
    assert "Lưu trữ/Sở Thông tin và Truyền thông" in out
    bad = cli(conf, "agency", "merge", "skhcn", "--into", "skhcn", ok=False)
    assert bad.returncode == 1 and "cannot merge an agency into itself" in bad.stderr
    bad = cli(conf, "agency", "rename", "khongco", "--name", "X", ok=False)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert "stttt@dongnai.gov.vn\tskhcn@dongnai.gov.vn" in cli(conf, "alias", "list").stdout
    assert "đã sáp nhập vào / merged into: skhcn" in cli(conf, "agency", "show", "stttt").stdout


async def test_a_merge_into_a_full_mailbox_stops_clearly_and_resumes(routed: Routed) -> None:
    server, _ = routed
    store = server.app.store
    service = DirectoryService(store, open_directory(store), server.config)
    await service.add_agency("stttt", "Sở Thông tin và Truyền thông", None, by=BY)
    await service.add_agency("skhcn", "Sở Khoa học và Công nghệ", None, by=BY)
    for n in range(3):
        body = message(PARTNER, [STTTT], f"Công văn {n}", "x" * 4000)
        assert await mx_send(server, PARTNER, [STTTT], body) == {}
    target = await store.get_account(SKHCN)
    assert target is not None
    await store.set_quota(target.id, 6000)  # room for one message
    with pytest.raises(DirectoryError, match="is full: raise its quota"):
        await reorg.merge_agency(service, "stttt", "skhcn", by=BY)
    await store.set_quota(target.id, 0)
    result = await reorg.merge_agency(service, "stttt", "skhcn", by=BY)
    moved = next(c for c in result.changes if c.kind == "mail.moved")
    assert moved.en.startswith("2 message(s)") and "1 already there" in moved.en
    assert len(await _folder(store, SKHCN, "Lưu trữ/Sở Thông tin và Truyền thông")) == 3

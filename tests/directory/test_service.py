"""Directory service over a real store (SQLite and PostgreSQL): issuing, collisions,
tombstones, CSV import, delegation, passwords, audit."""

from __future__ import annotations

import codecs
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from mailserver.auth import Authenticator, AuthStatus
from mailserver.config import AuthSettings
from mailserver.directory.passwords import (
    PasswordRejected,
    change_password,
    check_strength,
    reset_password,
    warn_expiring,
)
from mailserver.directory.sender import DirectorySenderPolicy
from mailserver.directory.service import DirectoryService, ImportFailed, Issued, Planned, parse_rights
from storage.api import INBOX
from storage.directory import (
    ALL_RIGHTS,
    AddressState,
    AddressTaken,
    NoSuchAgency,
    PersonHasMailbox,
    PersonStatus,
)
from storage.sql import models
from storage.sql.store import SqlMailStore
from tests.directory.conftest import BY

NEW_PASSWORD = "Rat-kho-doan-2026!"


async def hire(svc: DirectoryService, name: str, agency: str = "stttt", **kw: object) -> Issued:
    return await svc.add_person(name, agency, by=BY, **kw)  # type: ignore[arg-type]


# -- issuing ------------------------------------------------------------------


async def test_add_person_issues_a_must_change_mailbox(svc: DirectoryService) -> None:
    issued = await hire(svc, "Nguyễn Văn An", position="Chuyên viên", phone="0251 3822 123")
    assert issued.address == "annv@dongnai.gov.vn"
    account = await svc.store.get_account(issued.address)
    assert account is not None and account.must_change_password and account.name == "Nguyễn Văn An"
    assert issued.person is not None
    assert (issued.person.family, issued.person.middle, issued.person.given) == ("Nguyễn", "Văn", "An")
    assert issued.person.status is PersonStatus.ACTIVE
    assert [f.name for f in await svc.store.list_folders(account.id)][0] == INBOX


async def test_compound_given_name(svc: DirectoryService) -> None:
    issued = await hire(svc, "", family="Nguyễn Hoàng", given="Bảo Ngọc")
    assert issued.address == "baongocnh@dongnai.gov.vn"
    assert issued.person is not None and issued.person.full_name == "Nguyễn Hoàng Bảo Ngọc"


async def test_second_mailbox_for_the_same_person_is_refused(svc: DirectoryService) -> None:
    first = await hire(svc, "Nguyễn Văn An")
    with pytest.raises(PersonHasMailbox, match="Điều 4"):
        await hire(svc, "Nguyen Van An")
    assert first.person is not None
    with pytest.raises(PersonHasMailbox):
        await svc.issue_mailbox(first.person.id, by=BY)
    # A namesake (different person) is numbered.
    other = await hire(svc, "Nguyễn Văn An", namesake=True)
    assert other.address == "annv2@dongnai.gov.vn"
    third = await hire(svc, "Nguyễn Vũ An", agency="ubndbienhoa")
    assert third.address == "annv3@dongnai.gov.vn"


async def test_explicit_local_part(svc: DirectoryService) -> None:
    issued = await hire(svc, "Nguyễn Văn An", local="an.nguyen")
    assert issued.address == "an.nguyen@dongnai.gov.vn"
    with pytest.raises(AddressTaken):
        await hire(svc, "Trần Văn Bình", local="an.nguyen")


async def test_role_names_and_agency_codes_share_the_namespace(svc: DirectoryService) -> None:
    assert (await hire(svc, "Nguyễn Văn Root")).address == "rootnv@dongnai.gov.vn"
    assert (await hire(svc, "Admin")).address == "admin2@dongnai.gov.vn"
    with pytest.raises(AddressTaken, match="reserved"):
        await hire(svc, "Trần Văn Bình", local="postmaster")
    with pytest.raises(AddressTaken):
        await svc.add_agency("vanthu", "Văn thư", None, by=BY)
    # A person whose derived name is an agency code gets the next number.
    await svc.add_agency("hungl", "Hội Ung thư Long Khánh", None, by=BY)
    assert (await hire(svc, "Lý Hùng")).address == "hungl2@dongnai.gov.vn"
    # An account made outside the directory is in the namespace too.
    await svc.store.create_account("ducld@dongnai.gov.vn", "x", "hash")
    assert (await hire(svc, "Lê Đình Đức")).address == "ducld2@dongnai.gov.vn"


async def test_unknown_agency(svc: DirectoryService) -> None:
    with pytest.raises(NoSuchAgency):
        await hire(svc, "Nguyễn Văn An", agency="nope")
    assert await svc.store.get_account("annv@dongnai.gov.vn") is None


# -- lifecycle and tombstones ---------------------------------------------------


async def test_offboarded_and_purged_address_is_never_reissued(svc: DirectoryService) -> None:
    issued = await hire(svc, "Nguyễn Văn An")
    account = await svc.store.get_account(issued.address)
    assert account is not None
    await svc.store.deliver([account.id], b"Subject: ho so\r\nFrom: a@example.org\r\n\r\nFrom here on\r\n")
    result = await svc.offboard(issued.address, by=BY)
    assert result.messages == 1 and result.archive.exists()
    assert result.archive.parent == svc.config.data_dir / "archives" / "stttt"
    disabled = await svc.store.get_account(issued.address)
    assert disabled is not None and disabled.disabled
    person = await svc.directory.person_by_address(issued.address)
    assert person is not None and person.status is PersonStatus.LEFT
    assert await svc.purge(by=BY) == []  # grace period not over
    later = datetime.now(UTC) + timedelta(days=svc.config.directory.offboard_grace_days + 1)
    assert await svc.purge(by=BY, now=later, dry_run=True) == [issued.address]
    assert await svc.store.get_account(issued.address) is not None
    assert await svc.purge(by=BY, now=later) == [issued.address]
    assert await svc.store.get_account(issued.address) is None
    entry = await svc.directory.lookup_address(issued.address)
    assert entry is not None and entry.state is AddressState.RETIRED and entry.account_id is None
    # A new Nguyễn Văn An never gets annv again, not even by asking for it.
    assert (await hire(svc, "Nguyễn Văn An")).address == "annv2@dongnai.gov.vn"
    with pytest.raises(AddressTaken, match="never re-issued"):
        await hire(svc, "Nguyễn Văn Ân", local="annv", namesake=True)
    with pytest.raises(ValueError, match="cannot become"):
        await svc.directory.set_address_state(issued.address, AddressState.ACTIVE, by=BY)


async def test_transfer_keeps_the_address(svc: DirectoryService) -> None:
    issued = await hire(svc, "Trần Thị Bích Ngọc")
    moved = await svc.transfer(issued.address, "ubndbienhoa", by=BY)
    assert moved.address == issued.address and moved.agency_code == "ubndbienhoa"
    log = await svc.directory.audit_log(subject=issued.address)
    assert log[-1].action == "person.transfer"
    assert dict(log[-1].detail) == {"from": "stttt", "to": "ubndbienhoa"}
    assert log[-1].decision == "Số 42/QĐ-UBND" and log[-1].actor == "tester"


# -- CSV import -----------------------------------------------------------------

GOOD = """ho_ten,ho,ten_dem,ten,ma_co_quan,chuc_vu,dien_thoai
Nguyễn Văn An,,,,stttt,Giám đốc,0251 3822 123
,Nguyễn Hoàng,,Bảo Ngọc,stttt,Chuyên viên,
Điểu K'Lứt,,,,ubndbienhoa,,
Nguyễn Vũ An,,,,ubndbienhoa,,

Lý Hùng,,,,STTTT,,
"""


async def test_import_good_file_with_bom(svc: DirectoryService) -> None:
    data = codecs.BOM_UTF8 + GOOD.encode()
    plan = await svc.import_csv(data, by=BY, dry_run=True)
    assert all(isinstance(p, Planned) for p in plan)
    assert await svc.directory.list_persons() == []
    issued = await svc.import_csv(data, by=BY)
    assert [(i.line, i.address) for i in issued if isinstance(i, Issued)] == [
        (2, "annv@dongnai.gov.vn"),
        (3, "baongocnh@dongnai.gov.vn"),
        (4, "klutd@dongnai.gov.vn"),
        (5, "annv2@dongnai.gov.vn"),
        (7, "hungl@dongnai.gov.vn"),
    ]
    persons = await svc.directory.list_persons()
    assert len(persons) == 5
    for item in issued:
        assert isinstance(item, Issued)
        account = await svc.store.get_account(item.address)
        assert account is not None and account.must_change_password


BAD = '''ho_ten,ma_co_quan,dien_thoai
Nguyễn Văn An,stttt,
Lê Văn Tám,nope,
,stttt,
Lý Hùng,stttt,abc
Nguyễn Văn An,stttt,
"Trần Thị ""Út""",stttt,0909
Trần Thị Bích Ngọc,stttt
'''


async def test_import_broken_file_reports_every_line_and_creates_nothing(svc: DirectoryService) -> None:
    before = await svc.store.list_accounts()
    with pytest.raises(ImportFailed) as caught:
        await svc.import_csv(BAD.encode(), by=BY)
    lines = {e.line: e.message for e in caught.value.errors}
    assert set(lines) == {3, 4, 5, 6, 8}
    assert "nope" in lines[3]
    assert "no name" in lines[4]
    assert "telephone" in lines[5]
    assert "line 2" in lines[6]
    assert "fields" in lines[8]
    assert await svc.store.list_accounts() == before
    assert await svc.directory.list_persons() == []


@pytest.mark.parametrize(
    ("data", "line", "text"),
    [
        (b"ho_ten,ma_co_quan\nL\xea V\xe2n,stttt\n", 2, "UTF-8"),
        (b"ho_ten,agency\n", 1, "unknown column"),
        (b"ten_dem,chuc_vu\n", 1, "ma_co_quan"),
        (b"", 1, "empty"),
        (b"ho_ten,ma_co_quan\n", 2, "no data"),
        (b'ho_ten,ma_co_quan\n"Nguy\xe1\xbb\x85n,stttt\n', 2, "CSV"),
    ],
)
async def test_import_file_level_errors(svc: DirectoryService, data: bytes, line: int, text: str) -> None:
    with pytest.raises(ImportFailed) as caught:
        await svc.import_csv(data, by=BY)
    assert caught.value.errors[0].line == line
    assert text in caught.value.errors[0].message


async def test_import_is_all_or_nothing_when_account_creation_fails(
    svc: DirectoryService, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = svc.store.create_account
    calls = 0

    async def flaky(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise OSError("disk full")
        return await real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(svc.store, "create_account", flaky)
    before = await svc.store.list_accounts()
    with pytest.raises(OSError, match="disk full"):
        await svc.import_csv(GOOD.encode(), by=BY)
    monkeypatch.undo()
    assert await svc.store.list_accounts() == before
    assert await svc.directory.list_persons(include_left=True) == []
    assert await svc.directory.lookup_address("annv@dongnai.gov.vn") is None
    # The addresses were never issued, so a retry gets the same ones.
    issued = await svc.import_csv(GOOD.encode(), by=BY)
    assert issued[0].address == "annv@dongnai.gov.vn"


# -- agency mailboxes, delegation, sender policy --------------------------------


async def test_head_delegates_and_handover(svc: DirectoryService) -> None:
    head = await hire(svc, "Nguyễn Văn An")
    clerk = await hire(svc, "Trần Thị Bích Ngọc")
    reader = await hire(svc, "Lê Đình Đức")
    successor = await hire(svc, "Phạm Minh Chính")
    store, directory = svc.store, svc.directory
    accounts = {i.address: await store.get_account(i.address) for i in (head, clerk, reader, successor)}
    agency = await directory.get_agency("stttt")
    assert agency is not None and agency.account_id is not None

    await svc.set_head("stttt", head.address, by=BY)
    await svc.delegate("stttt", clerk.address, by=BY)
    await svc.delegate("stttt", reader.address, "lr", by=BY)
    policy = DirectorySenderPolicy(directory)

    def acc(issued: Issued) -> object:
        return accounts[issued.address]

    (grant,) = await directory.mailbox_access(acc(head).id)  # type: ignore[attr-defined]
    assert (grant.mailbox_address, grant.rights, grant.may_send, grant.role) == (
        "stttt@dongnai.gov.vn",
        ALL_RIGHTS,
        True,
        "head",
    )
    (grant,) = await directory.mailbox_access(acc(clerk).id)  # type: ignore[attr-defined]
    assert (grant.rights, grant.may_send, grant.role) == ("lrswipte", True, "delegate")
    assert await directory.mailbox_acl(agency.account_id) == [
        (head.address, ALL_RIGHTS),
        (reader.address, "lr"),
        (clerk.address, "lrswipte"),
    ]
    assert await policy.may_send_as(acc(head), "STTTT@dongnai.gov.vn")  # type: ignore[arg-type]
    assert await policy.may_send_as(acc(clerk), "stttt@dongnai.gov.vn")  # type: ignore[arg-type]
    assert not await policy.may_send_as(acc(reader), "stttt@dongnai.gov.vn")  # type: ignore[arg-type]
    assert await policy.may_send_as(acc(reader), reader.address)  # type: ignore[arg-type]
    assert not await policy.may_send_as(acc(reader), head.address)  # type: ignore[arg-type]

    await svc.revoke("stttt", reader.address, by=BY)
    assert await directory.mailbox_access(acc(reader).id) == []  # type: ignore[attr-defined]

    issued = await svc.handover("stttt", successor.address, by=BY)
    assert issued.address == "stttt@dongnai.gov.vn"
    assert await directory.mailbox_access(acc(head).id) == []  # type: ignore[attr-defined]
    (grant,) = await directory.mailbox_access(acc(successor).id)  # type: ignore[attr-defined]
    assert grant.role == "head"
    assert not await policy.may_send_as(acc(head), "stttt@dongnai.gov.vn")  # type: ignore[arg-type]
    box = await store.get_account("stttt@dongnai.gov.vn")
    assert box is not None and box.must_change_password  # the old head's password is void
    actions = [e.action for e in await directory.audit_log(subject="stttt")]
    assert "agency.handover" in actions and "agency.delegate" in actions and "agency.revoke" in actions

    # Offboarding the clerk removes their delegation.
    result = await svc.offboard(clerk.address, by=BY)
    assert result.revoked == ("stttt",)
    assert await directory.mailbox_access(acc(clerk).id) == []  # type: ignore[attr-defined]


def test_parse_rights() -> None:
    assert parse_rights("read,write,send") == ("lrswipte", True)
    assert parse_rights("lrswi") == ("lrswi", False)
    assert parse_rights("all") == (ALL_RIGHTS, False)
    assert parse_rights("ilr, send") == ("lri", True)
    with pytest.raises(ValueError, match="unknown"):
        parse_rights("lrz")
    with pytest.raises(ValueError):
        parse_rights("")


# -- passwords ----------------------------------------------------------------------


def test_strength_rules() -> None:
    ok = check_strength("Rat-kho-doan-2026!", min_length=10, local_part="annv", names=("Nguyễn Văn An",))
    assert ok == []
    assert any("10" in r for r in check_strength("Ab1-x", min_length=10))
    assert any("3" in r for r in check_strength("abcdefghijkl", min_length=10))
    assert any("annv" in r for r in check_strength("Xyz-ANNV-2026", min_length=10, local_part="annv"))
    found = check_strength("Ngoc-1234-abc", min_length=10, names=("Trần Thị Bích Ngọc",))
    assert any("ngoc" in r for r in found)
    found = check_strength("NGỌC-bich-99", min_length=10, names=("Trần Thị Bích Ngọc",))
    assert any("bich" in r and "ngoc" in r for r in found)


async def test_change_password(svc: DirectoryService) -> None:
    issued = await hire(svc, "Trần Thị Bích Ngọc")
    settings = svc.config.accounts
    with pytest.raises(PasswordRejected, match="old password"):
        await change_password(svc.store, svc.directory, settings, issued.address, "wrong", NEW_PASSWORD)
    with pytest.raises(PasswordRejected, match="ngoc"):
        await change_password(
            svc.store, svc.directory, settings, issued.address, issued.password, "Ngoc-2026-xyz"
        )
    with pytest.raises(PasswordRejected, match="ngocttb"):
        await change_password(
            svc.store, svc.directory, settings, issued.address, issued.password, "Ngocttb-2026"
        )
    account = await change_password(
        svc.store, svc.directory, settings, issued.address, issued.password, NEW_PASSWORD
    )
    assert not account.must_change_password
    # The last five passwords cannot come back.
    current = NEW_PASSWORD
    for i in range(4):
        new = f"Khac-hoan-toan-{i}!"
        await change_password(svc.store, svc.directory, settings, issued.address, current, new)
        current = new
    with pytest.raises(PasswordRejected, match="last 5"):
        await change_password(svc.store, svc.directory, settings, issued.address, current, NEW_PASSWORD)
    with pytest.raises(PasswordRejected, match="last 5"):
        await change_password(
            svc.store, svc.directory, settings, issued.address, current, "Khac-hoan-toan-1!"
        )
    # Six changes later the first one is allowed again (history depth 5).
    await change_password(svc.store, svc.directory, settings, issued.address, current, "Mot-lan-nua-1!")
    await change_password(svc.store, svc.directory, settings, issued.address, "Mot-lan-nua-1!", NEW_PASSWORD)
    actions = [e.action for e in await svc.directory.audit_log(subject=issued.address)]
    assert actions.count("password.change") == 7


async def test_change_password_through_the_throttle(svc: DirectoryService) -> None:
    issued = await hire(svc, "Lê Đình Đức")
    auth = Authenticator(svc.store, AuthSettings(failure_delay=0, max_failures=2))
    for _ in range(2):
        with pytest.raises(PasswordRejected):
            await change_password(
                svc.store,
                svc.directory,
                svc.config.accounts,
                issued.address,
                "bad",
                NEW_PASSWORD,
                authenticator=auth,
            )
    with pytest.raises(PasswordRejected):  # locked now, even with the right password
        await change_password(
            svc.store,
            svc.directory,
            svc.config.accounts,
            issued.address,
            issued.password,
            NEW_PASSWORD,
            authenticator=auth,
        )


async def _age_password(svc: DirectoryService, address: str, days: int) -> None:
    assert isinstance(svc.store, SqlMailStore)
    async with svc.store.db.write() as conn:
        await conn.execute(
            update(models.Account.__table__)
            .where(models.Account.__table__.c.address == address)
            .values(password_changed_at=datetime.now(UTC) - timedelta(days=days))
        )


async def test_expired_password_must_be_changed(svc: DirectoryService) -> None:
    issued = await hire(svc, "Lê Đình Đức")
    await change_password(
        svc.store, svc.directory, svc.config.accounts, issued.address, issued.password, NEW_PASSWORD
    )
    auth = Authenticator(svc.store, AuthSettings(failure_delay=0), max_password_age_days=180)
    assert (await auth.authenticate(issued.address, NEW_PASSWORD, "192.0.2.1")).status is AuthStatus.OK
    await _age_password(svc, issued.address, 181)
    assert (
        await auth.authenticate(issued.address, NEW_PASSWORD, "192.0.2.1")
    ).status is AuthStatus.MUST_CHANGE
    never = Authenticator(svc.store, AuthSettings(failure_delay=0), max_password_age_days=0)
    assert (await never.authenticate(issued.address, NEW_PASSWORD, "192.0.2.1")).status is AuthStatus.OK
    await change_password(
        svc.store, svc.directory, svc.config.accounts, issued.address, NEW_PASSWORD, "Mat-khau-moi-2027"
    )
    assert (await auth.authenticate(issued.address, "Mat-khau-moi-2027", "192.0.2.1")).status is AuthStatus.OK


async def test_expiry_warning_is_delivered_once(svc: DirectoryService) -> None:
    soon = await hire(svc, "Lê Đình Đức")
    fresh = await hire(svc, "Lý Hùng")
    for issued in (soon, fresh):
        await change_password(
            svc.store, svc.directory, svc.config.accounts, issued.address, issued.password, NEW_PASSWORD
        )
    await _age_password(svc, soon.address, 170)
    args = {"sender": "postmaster@dongnai.gov.vn", "hostname": "mail.dongnai.gov.vn"}
    assert await warn_expiring(svc.store, svc.directory, svc.config.accounts, **args) == [soon.address]
    assert await warn_expiring(svc.store, svc.directory, svc.config.accounts, **args) == []
    account = await svc.store.get_account(soon.address)
    assert account is not None
    inbox = await svc.store.get_folder(account.id, INBOX)
    (info,) = await svc.store.list_messages(account.id, inbox.id)
    (detail,) = await svc.store.get_details(account.id, inbox.id, [info.uid])
    assert detail.envelope.subject is not None and "Mật khẩu sắp hết hạn" in detail.envelope.subject
    assert "expires" in detail.envelope.subject
    # A new password is a new expiry: warned again when it comes close.
    await change_password(
        svc.store, svc.directory, svc.config.accounts, soon.address, NEW_PASSWORD, "Mat-khau-moi-2027"
    )
    await _age_password(svc, soon.address, 175)
    assert await warn_expiring(svc.store, svc.directory, svc.config.accounts, **args) == [soon.address]


async def test_reset_password(svc: DirectoryService) -> None:
    issued = await hire(svc, "Lê Đình Đức")
    await change_password(
        svc.store, svc.directory, svc.config.accounts, issued.address, issued.password, NEW_PASSWORD
    )
    password = await reset_password(svc.store, svc.directory, svc.config.accounts, issued.address, by=BY)
    account = await svc.store.get_account(issued.address)
    assert account is not None and account.must_change_password
    await change_password(
        svc.store, svc.directory, svc.config.accounts, issued.address, password, "Mat-khau-moi-2027"
    )
    entries = await svc.directory.audit_log(subject=issued.address)
    assert [e.action for e in entries] == [
        "person.add",
        "password.change",
        "password.reset",
        "password.change",
    ]
    assert entries[2].actor == "tester"


# -- search and export ----------------------------------------------------------------


async def test_search_is_accent_insensitive(svc: DirectoryService) -> None:
    await hire(svc, "Nguyễn Văn An", position="Chánh Văn phòng")
    await hire(svc, "Trần Thị Bích Ngọc")
    agencies, persons = await svc.search("nguyen van an")
    assert [p.full_name for p in persons] == ["Nguyễn Văn An"]
    agencies, persons = await svc.search("BIÊN HOA")
    assert [a.code for a in agencies] == ["ubndbienhoa"] and persons == []
    _, persons = await svc.search("chanh van phong")
    assert [p.address for p in persons] == ["annv@dongnai.gov.vn"]
    _, persons = await svc.search("ngocttb")
    assert [p.full_name for p in persons] == ["Trần Thị Bích Ngọc"]
    assert await svc.search("100%_") == ([], [])


async def test_migration_matches_the_directory_models(svc: DirectoryService) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from storage.sql import directory_models
    from storage.sql.fulltext_models import FTS_TABLE_PREFIX

    def include_name(name, type_, parent_names):  # type: ignore[no-untyped-def]
        # The full-text index is engine-specific DDL outside the models (storage.sql.fulltext).
        return not (type_ == "table" and name and name.startswith(FTS_TABLE_PREFIX))

    def compare(sync_conn):  # type: ignore[no-untyped-def]
        opts = {"compare_type": False, "include_name": include_name}
        ctx = MigrationContext.configure(sync_conn, opts=opts)
        return compare_metadata(ctx, models.Base.metadata)

    assert isinstance(svc.store, SqlMailStore)
    async with svc.store.db.engine.connect() as conn:
        diffs = await conn.run_sync(compare)
    assert diffs == []
    assert directory_models.DirAudit.__tablename__ in models.Base.metadata.tables

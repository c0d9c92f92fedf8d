"""Agency changes of a reorganisation (the 2025 mergers: Sở TT&TT into Sở
KH&CN, Bình Phước into Đồng Nai): ``mailserver agency rename`` and ``agency
merge``. Nothing is lost and no address stops working:

* **rename** changes the name (the old name stays an agency alias, so
  dispatch and the portal search still find it); with a new code the agency
  gets the mailbox ``<new code>@domain``, its mail is copied there (same
  folders, bytes, flags, dates), the old mailbox's login is disabled and its
  address kept as an address alias of the new one (delivery and sending as
  it), the old mailbox itself offboarded (purged after
  ``directory.offboard_grace_days``). Head and delegations belong to the
  agency and stay.
* **merge** copies the old agency's mail into ``Lưu trữ/<old name>`` of the
  new agency's mailbox, ends the old head's and every delegate's rights on
  the old mailbox (Điều 10 khoản 4), transfers its staff with the transfer of
  issue 16 (``DirectoryService.transfer``: their other rights in the old
  agency end, certificates naming it are revoked), and keeps the old address
  as an alias of the new agency's. The old agency stays in the directory (its
  history, the audit log) with its mailbox offboarded.

Both are idempotent enough to run again after an interruption: the mail copy
skips what is there already (``transfer.internal``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from mailserver.auth import generate_password, hash_password
from mailserver.directory import aliases, naming
from mailserver.directory.changes import WARNING, Change
from mailserver.directory.service import DirectoryService, _delegation_removed
from mailserver.dispatch.groups import GroupError, GroupStore
from mailserver.transfer.internal import copy_account
from storage.api import OverQuota
from storage.directory import (
    AddressState,
    AddressTaken,
    Agency,
    AgencyExists,
    By,
    DirectoryError,
    PersonStatus,
)
from storage.routes import open_routes

ARCHIVE: Final = "Lưu trữ"
"""The folder of the new agency's mailbox that merged agencies' mail goes under."""


@dataclass(frozen=True, slots=True)
class Reorganised:
    agency: Agency
    """The agency as it is now (renamed, or the one merged into)."""
    changes: tuple[Change, ...]
    password: str = ""
    """Initial password of a new agency mailbox (rename with a new code), shown once."""


def archive_folder(name: str) -> str:
    """``Lưu trữ/<name>``: the name as a single folder level."""
    return f"{ARCHIVE}/{' '.join(name.replace('/', '-').split())}"


async def _keep_name(service: DirectoryService, code: str, name: str, by: By) -> list[Change]:
    try:
        await aliases.add_alias(service.directory, code, name, by=by)
    except DirectoryError:
        return []  # already a name of some agency: lookups find it anyway
    return [Change(
        "alias.added", code,
        f"“{name}” vẫn là tên khác của {code} (gửi văn bản, tìm kiếm)",
        f"“{name}” stays another name of {code} (dispatch, search)",
    )]


async def rename_agency(
    service: DirectoryService, code: str, name: str, new_code: str | None, *, by: By
) -> Reorganised:
    agency = await service._agency(code)
    name = " ".join(name.split())
    if not name:
        raise DirectoryError("tên mới trống / the new name is empty")
    target = naming.agency_code(new_code) if new_code else agency.code
    if target == agency.code and name == agency.name:
        raise DirectoryError(f"{agency.code} đã có tên này / already has this name")
    directory, store = service.directory, service.store
    search = naming.search_key(target, name)
    changes: list[Change] = []
    password = ""
    if target == agency.code:
        updated = await directory.rename_agency(agency.code, name=name, search_text=search, by=by)
    else:
        new_address = service.address(target)
        if target in service._reserved:
            raise AddressTaken(f"{target} là tên dành riêng / is a reserved role name")
        if await directory.get_agency(target) is not None:
            raise AgencyExists(f"{target} đã là mã cơ quan / is already an agency")
        if await directory.lookup_address(new_address) is not None or await store.get_account(new_address):
            raise AddressTaken(f"{new_address} đã được cấp / was issued already")
        password = generate_password()
        encoded = await asyncio.to_thread(hash_password, password)
        account = await store.create_account(new_address, name, encoded, must_change_password=True)
        grace = timedelta(days=service.config.directory.offboard_grace_days)
        try:
            updated = await directory.rename_agency(
                agency.code, name=name, search_text=search, by=by, new_code=target,
                new_address=new_address, account_id=account.id, purge_after=datetime.now(UTC) + grace,
            )
        except BaseException:
            await store.delete_account(new_address)
            raise
        await directory.add_password_hash(account.id, encoded, keep=service.config.accounts.password_history)
        changes.append(Change(
            "mailbox.created", new_address,
            f"hộp thư mới của cơ quan: {new_address}", f"the agency's new mailbox: {new_address}",
        ))
        changes += await _retire_old_mailbox(service, agency, updated, by=by, under=None)
        changes += await _keep_name(service, target, agency.code, by)
        try:
            renamed = GroupStore(service.config.data_dir).rename_member(agency.code, target)
        except GroupError as exc:
            renamed = []
            changes.append(Change(
                WARNING, target,
                f"không sửa được các nhóm nhận: {exc}", f"distribution groups not updated: {exc}",
            ))
        for group in renamed:
            changes.append(Change(
                "group.member", group,
                f"nhóm {group}: thành viên {agency.code} nay là {target}",
                f"group {group}: member {agency.code} is now {target}",
            ))
    changes.insert(0, Change(
        "agency.renamed", updated.code,
        f"{agency.code} “{agency.name}” nay là {updated.code} “{updated.name}”",
        f"{agency.code} “{agency.name}” is now {updated.code} “{updated.name}”",
    ))
    if name != agency.name:
        changes += await _keep_name(service, updated.code, agency.name, by)
    return Reorganised(updated, tuple(changes), password)


async def _retire_old_mailbox(
    service: DirectoryService, old: Agency, new: Agency, *, by: By, under: str | None
) -> list[Change]:
    """Copy the old agency mailbox into the new one, disable it, offboard its
    address (unless done already) and make it an alias of the new address."""
    store = service.store
    changes: list[Change] = []
    if old.address is None or new.address is None:
        return changes
    source = await store.get_account(old.address)
    dest = await store.get_account(new.address)
    if source is not None and dest is not None:
        try:
            copied = await copy_account(store, source, dest, under=under)
        except OverQuota:
            raise DirectoryError(
                f"hộp thư {new.address} đã đầy: nâng hạn mức (`mailserver account set-quota`) rồi chạy lại "
                f"lệnh, thư đã chép không bị chép lại / {new.address} is full: raise its quota and run the "
                "command again; what was copied is not copied twice"
            ) from None
        changes.append(Change(
            "mail.moved", new.address,
            f"đã chuyển {copied.messages} thư ({copied.folders} thư mục) từ {old.address} vào {new.address}: "
            f"{under or 'các thư mục cùng tên'}"
            + (f"; {copied.skipped} thư đã có từ lần chạy trước" if copied.skipped else ""),
            f"{copied.messages} message(s) in {copied.folders} folder(s) moved from {old.address} to "
            f"{new.address}: {under or 'folders of the same names'}"
            + (f"; {copied.skipped} already there from an earlier run" if copied.skipped else ""),
        ))
        if not source.disabled:
            await store.set_disabled(source.id, True)
            changes.append(Change(
                "login.disabled", old.address,
                f"đã khóa đăng nhập {old.address} (thư giữ đến khi xóa theo hạn)",
                f"login of {old.address} disabled (its mail kept until the purge)",
            ))
    entry = await service.directory.lookup_address(old.address)
    if entry is not None and entry.state is AddressState.ACTIVE:
        grace = timedelta(days=service.config.directory.offboard_grace_days)
        await service.directory.set_address_state(
            old.address, AddressState.OFFBOARDED, by=by, purge_after=datetime.now(UTC) + grace,
            detail={"replaced_by": new.address},
        )
    routes = open_routes(store)
    if new.address not in [a.target for a in await routes.address_aliases(alias=old.address)]:
        await routes.add_address_alias(old.address, new.address, by=by)
    changes.append(Change(
        "alias.added", old.address,
        f"thư gửi {old.address} vẫn đến {new.address}; người được quyền gửi thay {new.code} gửi được bằng "
        "địa chỉ cũ",
        f"mail to {old.address} still reaches {new.address}; who may send as {new.code} may send as the "
        "old address",
    ))
    return changes


async def merge_agency(service: DirectoryService, old_code: str, into: str, *, by: By) -> Reorganised:
    old = await service._agency(old_code)
    new = await service._agency(into)
    if old.code == new.code:
        raise DirectoryError("không thể sáp nhập cơ quan vào chính nó / cannot merge an agency into itself")
    directory = service.directory
    changes: list[Change] = []
    # Rights on the old mailbox end first (Điều 10 khoản 4): a failure part-way
    # leaves less access, never more.
    if old.head_person_id is not None:
        head = await directory.get_person(old.head_person_id)
        await directory.set_head(old.code, None, by=by, action="agency.head-removed")
        if head is not None:
            changes.append(Change(
                "head.removed", old.code,
                f"{head.address} thôi là thủ trưởng của {old.code}, mất mọi quyền trên {old.address}",
                f"{head.address} no longer heads {old.code} and lost every right on {old.address}",
            ))
    for delegation in await directory.delegations(old.code):
        if await directory.revoke(old.code, delegation.account_id, by=by):
            changes.append(_delegation_removed(old, delegation))
    changes += await _retire_old_mailbox(service, old, new, by=by, under=archive_folder(old.name))
    moved = 0
    for person in await directory.list_persons(agency_code=old.code):
        if person.status is PersonStatus.ACTIVE and person.address is not None:
            result = await service.transfer(person.address, new.code, by=by)
            changes += result.changes
        else:
            await directory.transfer(person.id, new.code, by=by)
        moved += 1
    children = [a.code for a in await directory.list_agencies() if a.parent_code == old.code]
    if children:
        changes.append(Change(
            WARNING, old.code,
            f"các đơn vị trực thuộc {old.code} chưa được chuyển: {', '.join(children)}",
            f"the units under {old.code} were not moved: {', '.join(children)}",
        ))
    await directory.audit("agency.merge", old.code, by=by, detail={
        "into": new.code, "old_name": old.name, "old_address": old.address, "persons": moved,
        "folder": archive_folder(old.name),
    })
    changes.insert(0, Change(
        "agency.merged", old.code,
        f"{old.code} “{old.name}” đã sáp nhập vào {new.code} “{new.name}”; "
        f"{moved} người chuyển sang {new.code}",
        f"{old.code} “{old.name}” merged into {new.code} “{new.name}”; {moved} person(s) moved to {new.code}",
    ))
    return Reorganised(await service._agency(new.code), tuple(changes))

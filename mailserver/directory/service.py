"""The directory's business rules: issuing, moving and retiring addresses.

Decision 70/2009/QĐ-UBND, as enforced here:

* Điều 4 khoản 2: one personal address per person (``PersonHasMailbox``), built
  by ``naming.local_part``, numbered 2, 3, … on a collision; agency addresses
  are ``<code>@domain``. Role names, agency codes and every address ever issued
  share one namespace, and an address is never issued to anyone else again.
* Điều 5 khoản 1-2 and Điều 7 khoản 1: mailboxes are created with a generated
  initial password that must be changed (``add_person``, ``import_csv``).
* Điều 5 khoản 3: a transfer keeps the address and changes the agency, and
  ends every right the person held in the old agency: a delegation is revoked;
  a head must hand over first (``handover``), name the successor
  (``new_head``), or explicitly leave the agency headless (``force_headless``,
  loud warning and an ``agency.headless`` audit record). A head's transfer
  also rotates the agency mailbox's own password (the head knew it). Personal
  certificates name the old agency (O=) and are revoked (affiliationChanged).
* Điều 5 khoản 4: leaving disables the login at once, archives the mail for the
  agency and deletes the mailbox after the grace period; the address stays a
  tombstone. A head who leaves leaves the agency headless: its mailbox password
  is rotated as in a handover and the operator is told what to do next.
* Điều 10: the agency mailbox is administered by the head, who may delegate
  (ủy quyền); on a change of head the new head takes over administration and
  content (``handover``).

Every lifecycle method returns the ``Change``s it made (``changes.py``), which
the CLI prints: rights removed, certificates revoked, passwords rotated, and
the follow-up left to the operator. Open IMAP sessions notice a removed right
within ``imap.access_cache`` seconds, and sessions logged in to an agency
mailbox whose password was rotated are ended (``imap.session``).

Theory of operation
-------------------
Issuing is two-phase because mail accounts and directory rows live behind two
interfaces: (1) one directory transaction inserts the persons and reserves
their addresses (the namespace's unique address is the arbiter between
concurrent administrators), (2) the mail accounts are created and linked. If
(2) fails for any account, every account created so far is deleted and the
reservations are discarded, so an import is all or nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from mailserver.auth import generate_password, hash_password
from mailserver.certs import open_ca
from mailserver.config import Config
from mailserver.directory import export, importer, names, naming
from mailserver.directory.aliases import alias_map
from mailserver.directory.archive import archive_mailbox
from mailserver.directory.changes import FOLLOW_UP, WARNING, Change
from mailserver.directory.importer import CsvRow, RowError
from mailserver.directory.routing import Router
from pki.ca import PkiError
from storage.api import Account, AccountExists, MailStore, NoSuchAccount, OnHold
from storage.directory import (
    ALL_RIGHTS,
    AddressKind,
    AddressState,
    AddressTaken,
    Agency,
    AgencyExists,
    By,
    Delegation,
    DirectoryError,
    DirectoryStore,
    NewPerson,
    NoSuchAgency,
    NoSuchEntry,
    Person,
    PersonHasMailbox,
    PersonStatus,
    canonical_rights,
)
from storage.routes import open_routes

__all__ = [
    "DEFAULT_RIGHTS",
    "Changed",
    "DirectoryService",
    "HeadMustHandOver",
    "ImportFailed",
    "Issued",
    "Offboarded",
    "Transferred",
    "parse_rights",
]

RIGHT_WORDS: Final = {
    "read": "lrs",
    "write": "wipte",
    "folders": "kx",
    "admin": "a",
    "all": ALL_RIGHTS,
}
"""Words accepted beside RFC 4314 letters in a rights specification."""

DEFAULT_RIGHTS: Final = "read,write,send"


def parse_rights(spec: str) -> tuple[str, bool]:
    """``read,write,send`` or RFC 4314 letters (``lrswi``), or a mix, to (rights,
    may_send). ``send`` (send as the agency address) is not an IMAP right, so it is
    returned apart. Raises ValueError."""
    letters = ""
    may_send = False
    for token in (t.strip() for t in spec.replace(" ", ",").split(",")):
        if not token:
            continue
        if token.lower() == "send":
            may_send = True
        elif token.lower() in RIGHT_WORDS:
            letters += RIGHT_WORDS[token.lower()]
        else:
            letters += token
    rights = canonical_rights(letters)
    if not rights and not may_send:
        raise ValueError("no rights given")
    return rights, may_send


class HeadMustHandOver(DirectoryError):  # noqa: N818 - reads as the refusal
    """Điều 10 khoản 4: the head of the agency a person leaves must hand over first."""


class ImportFailed(DirectoryError):  # noqa: N818 - reads as the refusal
    """The CSV file has errors; nothing was created."""

    def __init__(self, errors: Sequence[RowError]) -> None:
        super().__init__(f"{len(errors)} error(s), nothing imported")
        self.errors = list(errors)


@dataclass(frozen=True, slots=True)
class Issued:
    """A mailbox just created, with its one-time initial password."""

    address: str
    password: str
    person: Person | None = None
    agency: Agency | None = None
    line: int | None = None
    """CSV line it came from."""
    changes: tuple[Change, ...] = ()


@dataclass(frozen=True, slots=True)
class Planned:
    """A row of an import, checked, with the address it will get."""

    row: CsvRow
    address: str


@dataclass(frozen=True, slots=True)
class Offboarded:
    address: str
    archive: Path
    messages: int
    purge_after: datetime
    revoked: tuple[str, ...] = ()
    """Agencies whose delegation was removed."""
    changes: tuple[Change, ...] = ()
    headless: tuple[str, ...] = ()
    """Agencies the person headed, now without a head."""


@dataclass(frozen=True, slots=True)
class Transferred:
    person: Person
    changes: tuple[Change, ...] = ()

    @property
    def address(self) -> str | None:
        return self.person.address

    @property
    def agency_code(self) -> str:
        return self.person.agency_code


@dataclass(frozen=True, slots=True)
class Changed:
    """What ``set_head``, ``delegate`` and ``revoke`` changed."""

    changes: tuple[Change, ...] = ()
    agency: Agency | None = None
    delegation: Delegation | None = None


@dataclass(frozen=True, slots=True)
class AgencyView:
    agency: Agency
    head: Person | None
    delegations: list[Delegation] = field(default_factory=list)


class DirectoryService:
    """Directory operations over a started MailStore and its DirectoryStore."""

    def __init__(self, store: MailStore, directory: DirectoryStore, config: Config) -> None:
        self.store = store
        self.directory = directory
        self.config = config
        self.domain = (config.directory.domain or config.server.domains[0]).lower()
        self._reserved = naming.RESERVED_LOCAL_PARTS | {
            r.lower() for r in config.directory.reserved_local_parts
        }

    # -- namespace ------------------------------------------------------------
    def address(self, local: str) -> str:
        return f"{local}@{self.domain}"

    def _canonical(self, address: str) -> str:
        address = address.strip().lower()
        return address if "@" in address else self.address(address)

    async def is_taken(self, local: str) -> bool:
        """Reserved role name, anything in the namespace (tombstones included) or
        an account made outside the directory."""
        if local in self._reserved:
            return True
        address = self.address(local)
        if await self.directory.lookup_address(address) is not None:
            return True
        return await self.store.get_account(address) is not None

    async def _allocate(self, base: str, explicit: bool, extra: set[str]) -> str:
        """The local part to issue: ``base`` itself when explicit (AddressTaken if
        it is not free), else the first free of base, base2, base3, …"""
        if explicit:
            if base in extra or await self.is_taken(base):
                raise AddressTaken(self._why_taken(base))
            return base
        local = base
        n = 2
        while local in extra or await self.is_taken(local):
            suffix = str(n)
            local = base[: naming.MAX_LOCAL_PART - len(suffix)] + suffix
            n += 1
        return local

    def _why_taken(self, local: str) -> str:
        if local in self._reserved:
            return f"{local} is a reserved role name"
        return f"{self.address(local)} is already issued or retired (never re-issued, Điều 4)"

    # -- issuing --------------------------------------------------------------
    async def _create_accounts(self, items: Sequence[tuple[str, str]]) -> list[tuple[Account, str]]:
        """Create (address, display name) accounts with initial passwords; all or
        none. Returns (account, password) pairs."""
        created: list[tuple[Account, str]] = []
        try:
            for address, name in items:
                password = generate_password()
                encoded = await asyncio.to_thread(hash_password, password)
                account = await self.store.create_account(address, name, encoded, must_change_password=True)
                created.append((account, password))
        except BaseException:
            for account, _ in created:
                with contextlib.suppress(NoSuchAccount):
                    await self.store.delete_account(account.address)
            raise
        for account, _ in created:
            await self.directory.link_account(account.address, account.id)
            await self.directory.add_password_hash(
                account.id, account.password_hash, keep=self.config.accounts.password_history
            )
        return created

    async def _issue_persons(self, people: Sequence[NewPerson], by: By) -> list[Issued]:
        persons = await self.directory.add_persons(people, by=by)
        try:
            created = await self._create_accounts([(p.address, p.full_name) for p in people])
        except AccountExists as exc:
            await self.directory.discard([p.address for p in people], by=by, reason=f"account exists: {exc}")
            raise AddressTaken(f"an account {exc} exists outside the directory") from None
        except BaseException as exc:
            await self.directory.discard([p.address for p in people], by=by, reason=repr(exc))
            raise
        return [
            Issued(account.address, password, person=person)
            for person, (account, password) in zip(persons, created, strict=True)
        ]

    async def add_agency(self, code: str, name: str, parent: str | None, *, by: By) -> Issued:
        """Create the agency and its mailbox ``<code>@domain`` (Điều 4 khoản 2)."""
        code = naming.agency_code(code)
        name = " ".join(name.split())
        if not name:
            raise DirectoryError("the agency needs a name")
        if code in self._reserved:
            raise AddressTaken(f"{code} is a reserved role name")
        parent_code = naming.agency_code(parent) if parent else None
        address = self.address(code)
        if await self.directory.get_agency(code) is not None:
            raise AgencyExists(f"{code} is already an agency")
        if await self.store.get_account(address) is not None:
            raise AddressTaken(f"an account {address} exists outside the directory")
        agency = await self.directory.add_agency(
            code, name, parent_code, address, by=by, search_text=naming.search_key(code, name)
        )
        try:
            ((account, password),) = await self._create_accounts([(address, name)])
        except BaseException as exc:
            await self.directory.discard([address], by=by, reason=repr(exc))
            raise
        agency = await self._agency(code)
        return Issued(account.address, password, agency=agency)

    async def _agency(self, code: str) -> Agency:
        agency = await self.directory.get_agency(naming.agency_code(code))
        if agency is None:
            raise NoSuchAgency(f"no agency {code!r}")
        return agency

    async def _namesake(self, full_name: str, agency_code: str) -> Person | None:
        key = naming.search_key(full_name)
        for person in await self.directory.list_persons(agency_code=agency_code):
            if naming.search_key(person.full_name) == key and person.address is not None:
                return person
        return None

    async def add_person(
        self,
        name: str,
        agency: str,
        *,
        by: By,
        position: str = "",
        phone: str = "",
        family: str | None = None,
        middle: str | None = None,
        given: str | None = None,
        local: str | None = None,
        namesake: bool = False,
    ) -> Issued:
        """Register a person and issue their personal mailbox (Điều 5 khoản 2).

        Refuses (PersonHasMailbox) when an active person of the same name in the
        same agency already has an address, unless ``namesake`` says this is a
        different person: Điều 4 khoản 2 allows one address per person."""
        csv_row = importer.check_row(
            0,
            {
                "ho_ten": name,
                "ho": family or "",
                "ten_dem": middle or "",
                "ten": given or "",
                "ma_co_quan": agency,
                "chuc_vu": position,
                "dien_thoai": phone,
                "hop_thu": local or "",
            },
        )
        if isinstance(csv_row, RowError):
            raise DirectoryError(csv_row.message)
        (planned,) = await self._plan([csv_row], namesake=namesake, raise_first=True)
        (issued,) = await self._issue_persons([self._new_person(planned)], by)
        return issued

    async def issue_mailbox(self, person_id: int, *, by: By, local: str | None = None) -> Issued:
        """Issue a personal mailbox to a registered person who has none (e.g. one
        recorded without). PersonHasMailbox if they have one (Điều 4 khoản 2)."""
        person = await self.directory.get_person(person_id)
        if person is None:
            raise DirectoryError(f"no person {person_id}")
        if person.address is not None:
            raise PersonHasMailbox(
                f"{person.full_name} already has {person.address}: one address per person (Điều 4 khoản 2)"
            )
        base = local or naming.local_part(
            person.full_name, family=person.family, middle=person.middle, given=person.given
        )
        chosen = self.address(await self._allocate(base, bool(local), set()))
        await self.directory.issue_personal_address(person_id, chosen, by=by)
        try:
            ((account, password),) = await self._create_accounts([(chosen, person.full_name)])
        except BaseException as exc:
            # Only the reservation goes: the person was registered before.
            await self.directory.set_address_state(
                chosen, AddressState.RETIRED, by=by, detail={"error": repr(exc)}
            )
            raise
        return Issued(account.address, password, person=await self.directory.get_person(person_id))

    def _new_person(self, planned: Planned) -> NewPerson:
        row = planned.row
        return NewPerson(
            full_name=row.full_name,
            family=row.family,
            middle=row.middle,
            given=row.given,
            agency_code=row.agency_code,
            address=planned.address,
            position=row.position,
            phone=row.phone,
            search_text=naming.search_key(row.full_name, row.position),
        )

    async def _plan(
        self, rows: Sequence[CsvRow], *, namesake: bool = False, raise_first: bool = False
    ) -> list[Planned]:
        """Check every row against the database and pick addresses; ImportFailed
        with every error (or the first error itself when ``raise_first``)."""
        errors: list[RowError] = []
        plans: list[Planned] = []
        chosen: set[str] = set()
        seen: dict[tuple[str, str], int] = {}
        agencies: dict[str, bool] = {}
        old_seen: dict[str, int] = {}
        router: Router | None = None
        for row in rows:
            try:
                if row.old_address:
                    if router is None:
                        router = Router(self.config.server.domains, self.store)
                        await router.refresh()
                    await self._check_old_address(router, row.old_address, old_seen.get(row.old_address))
                    old_seen[row.old_address] = row.line
                code = naming.agency_code(row.agency_code)
                if code not in agencies:
                    agencies[code] = await self.directory.get_agency(code) is not None
                if not agencies[code]:
                    raise NoSuchAgency(f"no agency {code!r} (create it with `mailserver agency add`)")
                key = (naming.search_key(row.full_name), code)
                if key in seen:
                    raise PersonHasMailbox(f"{row.full_name} is also on line {seen[key]}")
                seen[key] = row.line
                if not namesake:
                    other = await self._namesake(row.full_name, code)
                    if other is not None:
                        raise PersonHasMailbox(
                            f"{row.full_name} ({code}) already has {other.address}: one address per "
                            "person (Điều 4 khoản 2); for a different person of the same name use --namesake"
                        )
                local = await self._allocate(row.local_part, row.explicit, chosen)
            except (DirectoryError, naming.NamingError) as exc:
                if raise_first:
                    raise
                errors.append(RowError(row.line, str(exc)))
                continue
            chosen.add(local)
            old = row.old_address
            if router is not None and old:
                old = router.canonical(old) or old
            plans.append(
                Planned(dataclasses.replace(row, agency_code=code, old_address=old), self.address(local))
            )
        if errors:
            raise ImportFailed(errors)
        return plans

    async def _check_old_address(self, router: Router, old: str, line: int | None) -> None:
        """``dia_chi_cu``: an address of ours (so mail to it comes here) that no
        mailbox uses and no alias names yet."""
        if line is not None:
            raise DirectoryError(f"dia_chi_cu {old} is also on line {line}")
        if router.canonical(old) is None:
            raise DirectoryError(
                f"dia_chi_cu {old}: tên miền chưa thuộc hệ thống, thêm bằng `mailserver domain add` / "
                "its domain is not ours: add it with `mailserver domain add`"
            )
        canonical = router.canonical(old) or old
        account = await self.store.get_account(canonical)
        if (account is not None and not account.disabled) or router.alias_targets(canonical):
            raise DirectoryError(f"dia_chi_cu {old} đang được dùng / is in use already")

    async def import_csv(
        self, data: bytes, *, by: By, dry_run: bool = False, filename: str = ""
    ) -> list[Issued] | list[Planned]:
        """Import staff from CSV or .xlsx (format in ``importer``): every row is
        checked first, every error reported with its line, and nothing is created
        if any row is wrong. ``dry_run`` returns the plan without creating anything."""
        rows, errors = importer.parse(data, filename)
        if errors and not rows:
            raise ImportFailed(errors)
        try:
            plans = await self._plan(rows)
        except ImportFailed as exc:
            errors += exc.errors
        if errors:
            # Every error of the file at once, in file order.
            raise ImportFailed(sorted(errors, key=lambda e: e.line))
        if dry_run:
            return plans
        issued = await self._issue_persons([self._new_person(p) for p in plans], by)
        routes = open_routes(self.store)
        for plan in plans:
            if plan.row.old_address:
                # Checked in _plan; the person exists now, so an alias failing
                # here (a race with another operator) must not undo them.
                await routes.add_address_alias(plan.row.old_address, plan.address, by=by)
        return [
            Issued(i.address, i.password, person=i.person, line=p.row.line)
            for i, p in zip(issued, plans, strict=True)
        ]

    # -- lifecycle ------------------------------------------------------------
    async def _person(self, address: str) -> Person:
        person = await self.directory.person_by_address(self._canonical(address))
        if person is None:
            raise NoSuchEntry(f"{address} is not a person's address in the directory")
        return person

    async def transfer(
        self,
        address: str,
        agency: str,
        *,
        by: By,
        new_head: str | None = None,
        force_headless: bool = False,
    ) -> Transferred:
        """Điều 5 khoản 3: same address, new agency; every right in the old agency
        ends (module docstring). Raises HeadMustHandOver when the person heads the
        old agency and neither ``new_head`` nor ``force_headless`` is given."""
        person = await self._person(address)
        if person.status is not PersonStatus.ACTIVE:
            raise DirectoryError(
                f"{person.address} đã nghỉ việc; chỉ chuyển được người đang công tác / "
                f"{person.address} has left; a transfer needs an active person"
            )
        assert person.address is not None  # noqa: S101 - found by address
        target = await self._agency(agency)
        if target.code == person.agency_code:
            raise DirectoryError(
                f"{person.address} đã thuộc {target.code} / {person.address} is already in {target.code}"
            )
        old = await self.directory.get_agency(person.agency_code)
        heads = old is not None and old.head_person_id == person.id
        successor: Person | None = None
        if new_head is not None:
            if old is None or not heads:
                raise DirectoryError(
                    f"--new-head chỉ dùng khi {person.address} là thủ trưởng của {person.agency_code} / "
                    f"--new-head is for a head: {person.address} does not head {person.agency_code}"
                )
            successor = await self._active_person(new_head)
            if successor.id == person.id:
                raise DirectoryError(
                    "thủ trưởng mới phải là người khác / the new head must be someone else"
                )
        elif heads and not force_headless:
            assert old is not None  # noqa: S101 - heads implies old
            raise HeadMustHandOver(
                f"{person.address} là thủ trưởng của {old.code}: chỉ định người thay bằng --new-head ĐỊA_CHỈ "
                f"hoặc chạy `mailserver agency handover {old.code} ĐỊA_CHỈ` trước (Điều 10 khoản 4); "
                f"--force-headless để cơ quan không có thủ trưởng / {person.address} heads {old.code}: "
                f"name the successor with --new-head ADDRESS or run `mailserver agency handover "
                f"{old.code} ADDRESS` first; --force-headless leaves the agency without a head"
            )
        changes: list[Change] = []
        # Rights in the old agency end before the person moves (Điều 5 khoản 3,
        # Điều 10 khoản 4): a failure part-way leaves less access, never more.
        if old is not None:
            if heads:
                changes += await self._end_headship(old, person, successor, by=by, reason="transfer")
            changes += await self._end_delegation(old, person.address, by=by)
        moved = await self.directory.transfer(person.id, target.code, by=by)
        changes.append(Change(
            "person.moved", person.address,
            f"{person.address} chuyển từ {person.agency_code} sang {target.code}, giữ nguyên địa chỉ",
            f"{person.address} moved from {person.agency_code} to {target.code}, address unchanged",
        ))
        if old is not None and old.address:
            cache = self.config.imap.access_cache
            changes.append(Change(
                "access.ended", old.address,
                f"Không còn quyền nào trên hộp thư {old.address}; phiên IMAP đang mở mất quyền trong "
                f"vòng {cache:g} giây, gửi thư với địa chỉ này bị từ chối",
                f"no right remains on {old.address}; open IMAP sessions lose access within {cache:g} s, "
                "sending as it is refused",
            ))
        # The personal certificate names the old agency (O=): RFC 5280 section
        # 5.3.1 affiliationChanged.
        changes += self._revoke_certificates(person.address, "affiliationChanged", reissue=True)
        return Transferred(moved, tuple(changes))

    async def _end_headship(
        self, agency: Agency, person: Person, successor: Person | None, *, by: By, reason: str,
        already_removed: bool = False,
    ) -> list[Change]:
        """The person stops heading ``agency``: the successor takes over, or the
        agency is left headless (loudly); either way the agency mailbox's own
        password is rotated, since the outgoing head knew it (Điều 10 khoản 2, 4)."""
        changes: list[Change] = []
        if successor is not None:
            await self.directory.set_head(agency.code, successor.id, by=by, action="agency.handover")
            await self.directory.audit(
                "agency.handover-complete", agency.code, by=by,
                detail={"old_head": person.address, "new_head": successor.address, "reason": reason},
            )
        elif not already_removed:
            await self.directory.set_head(agency.code, None, by=by, action="agency.head-removed")
        changes.append(Change(
            "head.removed", agency.code,
            f"{person.address} thôi là thủ trưởng của {agency.code}, mất mọi quyền trên {agency.address}",
            f"{person.address} no longer heads {agency.code} and lost every right on {agency.address}",
        ))
        if successor is not None:
            changes.append(Change(
                "head.set", agency.code,
                f"{successor.address} là thủ trưởng mới của {agency.code} (mọi quyền, gửi thư thay cơ quan)",
                f"{successor.address} is the new head of {agency.code} (every right, may send as it)",
            ))
        else:
            await self.directory.audit(
                "agency.headless", agency.code, by=by,
                detail={"old_head": person.address, "reason": reason,
                        "warning": "the agency mailbox has no head (Điều 10 khoản 1)"},
            )
            changes.append(Change(
                WARNING, agency.code,
                f"cơ quan {agency.code} không còn thủ trưởng quản lý hộp thư {agency.address} "
                "(Điều 10 khoản 1)",
                f"agency {agency.code} has no head administering {agency.address} now",
            ))
        if agency.address:
            changes.append(await self._rotate(agency.address, by=by))
            if successor is not None:
                changes.append(Change(
                    FOLLOW_UP, agency.code,
                    f"giao mật khẩu mới của {agency.address} cho {successor.address}, người phải đổi mật "
                    "khẩu ở lần đăng nhập đầu (Điều 10 khoản 2)",
                    f"give the new password of {agency.address} to {successor.address}, who must change "
                    "it at the first login",
                ))
            else:
                changes.append(Change(
                    FOLLOW_UP, agency.code,
                    f"khi có thủ trưởng mới: `mailserver agency set-head {agency.code} ĐỊA_CHỈ` và giao "
                    f"mật khẩu mới của {agency.address} cho người đó",
                    f"once there is a new head: `mailserver agency set-head {agency.code} ADDRESS` and give "
                    f"them the new password of {agency.address}",
                ))
            changes += self._agency_certificate_follow_up(agency.address, person.address)
        return changes

    async def _end_delegation(self, agency: Agency, address: str, *, by: By) -> list[Change]:
        account = await self.store.get_account(address)
        if account is None:
            return []
        held = await self._held(agency.code, account.id)
        if held is None or not await self.directory.revoke(agency.code, account.id, by=by):
            return []
        return [_delegation_removed(agency, held)]

    async def _held(self, code: str, account_id: int) -> Delegation | None:
        """The account's delegation on the agency mailbox, if any."""
        return next((d for d in await self.directory.delegations(code) if d.account_id == account_id), None)

    async def _rotate(self, address: str, *, by: By) -> Change:
        from mailserver.directory.passwords import reset_password

        password = await reset_password(self.store, self.directory, self.config.accounts, address, by=by)
        return Change(
            "password.rotated", address,
            f"mật khẩu của hộp thư {address} đã được cấp lại (mật khẩu cũ hết hiệu lực, các phiên đăng nhập "
            "bằng nó bị đóng); mật khẩu mới, chỉ hiện một lần",
            f"the password of {address} was rotated (the old one no longer works, its sessions are "
            "closed); the new one, shown once",
            secret=password,
        )

    def _agency_certificate_follow_up(self, agency_address: str, holder: str | None) -> list[Change]:
        try:
            record = open_ca(self.config).valid_for(agency_address)
        except PkiError:
            return []
        if record is None:
            return []
        return [Change(
            FOLLOW_UP, agency_address,
            f"nếu {holder} giữ tệp PKCS#12 của chứng thư {record.serial} của {agency_address}, thu hồi: "
            f"`mailserver pki revoke {record.serial}` rồi `mailserver pki issue {agency_address}`",
            f"if {holder} holds a PKCS#12 of certificate {record.serial} of {agency_address}, revoke it: "
            f"`mailserver pki revoke {record.serial}`, then `mailserver pki issue {agency_address}`",
        )]

    def _revoke_certificates(self, address: str, reason: str, *, reissue: bool = False) -> list[Change]:
        """Revoke the address's certificates in the index (no passphrase needed) and
        publish the CRL if this process can sign it; otherwise the running server
        does (``mailserver.certs.crl_loop``)."""
        ca = open_ca(self.config)
        try:
            revoked = ca.revoke(address, reason)
        except PkiError as exc:
            return [Change(WARNING, address, f"không thu hồi được chứng thư: {exc}",
                           f"certificates not revoked: {exc}")]
        if not revoked:
            return []
        changes = [
            Change("certificate.revoked", address,
                   f"đã thu hồi chứng thư số {r.serial} của {address} ({reason})",
                   f"certificate {r.serial} of {address} revoked ({reason})")
            for r in revoked
        ]
        if ca.publish_if_possible():
            changes.append(Change("crl.published", address, "đã công bố lại CRL", "CRL republished"))
        else:
            interval = self.config.pki.crl_check_interval
            changes.append(Change(
                "crl.pending", address,
                f"máy chủ đang chạy công bố lại CRL trong vòng {interval:g} giây",
                f"the running server republishes the CRL within {interval:g} s",
            ))
        if reissue:
            changes.append(Change(
                FOLLOW_UP, address,
                f"cấp chứng thư mới ghi cơ quan mới: `mailserver pki issue {address}`",
                f"issue a certificate naming the new agency: `mailserver pki issue {address}`",
            ))
        return changes

    def archive_dir(self, agency_code: str) -> Path:
        root = Path(self.config.directory.archive_dir) if self.config.directory.archive_dir else None
        return (root or self.config.data_dir / "archives") / agency_code

    async def offboard(self, address: str, *, by: By, now: datetime | None = None) -> Offboarded:
        """Điều 5 khoản 4: disable the login at once, export all folders to an
        archive for the agency, revoke delegations and headships (rotating the
        password of every agency mailbox the person headed), revoke certificates,
        keep the mail for ``directory.offboard_grace_days``; the person's status
        becomes left."""
        person = await self._person(address)
        assert person.address is not None  # noqa: S101 - found by address
        if person.address_state is not AddressState.ACTIVE:
            raise DirectoryError(
                f"{person.address} đã ở trạng thái {person.address_state} / "
                f"{person.address} is already {person.address_state}"
            )
        account = await self.store.get_account(person.address)
        if account is None:
            raise NoSuchEntry(f"không có hộp thư / no mailbox {person.address}")
        headed = [a for a in await self.directory.list_agencies() if a.head_person_id == person.id]
        held = {
            a.code: d
            for a in await self.directory.list_agencies()
            for d in await self.directory.delegations(a.code)
            if d.account_id == account.id
        }
        await self.store.set_disabled(account.id, True)
        changes = [Change(
            "login.disabled", person.address,
            f"đã khóa đăng nhập {person.address}; các phiên đang mở bị đóng trong vòng "
            f"{self.config.imap.access_cache:g} giây",
            f"login of {person.address} disabled; open sessions end within "
            f"{self.config.imap.access_cache:g} s",
        )]
        path, count = await archive_mailbox(self.store, account, self.archive_dir(person.agency_code))
        changes.append(Change(
            "mail.archived", person.address,
            f"đã lưu {count} thư vào {path} cho cơ quan {person.agency_code}",
            f"{count} message(s) archived to {path} for {person.agency_code}",
        ))
        revoked = await self.directory.revoke_all(account.id, by=by)
        agencies = {a.code: a for a in await self.directory.list_agencies()}
        for code in revoked:
            if code in agencies and code in held:
                changes.append(_delegation_removed(agencies[code], held[code]))
        now = now or datetime.now(UTC)
        purge_after = now + timedelta(days=self.config.directory.offboard_grace_days)
        await self.directory.set_address_state(
            person.address,
            AddressState.OFFBOARDED,
            by=by,
            purge_after=purge_after,
            archive=str(path),
            detail={"archive": str(path), "messages": count, "purge_after": purge_after.isoformat()},
        )
        # Removes the person as head wherever they were (audited there).
        await self.directory.mark_left(person.id, by=by)
        for agency in headed:
            changes += await self._end_headship(
                agency, person, None, by=by, reason="offboard", already_removed=True
            )
        # Issue 7: a person who leaves can no longer sign for the province.
        changes += self._revoke_certificates(person.address, "affiliationChanged")
        return Offboarded(
            person.address, path, count, purge_after, tuple(revoked), tuple(changes),
            tuple(a.code for a in headed),
        )

    async def purge(
        self,
        *,
        by: By,
        now: datetime | None = None,
        dry_run: bool = False,
        refused: list[OnHold] | None = None,
    ) -> list[str]:
        """Delete the mailboxes whose grace period has passed; their addresses stay
        as retired tombstones and are never issued again (Điều 4 khoản 2). A
        mailbox under a hold (``mailserver hold``) is not deleted: its refusal is
        appended to ``refused`` and it stays due until the hold is cleared."""
        due = await self.directory.due_for_purge(now or datetime.now(UTC))
        purged: list[str] = []
        for entry in due:
            account = await self.store.get_account(entry.address)
            holds = await self.store.holds_on(account.id) if account is not None else []
            if holds:
                if refused is not None:
                    refused.append(OnHold(entry.address, [h.reason for h in holds]))
                continue
            if not dry_run:
                try:
                    with contextlib.suppress(NoSuchAccount):
                        await self.store.delete_account(entry.address)
                except OnHold as exc:  # held meanwhile
                    if refused is not None:
                        refused.append(exc)
                    continue
                await self.directory.set_address_state(entry.address, AddressState.RETIRED, by=by)
            purged.append(entry.address)
        return purged

    # -- agencies (Điều 10) ---------------------------------------------------
    async def _active_person(self, address: str) -> Person:
        person = await self._person(address)
        if person.status is not PersonStatus.ACTIVE or person.address_state is not AddressState.ACTIVE:
            raise DirectoryError(f"{person.address} is not an active person")
        return person

    async def set_head(self, code: str, address: str, *, by: By) -> Changed:
        """Make the person head (Điều 10 khoản 1). A previous head loses every right;
        a plain set-head does not rotate the agency password (``handover`` does)."""
        agency = await self._agency(code)
        person = await self._active_person(address)
        previous = (
            await self.directory.get_person(agency.head_person_id)
            if agency.head_person_id and agency.head_person_id != person.id else None
        )
        account = await self.store.get_account(person.address or "")
        held = await self._held(agency.code, account.id) if account is not None else None
        updated = await self.directory.set_head(agency.code, person.id, by=by)
        changes = [Change(
            "head.set", agency.code,
            f"{person.address} là thủ trưởng của {agency.code}: mọi quyền trên {agency.address}, "
            "gửi thư thay cơ quan",
            f"{person.address} heads {agency.code}: every right on {agency.address}, may send as it",
        )]
        if held is not None:
            changes.append(Change(
                "right.removed", agency.code,
                f"ủy quyền cũ của {person.address} ({held.rights}) được thay bằng quyền thủ trưởng",
                f"the former delegation of {person.address} ({held.rights}) is replaced by headship",
            ))
        if previous is not None:
            changes.append(Change(
                "head.removed", agency.code,
                f"{previous.address} thôi là thủ trưởng, mất mọi quyền trên {agency.address}",
                f"{previous.address} no longer heads {agency.code} and lost every right on {agency.address}",
            ))
            changes.append(Change(
                FOLLOW_UP, agency.code,
                f"{previous.address} có thể biết mật khẩu của {agency.address}: dùng `mailserver agency "
                f"handover` (cấp lại mật khẩu) hoặc `mailserver account reset-password {agency.address}`",
                f"{previous.address} may know the password of {agency.address}: `mailserver agency handover` "
                f"rotates it, or `mailserver account reset-password {agency.address}`",
            ))
        return Changed(tuple(changes), agency=updated)

    async def delegate(self, code: str, address: str, rights: str = DEFAULT_RIGHTS, *, by: By) -> Changed:
        """Điều 10 khoản 1: the head authorises someone to administer the agency mailbox."""
        agency = await self._agency(code)
        target = self._canonical(address)
        if target == agency.address:
            raise DirectoryError(
                "không ủy quyền hộp thư cơ quan cho chính nó / "
                "an agency mailbox cannot be delegated to itself"
            )
        account = await self.store.get_account(target)
        if account is None or account.disabled:
            raise NoSuchEntry(f"không có hộp thư đang dùng / no active mailbox {target}")
        try:
            letters, may_send = parse_rights(rights)
        except ValueError as exc:
            raise DirectoryError(f"quyền không hợp lệ / invalid rights: {exc}") from None
        before = await self._held(agency.code, account.id)
        d = await self.directory.delegate(agency.code, account.id, letters, may_send, by=by)
        send_vi = ", gửi thư thay cơ quan" if d.may_send else ""
        send_en = ", may send as the agency" if d.may_send else ""
        was_vi = f" (thay quyền cũ {_rights_text(before)})" if before is not None else ""
        was_en = f" (replacing {_rights_text(before)})" if before is not None else ""
        changes = [Change(
            "right.granted", agency.code,
            f"{d.address} được ủy quyền trên {agency.address}: {d.rights or '-'}{send_vi}{was_vi}",
            f"{d.address} holds rights {d.rights or '-'} on {agency.address}{send_en}{was_en}",
        )]
        return Changed(tuple(changes), agency=agency, delegation=d)

    async def revoke(self, code: str, address: str, *, by: By) -> Changed:
        agency = await self._agency(code)
        target = self._canonical(address)
        account = await self.store.get_account(target)
        held = await self._held(agency.code, account.id) if account is not None else None
        if account is None or held is None or not await self.directory.revoke(agency.code, account.id, by=by):
            raise NoSuchEntry(
                f"{target} không được ủy quyền trên {agency.code} / "
                f"{target} holds no delegation for {agency.code}"
            )
        return Changed((_delegation_removed(agency, held),), agency=agency)

    async def handover(self, code: str, new_head: str, *, by: By) -> Issued:
        """Điều 10 khoản 4: the outgoing head hands administration and all content
        of the agency mailbox to the new head. The new head becomes head (every
        right), the old head keeps nothing, and the agency mailbox gets a new
        initial password (the old head knew the old one) that the new head must
        change (Điều 10 khoản 2)."""
        agency = await self._agency(code)
        person = await self._active_person(new_head)
        if agency.head_person_id == person.id:
            raise DirectoryError(
                f"{person.address} đã là thủ trưởng của {agency.code} / "
                f"{person.address} is already head of {agency.code}"
            )
        if agency.address is None:
            raise NoSuchEntry(f"{agency.code} không có hộp thư / {agency.code} has no mailbox")
        old = await self.directory.get_person(agency.head_person_id) if agency.head_person_id else None
        changes: list[Change] = []
        if old is not None:
            changes = await self._end_headship(agency, old, person, by=by, reason="handover")
        else:
            await self.directory.set_head(agency.code, person.id, by=by, action="agency.handover")
            await self.directory.audit(
                "agency.handover-complete", agency.code, by=by,
                detail={"old_head": None, "new_head": person.address},
            )
            changes = [
                Change("head.set", agency.code,
                       f"{person.address} là thủ trưởng mới của {agency.code}",
                       f"{person.address} is the new head of {agency.code}"),
                await self._rotate(agency.address, by=by),
            ]
        rotated = next(c for c in changes if c.kind == "password.rotated")
        updated = await self._agency(agency.code)
        return Issued(agency.address, rotated.secret, person=person, agency=updated, changes=tuple(changes))

    async def agency_view(self, code: str) -> AgencyView:
        agency = await self._agency(code)
        head = await self.directory.get_person(agency.head_person_id) if agency.head_person_id else None
        return AgencyView(agency, head, await self.directory.delegations(agency.code))

    # -- reading --------------------------------------------------------------
    async def search(self, text: str) -> tuple[list[Agency], list[Person]]:
        """Accent-insensitive and ranked (``names.rank``): "nguyen van an" finds
        "Nguyễn Văn An" first, whole names and whole words before word starts;
        mere substrings ("an" inside "Toàn") only when nothing better matched.
        Agencies also by their short forms and aliases ("Sở TT&TT")."""
        aliases = await alias_map(self.directory)
        scored_agencies: list[tuple[int, str, Agency]] = []
        for agency in await self.directory.list_agencies():
            extra = aliases.get(agency.code, [])
            keys = set().union(*(names.forms(n) for n in (agency.name, *extra)), {agency.code})
            score = names.rank(text, agency.name, [agency.code, agency.address or "", *extra], keys)
            if score >= 0:
                scored_agencies.append((score, names.canon(agency.name), agency))
        _, candidates = await self.directory.search(naming.tokens(text))
        scored_persons: list[tuple[int, str, Person]] = []
        for person in candidates:
            others = [person.position, person.address or "", person.agency_code]
            score = names.rank(text, person.full_name, others)
            if score >= 0:
                scored_persons.append((score, names.fold(person.full_name), person))
        best = max((s for s, _, _ in scored_agencies + scored_persons), default=-1)
        floor = 1 if best >= 1 else 0
        agencies = sorted((x for x in scored_agencies if x[0] >= floor), key=lambda x: (-x[0], x[1]))
        persons = sorted((x for x in scored_persons if x[0] >= floor), key=lambda x: (-x[0], x[1], x[2].id))
        return [a for _, _, a in agencies], [p for _, _, p in persons]

    async def entries(
        self, *, include_persons: bool = False, include_heads: bool = False
    ) -> list[export.Entry]:
        """The published directory (Điều 5 khoản 5): agency addresses; every
        person's with ``include_persons``; with ``include_heads`` (and not every
        person) each agency followed by its competent officials, the head (agency
        set-head) and the deputies (a position beginning "Phó": Phó Giám đốc, Phó
        Chủ tịch …)."""
        agencies = await self.directory.list_agencies()
        by_code = {a.code: a for a in agencies}
        persons = await self.directory.list_persons()
        by_id = {p.id: p for p in persons}
        leaders: dict[str, list[Person]] = {}
        if include_heads and not include_persons:
            for a in agencies:
                head = by_id.get(a.head_person_id) if a.head_person_id else None
                chosen = [head] if head is not None else []
                chosen += [p for p in persons if p.agency_code == a.code and p is not head
                           and naming.search_key(p.position).startswith("pho ")]
                leaders[a.code] = chosen
        out: list[export.Entry] = []
        for a in agencies:
            if a.address is None:
                continue
            entry = await self.directory.lookup_address(a.address)
            if entry is None or entry.state is not AddressState.ACTIVE:
                continue
            head = by_id.get(a.head_person_id) if a.head_person_id else None
            out.append(
                export.Entry(
                    kind="agency",
                    address=a.address,
                    name=a.name,
                    agency_code=a.code,
                    agency_name=a.name,
                    parent_code=a.parent_code or "",
                    head=(head.address or "") if head else "",
                )
            )
            for p in leaders.get(a.code, []):
                if p.address is not None and p.address_state is AddressState.ACTIVE:
                    position = p.position or ("Thủ trưởng" if head is not None and p.id == head.id else "")
                    out.append(_person_entry(p, a, position))
        if include_persons:
            for p in persons:
                if p.address is None or p.address_state is not AddressState.ACTIVE:
                    continue
                out.append(_person_entry(p, by_code.get(p.agency_code), p.position))
        return out

    async def export(self, fmt: str, *, include_persons: bool = False, include_heads: bool = False) -> str:
        entries = await self.entries(include_persons=include_persons, include_heads=include_heads)
        return export.render(fmt, entries, self.domain)

    async def reserve_role(self, local: str, *, by: By) -> str:
        """Put a role address (e.g. ``vanthu``) in the namespace."""
        address = self.address(local.strip().lower())
        await self.directory.reserve_address(address, AddressKind.ROLE, by=by)
        return address


def _person_entry(p: Person, agency: Agency | None, position: str) -> export.Entry:
    assert p.address is not None  # noqa: S101 - callers publish addressed persons only
    return export.Entry(
        kind="person",
        address=p.address,
        name=p.full_name,
        agency_code=p.agency_code,
        agency_name=agency.name if agency else "",
        family=p.family,
        middle=p.middle,
        given=p.given,
        position=position,
        phone=p.phone,
    )


def _rights_text(d: Delegation) -> str:
    return (d.rights or "-") + ("+send" if d.may_send else "")


def _delegation_removed(agency: Agency, d: Delegation) -> Change:
    return Change(
        "right.removed", agency.code,
        f"đã thu hồi ủy quyền của {d.address} trên {agency.address} ({_rights_text(d)})",
        f"delegation of {d.address} on {agency.address} revoked ({_rights_text(d)})",
    )

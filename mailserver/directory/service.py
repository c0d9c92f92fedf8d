"""The directory's business rules: issuing, moving and retiring addresses.

Decision 70/2009/QĐ-UBND, as enforced here:

* Điều 4 khoản 2: one personal address per person (``PersonHasMailbox``), built
  by ``naming.local_part``, numbered 2, 3, … on a collision; agency addresses
  are ``<code>@domain``. Role names, agency codes and every address ever issued
  share one namespace, and an address is never issued to anyone else again.
* Điều 5 khoản 1-2 and Điều 7 khoản 1: mailboxes are created with a generated
  initial password that must be changed (``add_person``, ``import_csv``).
* Điều 5 khoản 3: a transfer keeps the address and changes the agency.
* Điều 5 khoản 4: leaving disables the login at once, archives the mail for the
  agency and deletes the mailbox after the grace period; the address stays a
  tombstone.
* Điều 10: the agency mailbox is administered by the head, who may delegate
  (ủy quyền); on a change of head the new head takes over administration and
  content (``handover``).

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
from mailserver.config import Config
from mailserver.directory import export, importer, names, naming
from mailserver.directory.aliases import alias_map
from mailserver.directory.archive import archive_mailbox
from mailserver.directory.importer import CsvRow, RowError
from pki.ca import CertificateAuthority, pki_directory
from storage.api import Account, AccountExists, MailStore, NoSuchAccount
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

__all__ = [
    "DEFAULT_RIGHTS",
    "DirectoryService",
    "ImportFailed",
    "Issued",
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
        for row in rows:
            try:
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
            plans.append(Planned(dataclasses.replace(row, agency_code=code), self.address(local)))
        if errors:
            raise ImportFailed(errors)
        return plans

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

    async def transfer(self, address: str, agency: str, *, by: By) -> Person:
        """Điều 5 khoản 3: same address, new agency."""
        person = await self._person(address)
        if person.status is not PersonStatus.ACTIVE:
            raise DirectoryError(f"{person.address} has left; a transfer needs an active person")
        target = await self._agency(agency)
        if target.code == person.agency_code:
            raise DirectoryError(f"{person.address} is already in {target.code}")
        return await self.directory.transfer(person.id, target.code, by=by)

    def archive_dir(self, agency_code: str) -> Path:
        root = Path(self.config.directory.archive_dir) if self.config.directory.archive_dir else None
        return (root or self.config.data_dir / "archives") / agency_code

    async def offboard(self, address: str, *, by: By, now: datetime | None = None) -> Offboarded:
        """Điều 5 khoản 4: disable the login at once, export all folders to an
        archive for the agency, revoke delegations and headships, keep the mail
        for ``directory.offboard_grace_days``; the person's status becomes left."""
        person = await self._person(address)
        assert person.address is not None  # noqa: S101 - found by address
        if person.address_state is not AddressState.ACTIVE:
            raise DirectoryError(f"{person.address} is already {person.address_state}")
        account = await self.store.get_account(person.address)
        if account is None:
            raise NoSuchEntry(f"no mailbox {person.address}")
        await self.store.set_disabled(account.id, True)
        path, count = await archive_mailbox(self.store, account, self.archive_dir(person.agency_code))
        revoked = await self.directory.revoke_all(account.id, by=by)
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
        await self.directory.mark_left(person.id, by=by)
        # Issue 7: a person who leaves can no longer sign for the province;
        # revocation writes the PKI index only (no passphrase needed).
        CertificateAuthority(pki_directory(self.config.pki, self.config.data_dir), self.config.pki).revoke(
            person.address, "affiliationChanged"
        )
        return Offboarded(person.address, path, count, purge_after, tuple(revoked))

    async def purge(self, *, by: By, now: datetime | None = None, dry_run: bool = False) -> list[str]:
        """Delete the mailboxes whose grace period has passed; their addresses stay
        as retired tombstones and are never issued again (Điều 4 khoản 2)."""
        due = await self.directory.due_for_purge(now or datetime.now(UTC))
        if dry_run:
            return [e.address for e in due]
        for entry in due:
            with contextlib.suppress(NoSuchAccount):
                await self.store.delete_account(entry.address)
            await self.directory.set_address_state(entry.address, AddressState.RETIRED, by=by)
        return [e.address for e in due]

    # -- agencies (Điều 10) ---------------------------------------------------
    async def _active_person(self, address: str) -> Person:
        person = await self._person(address)
        if person.status is not PersonStatus.ACTIVE or person.address_state is not AddressState.ACTIVE:
            raise DirectoryError(f"{person.address} is not an active person")
        return person

    async def set_head(self, code: str, address: str, *, by: By) -> Agency:
        agency = await self._agency(code)
        person = await self._active_person(address)
        return await self.directory.set_head(agency.code, person.id, by=by)

    async def delegate(self, code: str, address: str, rights: str = DEFAULT_RIGHTS, *, by: By) -> Delegation:
        """Điều 10 khoản 1: the head authorises someone to administer the agency mailbox."""
        agency = await self._agency(code)
        target = self._canonical(address)
        if target == agency.address:
            raise DirectoryError("an agency mailbox cannot be delegated to itself")
        account = await self.store.get_account(target)
        if account is None or account.disabled:
            raise NoSuchEntry(f"no active mailbox {target}")
        try:
            letters, may_send = parse_rights(rights)
        except ValueError as exc:
            raise DirectoryError(str(exc)) from None
        return await self.directory.delegate(agency.code, account.id, letters, may_send, by=by)

    async def revoke(self, code: str, address: str, *, by: By) -> None:
        agency = await self._agency(code)
        target = self._canonical(address)
        account = await self.store.get_account(target)
        if account is None or not await self.directory.revoke(agency.code, account.id, by=by):
            raise NoSuchEntry(f"{target} holds no delegation for {agency.code}")

    async def handover(self, code: str, new_head: str, *, by: By) -> Issued:
        """Điều 10 khoản 4: the outgoing head hands administration and all content
        of the agency mailbox to the new head. The new head becomes head (every
        right), the old head keeps nothing, and the agency mailbox gets a new
        initial password (the old head knew the old one) that the new head must
        change (Điều 10 khoản 2)."""
        agency = await self._agency(code)
        person = await self._active_person(new_head)
        if agency.head_person_id == person.id:
            raise DirectoryError(f"{person.address} is already head of {agency.code}")
        old = await self.directory.get_person(agency.head_person_id) if agency.head_person_id else None
        agency = await self.directory.set_head(agency.code, person.id, by=by, action="agency.handover")
        if agency.address is None:
            raise NoSuchEntry(f"{agency.code} has no mailbox")
        from mailserver.directory.passwords import reset_password

        password = await reset_password(
            self.store, self.directory, self.config.accounts, agency.address, by=by
        )
        await self.directory.audit(
            "agency.handover-complete",
            agency.code,
            by=by,
            detail={"old_head": old.address if old else None, "new_head": person.address},
        )
        return Issued(agency.address, password, person=person, agency=agency)

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

"""The directory store: agencies, persons, the address namespace, delegations,
password history and the audit log (interface and value types).

Theory of operation
-------------------
The directory sits beside the ``MailStore`` and shares its database. Mail
accounts stay in the ``accounts`` table; the directory records *who* an address
belongs to. Every address ever issued, personal, agency or role, has one row in
the namespace (``AddressEntry``), whose state only moves forward::

    ACTIVE --offboard--> OFFBOARDED --purge--> RETIRED
      (login)            (login disabled,       (mailbox deleted; the row stays
                          mail kept)             as a tombstone, never re-issued)

The namespace row is written (reserving the address) in the same transaction as
the person or agency it belongs to, before the mail account exists; the caller
then creates the account with ``MailStore.create_account`` and links it with
``link_account``. If that fails, ``discard`` removes the reservation again.

A person has at most one personal address: the namespace row's ``person_id`` is
unique (Decision 70/2009 Điều 4 khoản 2), and so is ``agency_id``.

Rights on agency mailboxes are RFC 4314 letters (``lrswipkxtea``), so the IMAP
layer can answer GETACL/MYRIGHTS and check access from ``mailbox_access`` and
``mailbox_acl``; the right to *send as* the agency address is not an IMAP right
and is kept beside them (``may_send``). The agency head holds every right.

Every mutating method takes ``by`` (who, and on which decision) and writes its
audit entry in the same transaction as the change.

Lifecycle: ``Storage.directory`` (``storage.open_storage``; ``open_directory(store)``
for a store opened alone), used after ``await storage.start()``; it shares the
mail store's database and needs no start or close of its own.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Protocol

from storage.api import MailStore, StoreError

ALL_RIGHTS: Final = "lrswipkxtea"
"""RFC 4314 section 2.1 rights, in the canonical order used for storage."""


def canonical_rights(rights: str) -> str:
    """The rights in canonical order; ValueError for a letter RFC 4314 does not define."""
    unknown = set(rights) - set(ALL_RIGHTS)
    if unknown:
        raise ValueError(f"unknown RFC 4314 rights: {''.join(sorted(unknown))}")
    return "".join(c for c in ALL_RIGHTS if c in rights)


class DirectoryError(StoreError):
    """Base of the directory's refusals (user mistakes, not server faults)."""


class AddressTaken(DirectoryError):  # noqa: N818 - names read like the refusal
    """The address is in the namespace already (maybe as a retired tombstone)."""


class PersonHasMailbox(DirectoryError):  # noqa: N818
    """Decision 70/2009 Điều 4 khoản 2: one personal address per person."""


class NoSuchAgency(DirectoryError):  # noqa: N818
    pass


class AgencyExists(DirectoryError):  # noqa: N818
    pass


class NoSuchPerson(DirectoryError):  # noqa: N818
    pass


class NoSuchEntry(DirectoryError):  # noqa: N818
    """The address is not in the directory."""


class AliasTaken(DirectoryError):  # noqa: N818
    """The name already stands for an agency (as an alias)."""


class PersonStatus(enum.StrEnum):
    ACTIVE = "active"
    LEFT = "left"


class AddressKind(enum.StrEnum):
    PERSONAL = "personal"
    AGENCY = "agency"
    ROLE = "role"


class AddressState(enum.StrEnum):
    ACTIVE = "active"
    OFFBOARDED = "offboarded"
    """Login disabled, mail kept until ``purge_after``."""
    RETIRED = "retired"
    """Mailbox deleted; the address is a tombstone and is never issued again."""


@dataclass(frozen=True, slots=True)
class By:
    """Who makes a change and on which authority (recorded in the audit log)."""

    actor: str
    decision: str = ""
    """Number of the decision the change executes, e.g. ``Số 123/QĐ-UBND``."""


@dataclass(frozen=True, slots=True)
class Agency:
    id: int
    code: str
    name: str
    parent_code: str | None
    head_person_id: int | None
    address: str | None
    """The agency mailbox ``<code>@domain``."""
    account_id: int | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Person:
    id: int
    full_name: str
    """As written, NFC."""
    family: str
    middle: str
    given: str
    agency_code: str
    position: str
    phone: str
    status: PersonStatus
    created_at: datetime
    left_at: datetime | None
    address: str | None = None
    """The personal address, whatever its state, or None."""
    address_state: AddressState | None = None


@dataclass(frozen=True, slots=True)
class NewPerson:
    """A person to insert together with the reservation of their address."""

    full_name: str
    family: str
    middle: str
    given: str
    agency_code: str
    address: str
    position: str = ""
    phone: str = ""
    search_text: str = ""
    """Folded text the search matches (the business layer computes it)."""


@dataclass(frozen=True, slots=True)
class AddressEntry:
    address: str
    kind: AddressKind
    state: AddressState
    person_id: int | None
    agency_id: int | None
    account_id: int | None
    created_at: datetime
    offboarded_at: datetime | None = None
    purge_after: datetime | None = None
    retired_at: datetime | None = None
    archive: str | None = None


@dataclass(frozen=True, slots=True)
class AgencyAlias:
    """Another name of an agency, as documents write it ("Sở TTTT")."""

    agency_code: str
    name: str
    key: str
    """The normalised name the lookups compare (unique)."""
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Delegation:
    agency_code: str
    account_id: int
    address: str
    rights: str
    """RFC 4314 letters, canonical order."""
    may_send: bool
    granted_at: datetime


@dataclass(frozen=True, slots=True)
class MailboxGrant:
    """What one account may do with one agency mailbox (for IMAP ACL, RFC 4314,
    and for submission's sender alignment)."""

    agency_code: str
    mailbox_address: str
    mailbox_account_id: int
    rights: str
    """RFC 4314 letters, canonical order; ``ALL_RIGHTS`` for the head."""
    may_send: bool
    role: str
    """``head`` or ``delegate``."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    """Dotted verb, e.g. ``person.add``, ``agency.handover``, ``password.change``."""
    subject: str
    """Address or agency code the change is about."""
    decision: str
    detail: Mapping[str, object] = field(default_factory=dict)


class DirectoryStore(Protocol):
    """Directory persistence. All methods are coroutines on the store's loop.

    Addresses are compared lower-case. Methods that change something take ``by``
    and record one audit entry per change in the same transaction.
    """

    # -- namespace ------------------------------------------------------------
    async def lookup_address(self, address: str) -> AddressEntry | None:
        """The namespace row of ``address`` in any state (tombstones included)."""
        ...

    async def reserve_address(
        self, address: str, kind: AddressKind, *, by: By, agency_code: str | None = None
    ) -> AddressEntry:
        """Put a role (or pre-existing) address in the namespace. Raises AddressTaken."""
        ...

    async def link_account(self, address: str, account_id: int) -> None: ...

    async def set_address_state(
        self,
        address: str,
        state: AddressState,
        *,
        by: By,
        purge_after: datetime | None = None,
        archive: str | None = None,
        detail: Mapping[str, object] | None = None,
    ) -> AddressEntry:
        """Move an address forward (ACTIVE -> OFFBOARDED -> RETIRED); RETIRED drops
        the account link. Raises NoSuchEntry, or ValueError for a backward move."""
        ...

    async def due_for_purge(self, now: datetime) -> list[AddressEntry]:
        """OFFBOARDED addresses whose ``purge_after`` is not after ``now``."""
        ...

    # -- agencies -------------------------------------------------------------
    async def add_agency(
        self, code: str, name: str, parent_code: str | None, address: str, *, by: By, search_text: str = ""
    ) -> Agency:
        """Insert the agency and reserve its address. Raises AgencyExists,
        NoSuchAgency (parent), AddressTaken."""
        ...

    async def rename_agency(
        self,
        code: str,
        *,
        name: str,
        search_text: str,
        by: By,
        new_code: str | None = None,
        new_address: str | None = None,
        account_id: int | None = None,
        purge_after: datetime | None = None,
    ) -> Agency:
        """Rename the agency (and give it ``new_code``). With ``new_address``
        (linked to ``account_id``) the agency's address row is detached and
        offboarded (``purge_after``) and a new one reserved, in one
        transaction; heads and delegations stay (they belong to the agency).
        Raises NoSuchAgency, AgencyExists, AddressTaken."""
        ...

    async def get_agency(self, code: str) -> Agency | None: ...

    async def list_agencies(self) -> list[Agency]: ...

    async def set_head(
        self, code: str, person_id: int | None, *, by: By, action: str = "agency.set-head"
    ) -> Agency:
        """Make the person head (administrator, Điều 10 khoản 1) of the agency mailbox.
        The previous head keeps no right through headship; a delegation the new
        head held becomes redundant and is removed."""
        ...

    async def delegate(
        self, code: str, account_id: int, rights: str, may_send: bool, *, by: By
    ) -> Delegation:
        """Grant or replace a delegation (Điều 10 khoản 1, ủy quyền)."""
        ...

    async def revoke(self, code: str, account_id: int, *, by: By) -> bool:
        """Remove a delegation; False if there was none."""
        ...

    async def revoke_all(self, account_id: int, *, by: By) -> list[str]:
        """Remove every delegation of the account; the agency codes affected."""
        ...

    async def delegations(self, code: str) -> list[Delegation]: ...

    # -- aliases (other names of agencies) ------------------------------------
    async def add_alias(self, code: str, name: str, key: str, *, by: By) -> AgencyAlias:
        """Record ``name`` (normalised ``key``) as another name of the agency.
        Raises NoSuchAgency, AliasTaken (the key is another alias already)."""
        ...

    async def remove_alias(self, code: str, key: str, *, by: By) -> AgencyAlias | None:
        """Remove the agency's alias with that key; None if it has none."""
        ...

    async def aliases(self, code: str | None = None) -> list[AgencyAlias]:
        """Aliases of one agency, or of all, by agency code then name."""
        ...

    # -- the queries IMAP ACL (RFC 4314) and submission need ------------------
    async def mailbox_access(self, account_id: int) -> list[MailboxGrant]:
        """Every agency mailbox the account may open, with its rights, as head
        or delegate; only ACTIVE agency mailboxes and only while the account's
        own personal address is not offboarded. Sorted by agency code."""
        ...

    async def mailbox_acl(self, mailbox_account_id: int) -> list[tuple[str, str]]:
        """(address, rights) pairs for GETACL of an agency mailbox: the head
        first with every right, then delegates by address. Empty for a mailbox
        that is not an agency's."""
        ...

    # -- persons --------------------------------------------------------------
    async def add_persons(self, people: Sequence[NewPerson], *, by: By) -> list[Person]:
        """Insert persons with their address reservations, all or none.
        Raises NoSuchAgency, AddressTaken."""
        ...

    async def issue_personal_address(self, person_id: int, address: str, *, by: By) -> AddressEntry:
        """Reserve a personal address for an existing person. Raises
        PersonHasMailbox if they have one in any state (Điều 4 khoản 2)."""
        ...

    async def discard(self, addresses: Sequence[str], *, by: By, reason: str) -> None:
        """Undo reservations whose account could not be created: removes the
        namespace rows and the persons or agencies created with them (no
        tombstone is left, since the address was never issued); the audit log
        keeps both the reservation and its undoing."""
        ...

    async def get_person(self, person_id: int) -> Person | None: ...

    async def person_by_address(self, address: str) -> Person | None: ...

    async def list_persons(
        self, *, agency_code: str | None = None, include_left: bool = False
    ) -> list[Person]: ...

    async def search(self, tokens: Sequence[str]) -> tuple[list[Agency], list[Person]]:
        """Agencies and persons whose folded search text contains every token."""
        ...

    async def transfer(self, person_id: int, agency_code: str, *, by: By) -> Person:
        """Move a person to another agency (Điều 5 khoản 3); the address stays."""
        ...

    async def mark_left(self, person_id: int, *, by: By) -> Person:
        """Person status LEFT (Điều 5 khoản 4); removes them as head where they are."""
        ...

    # -- passwords ------------------------------------------------------------
    async def add_password_hash(self, account_id: int, password_hash: str, *, keep: int) -> None:
        """Remember a password hash, keeping only the newest ``keep``."""
        ...

    async def password_hashes(self, account_id: int, limit: int) -> list[str]:
        """The newest ``limit`` remembered hashes, newest first."""
        ...

    async def record_notice(self, account_id: int, kind: str, key: datetime) -> bool:
        """Remember that the notice ``kind`` for ``key`` (e.g. the expiry time) was
        sent; False if it already was (so a notice goes out once)."""
        ...

    # -- audit ----------------------------------------------------------------
    async def audit(
        self, action: str, subject: str, *, by: By, detail: Mapping[str, object] | None = None
    ) -> None:
        """Record a change made elsewhere (accounts, passwords)."""
        ...

    async def audit_log(
        self, *, since: datetime | None = None, subject: str | None = None, limit: int | None = None
    ) -> list[AuditEntry]:
        """Entries oldest first."""
        ...


def open_directory(store: MailStore) -> DirectoryStore:
    """The directory on the same database as ``store`` (``storage.storage_of``)."""
    from storage import storage_of

    return storage_of(store).directory

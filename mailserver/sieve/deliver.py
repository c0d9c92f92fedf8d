"""Sieve at final delivery: decide per local recipient, then carry out.

Theory of operation (called by ``mailserver.smtp.delivery.Inbound.deliver``
after the content policy, so MX mail, submission between colleagues and
group mail all pass here):

1. ``decide``: one ``MessageView`` for the message, then for every local
   mailbox the engine's outcome (``engine.SieveEngine``). A script error
   becomes the implicit keep plus a notice to its owner (RFC 5228 section
   2.10.6: nothing is lost). A redirect that would loop (the message carries
   a ``Delivered-To`` naming this mailbox: it was redirected or forwarded from
   here before) or that has nowhere to go is dropped and the message kept.
2. ``rejected_by_all``: when every recipient's script refused the message
   (reject/ereject, RFC 5429) and there is nobody else, the SMTP reply is
   550 5.7.1 and nothing is stored (section 2.1.1: refuse in protocol).
3. ``store``: recipients whose outcome is the plain keep go to the store in
   one ``deliver`` call (durable for all at once, the spam verdict's Junk
   folder honoured); the others get one ``append`` per folder with their
   flags (RFC 5232), creating folders for ``:create`` (RFC 5490). Every copy is
   durable before the 250.
4. ``after``: redirects (remote ones through the outbound queue with an SRS
   sender and DKIM, local ones delivered like mail arriving for the target:
   its own script runs (steps 1-4 again), with a ``Delivered-To`` naming the
   redirecting mailbox: the loop check of step 1 ends any loop),
   vacation replies (``vacation.py``), refusal notices to the sender for a
   reject among other recipients, and the error notices.
"""

from __future__ import annotations

import asyncio
import logging
import time
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, make_msgid
from functools import partial
from typing import TYPE_CHECKING, Final
from weakref import WeakKeyDictionary

from mailserver.sieve.engine import SieveEngine, SieveFailure
from mailserver.sieve.interpreter import INBOX, FileInto, Outcome
from mailserver.sieve.message import MessageView
from mailserver.sieve.vacation import build_reply, should_reply
from storage.api import DeliveryResult, FolderExists, MailStore, NoSuchFolder, Uid
from storage.sieve import sieve_scripts_for
from storage.sievestate import MemorySieveState, SieveState, sieve_state_for

if TYPE_CHECKING:
    from mailserver.config import Config
    from mailserver.directory.routing import Router
    from mailserver.smtp.queue import Outbound
    from mailserver.smtp.srs import Srs

__all__ = ["Decision", "Filer", "SieveDelivery", "file_copies"]

Target = tuple[str, tuple[str, ...], bool]
"""(folder, flags, create) of one copy to file."""
Filer = Callable[
    [int, list[Target], bytes, datetime, bool], Awaitable[tuple[list[tuple[int, int, Uid]], str | None]]
]

log = logging.getLogger(__name__)

JUNK: Final = "\\Junk"
NOTICE_INTERVAL: Final = 3600.0
"""Seconds between two error notices about the same failure to one owner."""
PURGE_INTERVAL: Final = 3600.0
"""Seconds between two deletions of expired vacation and duplicate entries."""


class _DeliveredTo:
    """The message's Delivered-To addresses (lower-case), read only when a
    redirect needs the loop check: most deliveries run no script at all."""

    __slots__ = ("_found", "_view")

    def __init__(self, view: MessageView) -> None:
        self._view = view
        self._found: set[str] | None = None

    def addresses(self) -> set[str]:
        if self._found is None:
            self._found = {v.strip().lower() for v in self._view.raw("Delivered-To")}
        return self._found


@dataclass(slots=True)
class Decision:
    account_id: int
    address: str
    outcome: Outcome | None
    """None: no script applies (plain delivery)."""
    failure: str | None = None

    @property
    def plain(self) -> bool:
        o = self.outcome
        if o is None:
            return True
        return (
            len(o.keep) == 1
            and o.keep[0] == FileInto(INBOX, ())
            and not o.redirects
            and o.vacation is None
            and o.reject is None
        )


def _ascii(text: str) -> str:
    """SMTP reply text is ASCII (RFC 5321 section 4.2): Vietnamese without its marks."""
    text = text.replace("đ", "d").replace("Đ", "D")
    plain = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return " ".join("".join(c if 32 <= ord(c) < 127 else "?" for c in plain).split())[:200]


class SieveDelivery:
    def __init__(
        self,
        config: Config,
        store: MailStore,
        engine: SieveEngine,
        *,
        outbound: Outbound | None,
        router: Router | None,
        srs: Srs | None,
        local_domain: Callable[[str], str | None],
    ) -> None:
        self._config = config
        self._store = store
        self.engine = engine
        self._outbound = outbound
        self._router = router
        self._srs = srs
        self._local_domain = local_domain
        self._notified: dict[tuple[str, str], float] = {}
        self._purged = time.monotonic()
        main = getattr(store, "sieve_main", None)
        self.filer: Filer = main.file_copies if main is not None else partial(file_copies, store)
        """Where filed copies are written: here, or by the main process for an
        SMTP worker process on SQLite (one writer; mailserver/smtp/workers.py)."""

    @classmethod
    def build(
        cls,
        config: Config,
        store: MailStore,
        *,
        outbound: Outbound | None,
        router: Router | None = None,
        srs: Srs | None = None,
        local_domain: Callable[[str], str | None] | None = None,
    ) -> SieveDelivery | None:
        """None when ``sieve.enabled`` is off. Without a router, a local redirect
        goes to the account of that exact address; without SRS (or an outbound
        queue) a redirect to another domain is not done and the message kept."""
        settings = config.sieve
        if not settings.enabled:
            return None
        try:
            scripts = sieve_scripts_for(store)
        except TypeError:
            scripts = None  # a store without SQL (unit tests): operator scripts only
        global_dir = config.data_dir / "sieve-global"
        if settings.global_dir:
            from pathlib import Path

            global_dir = Path(settings.global_dir)
        state: SieveState
        main = getattr(store, "sieve_main", None)
        try:
            state = main if main is not None else sieve_state_for(store)
        except TypeError:
            state = MemorySieveState()
        engine = SieveEngine(settings, scripts, state, global_dir=global_dir)
        if local_domain is None:

            def local_domain(domain: str) -> str | None:
                return domain.lower() if config.is_local_domain(domain) else None

        return cls(
            config, store, engine, outbound=outbound, router=router, srs=srs, local_domain=local_domain
        )

    # -- 1. decide ---------------------------------------------------------------
    async def decide(
        self, account_ids: Sequence[int], addresses: Sequence[str], message: bytes, *, sender: str, sid: str
    ) -> tuple[list[Decision], MessageView]:
        view = MessageView(message)
        delivered_to = _DeliveredTo(view)
        pairs = list(zip(account_ids, addresses, strict=True))
        if len(pairs) == 1:
            decisions = [await self._decide_one(*pairs[0], view, delivered_to, sender, sid)]
        else:
            # Recipients of a group or alias: their script lookups overlap (the
            # store's reader threads) instead of queueing one after another.
            decisions = list(
                await asyncio.gather(
                    *(self._decide_one(a, addr, view, delivered_to, sender, sid) for a, addr in pairs)
                )
            )
        return decisions, view

    async def _decide_one(
        self,
        account_id: int,
        address: str,
        view: MessageView,
        delivered_to: _DeliveredTo,
        sender: str,
        sid: str,
    ) -> Decision:
        decision = Decision(account_id, address, None)

        async def names() -> list[str]:
            return [f.name for f in await self._store.list_folders(account_id)]

        try:
            decision.outcome = await self.engine.evaluate(
                address, view, sender=sender, recipient=address, folder_names=names
            )
        except SieveFailure as exc:
            log.warning("sieve %s: %s: %s; message kept in INBOX", sid, address, exc)
            decision.failure = str(exc)
            return decision
        except Exception as exc:  # noqa: BLE001 - a filter fault must never lose or refuse mail
            log.exception("sieve %s: %s: internal error; message kept in INBOX", sid, address)
            decision.failure = f"internal error: {type(exc).__name__}"
            return decision
        outcome = decision.outcome
        if outcome is not None and outcome.redirects:
            self._check_redirects(decision, outcome, delivered_to, sid)
        return decision

    def _check_redirects(
        self, decision: Decision, outcome: Outcome, found: _DeliveredTo, sid: str
    ) -> None:
        delivered_to = found.addresses()
        kept: list[str] = []
        for target in outcome.redirects:
            domain = target.rpartition("@")[2]
            if decision.address.lower() in delivered_to or len(delivered_to) >= self._config.smtp.max_hops:
                log.info(
                    "sieve %s: %s: redirect to %s dropped: loop (Delivered-To)", sid, decision.address, target
                )
            elif self._local_domain(domain) is None and (self._outbound is None or self._srs is None):
                log.warning("sieve %s: %s: redirect to %s: no outbound queue", sid, decision.address, target)
            elif target.lower() == decision.address.lower():
                log.info("sieve %s: %s: redirect to itself ignored", sid, decision.address)
            else:
                kept.append(target)
                continue
            decision.failure = decision.failure or f"redirect to {target} not done (loop or no route)"
        outcome.redirects = kept
        if not kept and not outcome.keep and not outcome.discarded and outcome.reject is None:
            outcome.keep.append(FileInto(INBOX, ()))  # never lose it (section 2.10.6)

    # -- 2. refusal in protocol ------------------------------------------------------
    @staticmethod
    def rejected_by_all(decisions: Sequence[Decision]) -> str | None:
        """The reason when every recipient refused the message, else None."""
        reasons = [d.outcome.reject for d in decisions if d.outcome is not None]
        if not decisions or len(reasons) != len(decisions) or any(r is None for r in reasons):
            return None
        return _ascii(str(reasons[0])) or "Rejected"

    # -- 3. store ----------------------------------------------------------------
    async def store(
        self, decisions: Sequence[Decision], message: bytes, *, when: datetime, junk: bool
    ) -> DeliveryResult:
        plain = [d.account_id for d in decisions if d.plain]
        placed: list[tuple[int, int, Uid]] = []
        if plain:
            result = await self._store.deliver(
                plain, message, internal_date=when, special_use=JUNK if junk else None
            )
            placed.extend(result.placed)
        for decision in decisions:
            if decision.plain or decision.outcome is None:
                continue
            targets = [(t.folder, t.flags, t.create) for t in decision.outcome.keep]
            got, failure = await self.filer(decision.account_id, targets, message, when, junk)
            placed.extend(got)
            if failure is not None:
                log.info("sieve: %s: %s", decision.address, failure)
                decision.failure = decision.failure or failure
        return DeliveryResult(placed=tuple(placed))

    # -- 4. after storing ----------------------------------------------------------
    async def after(
        self,
        decisions: Sequence[Decision],
        view: MessageView,
        relay: bytes,
        *,
        sender: str,
        sid: str,
        seal: Callable[[bytes], Awaitable[bytes]] | None = None,
    ) -> None:
        """Redirects, vacation replies, refusal and error notices. ``relay`` is
        the message without Return-Path (final delivery adds it). Faults are
        logged, never raised: the message is stored already."""
        now = datetime.now(UTC)
        if time.monotonic() - self._purged > PURGE_INTERVAL and any(d.outcome for d in decisions):
            self._purged = time.monotonic()
            try:
                gone = await self.engine.state.purge(now)
                log.debug("sieve: %d expired vacation/duplicate entries purged", gone)
            except Exception:  # noqa: BLE001 - housekeeping; the next interval tries again
                log.exception("sieve: purging expired state failed")
        for decision in decisions:
            outcome = decision.outcome
            try:
                if outcome is not None:
                    for target in outcome.redirects:
                        await self._redirect(decision.address, target, relay, sender, seal, sid=sid)
                    if outcome.vacation is not None:
                        await self._vacation(decision, outcome, view, sender, now, sid)
                    if outcome.reject is not None and sender:
                        await self._refusal_notice(decision, outcome.reject, view, sender)
                if decision.failure:
                    await self._error_notice(decision)
            except Exception:  # noqa: BLE001 - the message is stored; a side effect failed
                log.exception("sieve %s: %s: action after delivery failed", sid, decision.address)

    async def _redirect(
        self,
        owner: str,
        target: str,
        relay: bytes,
        sender: str,
        seal: Callable[[bytes], Awaitable[bytes]] | None = None,
        *,
        sid: str = "",
    ) -> None:
        data = f"Delivered-To: {owner}\r\n".encode() + relay
        domain = target.rpartition("@")[2]
        ours = self._local_domain(domain)
        if ours is None:
            if self._outbound is None or self._srs is None:
                return
            if sender and self._local_domain(sender.rpartition("@")[2]) is None:
                sender = self._srs.forward(sender)  # SPF passes downstream (srs.py)
            # ARC (RFC 8617) as for forwards, when a sealer is configured: the
            # next hop can trust our authentication results despite the change of path.
            sealed = await seal(data) if seal is not None else data
            await self._outbound.enqueue(sender, [target], sealed, origin="forward")
            return
        if self._router is None:
            account = await self._store.get_account(target)
            if account is not None and not account.disabled:
                await self._deliver_local([account.id], [account.address], data, sender, seal, sid)
            else:
                log.warning("sieve: redirect of %s to %s: no such local mailbox", owner, target)
            return
        res = await self._router.resolve(target)
        ids = [a.id for a in res.accounts] if res is not None else []
        if ids and res is not None:
            await self._deliver_local(ids, [a.address for a in res.accounts], data, sender, seal, sid)
        if res is not None and self._outbound is not None and (res.remote or res.forwards):
            outside = list(res.remote) + [t for _, t in res.forwards]
            await self._outbound.enqueue(sender, outside, data, origin="forward")
        if not ids and (res is None or not (res.remote or res.forwards)):
            log.warning("sieve: redirect of %s to %s: no such local address", owner, target)

    async def _deliver_local(
        self,
        account_ids: Sequence[int],
        addresses: Sequence[str],
        data: bytes,
        sender: str,
        seal: Callable[[bytes], Awaitable[bytes]] | None,
        sid: str,
    ) -> None:
        """A local redirect's target gets the message as if it had arrived for it:
        its own script decides (the Delivered-To lines stop loops); a reject by
        that script is answered to the sender with a notice (the message was
        accepted already)."""
        decisions, view = await self.decide(account_ids, addresses, data, sender=sender, sid=sid)
        stored = f"Return-Path: <{sender}>\r\n".encode() + data
        await self.store(decisions, stored, when=datetime.now(UTC), junk=False)
        await self.after(decisions, view, data, sender=sender, sid=sid, seal=seal)

    async def _vacation(
        self, decision: Decision, outcome: Outcome, view: MessageView, sender: str, now: datetime, sid: str
    ) -> None:
        vacation = outcome.vacation
        assert vacation is not None  # noqa: S101 - checked by the caller
        why = should_reply(view, sender, decision.address, decision.address, vacation)
        state = self.engine.state
        if (
            why is None
            and vacation.seconds
            and await state.vacation_recent(decision.address, vacation.handle, sender, now)
        ):
            why = "replied within the period"
        if why is not None:
            log.info("sieve %s: %s: no vacation reply to <%s>: %s", sid, decision.address, sender, why)
            return
        reply = build_reply(
            view,
            vacation,
            sender=sender,
            owner=decision.address,
            hostname=self._config.server.hostname,
            now=now,
        )
        await self._send_notice(sender, reply)
        if vacation.seconds:
            await state.vacation_sent(
                decision.address, vacation.handle, sender, now + timedelta(seconds=vacation.seconds)
            )
        log.info("sieve %s: %s: vacation reply to <%s>", sid, decision.address, sender)

    async def _send_notice(self, to: str, data: bytes) -> None:
        """Null reverse-path; local addresses straight to INBOX, others queued and signed."""
        from mailserver.smtp.queue import deliver_notice

        if self._outbound is None:
            account = await self._store.get_account(to)
            if account is not None:
                await self._store.deliver([account.id], b"Return-Path: <>\r\n" + data, quota=False)
            return
        await deliver_notice(self._config, self._store, self._outbound, to, data)

    async def _refusal_notice(self, decision: Decision, reason: str, view: MessageView, sender: str) -> None:
        # RFC 5429 section 2.1.2: a refusal after acceptance goes back to the sender.
        subject = view.header("Subject")[0] if view.header("Subject") else ""
        body = (
            f"Thư gửi {decision.address} đã bị bộ lọc của người nhận từ chối.\r\n"
            f"Your message to {decision.address} was refused by the recipient's filter.\r\n\r\n"
            f"Lý do / Reason: {reason}\r\n\r\nTiêu đề / Subject: {subject}\r\n"
        )
        await self._send_notice(
            sender,
            self._text_message(
                decision.address,
                sender,
                "Thư bị từ chối / Message refused",
                body,
                auto="auto-replied (rejected)",
            ),
        )

    async def _error_notice(self, decision: Decision) -> None:
        key = (decision.address, decision.failure or "")
        last = self._notified.get(key)
        if last is not None and time.monotonic() - last < NOTICE_INTERVAL:
            return
        self._notified[key] = time.monotonic()
        body = (
            "Bộ lọc thư (Sieve) của hộp thư này gặp lỗi; thư vừa đến đã được giữ trong Hộp thư đến.\r\n"
            "Your mail filter (Sieve) failed; the message that just arrived was kept in your INBOX.\r\n\r\n"
            f"Lỗi / Error: {decision.failure}\r\n"
        )
        notice = self._text_message(
            f"postmaster@{self._config.server.domains[0]}" if self._config.server.domains else "postmaster",
            decision.address,
            "Lỗi bộ lọc thư / Mail filter error",
            body,
            auto="auto-generated",
        )
        await self._store.deliver([decision.account_id], b"Return-Path: <>\r\n" + notice, quota=False)

    def _text_message(self, sender: str, to: str, subject: str, body: str, *, auto: str) -> bytes:
        from email.header import Header

        encoded = Header(subject, "utf-8").encode()
        lines = [
            f"From: {sender}",
            f"To: {to}",
            f"Subject: {encoded}",
            f"Date: {format_datetime(datetime.now(UTC))}",
            f"Message-ID: {make_msgid(domain=self._config.server.hostname)}",
            f"Auto-Submitted: {auto}",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: 8bit",
        ]
        return ("\r\n".join(lines) + "\r\n\r\n" + body).encode("utf-8")


async def file_copies(
    store: MailStore, account_id: int, targets: list[Target], data: bytes, when: datetime, junk: bool
) -> tuple[list[tuple[int, int, Uid]], str | None]:
    """Append ``data`` to each target folder of one account with its flags
    (durable on return), creating folders for ``:create`` (RFC 5490 section 3).
    A folder that cannot be used is replaced by INBOX (nothing lost) and named
    in the returned failure text. The implicit keep of a message tagged spam
    goes to the folder with ``\\Junk``."""
    placed: list[tuple[int, int, Uid]] = []
    failure: str | None = None
    for name, flags, create in targets:
        folder_id: int | None = None
        if name == INBOX and junk:
            folder_id = next(
                (f.id for f in await store.list_folders(account_id) if f.special_use == JUNK), None
            )
        if folder_id is None:
            folder_id, why = await _target_folder(store, account_id, name, create)
            failure = failure or why
        try:
            info = await store.append(account_id, folder_id, data, flags=flags, internal_date=when)
        except NoSuchFolder:  # deleted meanwhile (IMAP DELETE): INBOX instead, nothing lost
            failure = failure or f'fileinto "{name}": thư mục vừa bị xóa / folder deleted meanwhile'
            folder_id = (await store.get_folder(account_id, INBOX)).id
            info = await store.append(account_id, folder_id, data, flags=flags, internal_date=when)
        placed.append((account_id, folder_id, info.uid))
    return placed, failure


_FOLDER_LOCKS: WeakKeyDictionary[MailStore, dict[tuple[int, str], asyncio.Lock]] = WeakKeyDictionary()


async def _target_folder(
    store: MailStore, account_id: int, name: str, create: bool
) -> tuple[int, str | None]:
    """The folder's id (INBOX when it cannot be used, with the reason).

    An existing folder is looked up without waiting for anyone: concurrent
    deliveries into one folder (every message of a rule) must not queue behind
    each other's look-ups. A delivery that sees the row of a folder being made
    cannot append into a half-made directory: the Maildir makes a folder's
    directories under a lock and durably before any write uses them
    (``storage.maildir.Maildir._make_folder``). Creation is one at a time per
    folder, so concurrent ``:create`` of a new folder makes it once."""
    try:
        return (await store.get_folder(account_id, name)).id, None
    except NoSuchFolder:
        pass
    locks = _FOLDER_LOCKS.setdefault(store, {})
    async with locks.setdefault((account_id, name), asyncio.Lock()):
        try:
            return (await store.get_folder(account_id, name)).id, None
        except NoSuchFolder:
            pass
        if create:
            try:
                return (await store.create_folder(account_id, name)).id, None
            except FolderExists:
                return (await store.get_folder(account_id, name)).id, None
            except Exception as exc:  # noqa: BLE001 - an unusable name: INBOX instead
                why = f'fileinto :create "{name}": {exc}'
        else:
            why = f'fileinto "{name}": thư mục không có / no such folder (use :create, RFC 5490)'
    return (await store.get_folder(account_id, INBOX)).id, why

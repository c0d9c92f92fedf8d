"""Shared agency mailboxes over real IMAP (RFC 4314 ACL, RFC 2342 NAMESPACE) and
the directory behind them (Decision 70/2009 Điều 10): a delegate reads the agency
mailbox under ``Shared/<code>/`` and sends as the agency address; the head
administers delegates with SETACL/DELETEACL; revocation, handover and
offboarding reach sessions that are already open at their next command; moving
mail into Junk trains the spam filter."""

from __future__ import annotations

import asyncio
import imaplib
import re
import smtplib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from mailserver.app import App
from mailserver.directory.passwords import change_password
from mailserver.directory.service import DirectoryService
from mailserver.imap.server import ImapService
from policy.checks.spam import SpamCheck
from storage.directory import By, open_directory
from tests.conftest import RunningServer, eventually, make_config

BY = By("tccb", "Số 77/QĐ-UBND")
PASSWORD = "Hop-thu-cong-vu-2026"
AGENCY = "stttt@dongnai.gov.vn"
OUTSIDER = "khach@dongnai.gov.vn"


@dataclass
class Setup:
    server: RunningServer
    svc: DirectoryService
    head: str
    delegate: str

    @property
    def imap_port(self) -> int:
        return self.server.port("imap")


@pytest.fixture
async def acl_server(tmp_path: Path, backend_url: str) -> AsyncIterator[RunningServer]:
    """A server whose sessions re-read rights on every command (``access_cache = 0``),
    so revocations show at the very next command without waiting."""
    config = make_config(tmp_path / "data", backend_url)
    config = replace(config, imap=replace(config.imap, access_cache=0.0))
    async with App(config) as app:
        yield RunningServer(app, config)


async def person(svc: DirectoryService, server: RunningServer, name: str) -> str:
    issued = await svc.add_person(name, "stttt", by=BY)
    await change_password(
        server.app.store, svc.directory, server.config.accounts, issued.address, issued.password, PASSWORD
    )
    return issued.address


@pytest.fixture
async def setup(acl_server: RunningServer) -> Setup:
    store = acl_server.app.store
    svc = DirectoryService(store, open_directory(store), acl_server.config)
    await svc.add_agency("stttt", "Sở Thông tin và Truyền thông", None, by=BY)
    head = await person(svc, acl_server, "Nguyễn Văn An")
    delegate = await person(svc, acl_server, "Trần Thị Bình")
    await svc.set_head("stttt", head, by=BY)
    await svc.delegate("stttt", delegate, by=BY)  # read,write,send
    await acl_server.add_account(OUTSIDER, PASSWORD)
    return Setup(acl_server, svc, head, delegate)


def login(port: int, user: str) -> imaplib.IMAP4:
    m = imaplib.IMAP4("127.0.0.1", port)
    try:
        m.login(user, PASSWORD)
    except BaseException:
        m.shutdown()
        raise
    return m


def listrights(m: imaplib.IMAP4, mailbox: str, identifier: str) -> tuple[str, list[bytes | None]]:
    """LISTRIGHTS (RFC 4314 section 3.4), which imaplib has no method for."""
    typ, data = m.xatom("LISTRIGHTS", mailbox, identifier)
    return m._untagged_response(typ, data, "LISTRIGHTS")  # type: ignore[no-any-return]


async def call(fn: Callable[..., tuple[str, Sequence[object]]], *args: object) -> tuple[str, bytes]:
    """Run an imaplib command in a thread: its status and first data item."""
    typ, data = await asyncio.to_thread(fn, *args)
    first = data[0] if data else b""
    return typ, first if isinstance(first, bytes) else b""


def send(port: int, to: str, subject: str) -> None:
    with smtplib.SMTP("127.0.0.1", port) as s:
        s.sendmail(
            "congdan@example.org",
            [to],
            f"From: congdan@example.org\r\nTo: {to}\r\nSubject: {subject}\r\n\r\nXin chao.\r\n".encode(),
        )


def listed(m: imaplib.IMAP4, pattern: str = "*") -> dict[str, str]:
    typ, data = m.list('""', pattern)
    assert typ == "OK"
    out = {}
    for line in data:
        assert isinstance(line, bytes)
        match = re.fullmatch(rb'\((.*?)\) "/" "?(.*?)"?', line)
        assert match, line
        out[match[2].decode()] = match[1].decode()
    return out


async def test_delegate_reads_and_sends_as_agency(setup: Setup) -> None:
    server = setup.server
    await asyncio.to_thread(send, server.port("smtp"), AGENCY, "Cong van den so 1")

    def read_shared() -> tuple[dict[str, str], bytes, bytes, bytes]:
        m = login(setup.imap_port, setup.delegate)
        try:
            names = listed(m)
            typ, ns = m.namespace()
            assert typ == "OK"
            typ, _ = m.select('"Shared/stttt/INBOX"')
            assert typ == "OK"
            typ, data = m.fetch("1", "(BODY.PEEK[])")
            assert typ == "OK" and isinstance(data[0], tuple)
            typ, rights = m.myrights('"Shared/stttt/INBOX"')
            assert typ == "OK"
            typ, acl = m.getacl('"Shared/stttt/INBOX"')  # needs the a right: refused
            assert typ == "NO"
            return names, ns[0] or b"", data[0][1], (rights[0] or b"") + b" | " + (acl[0] or b"")
        finally:
            m.logout()

    names, ns, body, rights = await asyncio.to_thread(read_shared)
    assert b"Subject: Cong van den so 1" in body
    assert ns == b'(("" "/")) NIL (("Shared/" "/"))'
    assert "\\Noselect" in names["Shared"] and "\\HasChildren" in names["Shared"]
    assert "\\Noselect" in names["Shared/stttt"]
    assert {"Shared/stttt/INBOX", "Shared/stttt/Sent", "Shared/stttt/Junk", "INBOX"} <= set(names)
    assert "\\Junk" not in names["Shared/stttt/Junk"]  # the agency's special use is not the user's
    assert rights.startswith(b"Shared/stttt/INBOX lrswipte |") and b"[NOPERM]" in rights

    # Sending as the agency address: allowed for a delegate with the send right.
    def submit() -> None:
        with smtplib.SMTP("127.0.0.1", server.port("submission")) as s:
            s.login(setup.delegate, PASSWORD)
            s.sendmail(
                AGENCY,
                [OUTSIDER],
                f"From: {AGENCY}\r\nTo: {OUTSIDER}\r\nSubject: Cong van di so 7\r\n\r\nKinh gui.\r\n"
                .encode(),
            )

    await asyncio.to_thread(submit)
    store = server.app.store
    outsider = await store.get_account(OUTSIDER)
    assert outsider is not None

    async def arrived() -> bool:
        inbox = await store.get_folder(outsider.id, "INBOX")
        return (await store.folder_status(outsider.id, inbox.id)).messages == 1

    await eventually(arrived, "mail sent as the agency reaches the recipient")

    # The delegate may write in the shared folders: flags, APPEND, COPY out to a
    # personal folder and MOVE back (two accounts, so the session copies itself).
    def write_shared() -> tuple[bytes, int, int]:
        with IMAPClient("127.0.0.1", port=setup.imap_port, ssl=False) as c:
            c.login(setup.delegate, PASSWORD)
            c.select_folder("Shared/stttt/INBOX")
            c.add_flags([1], [b"\\Flagged"])
            c.append("Shared/stttt/Drafts", b"Subject: nhap\r\n\r\nDu thao.\r\n")
            c.copy([1], "INBOX")  # shared -> personal
            c.select_folder("INBOX")
            c.move([1], "Shared/stttt/Archive")  # personal -> shared
            drafts = c.folder_status("Shared/stttt/Drafts", ["MESSAGES"])[b"MESSAGES"]
            archived = c.folder_status("Shared/stttt/Archive", ["MESSAGES"])[b"MESSAGES"]
            c.select_folder("Shared/stttt/Archive")
            (item,) = c.fetch([1], ["BODY.PEEK[]", "FLAGS"]).values()
            return item[b"BODY[]"] + b" ".join(item[b"FLAGS"]), drafts, archived

    moved, drafts, archived = await asyncio.to_thread(write_shared)
    assert b"Subject: Cong van den so 1" in moved and b"\\Flagged" in moved
    assert (drafts, archived) == (1, 1)
    mover = await setup.server.app.store.get_account(setup.delegate)
    assert mover is not None  # its MOVE out of INBOX deleted nothing (no vault entry)
    assert await setup.server.app.store.deleted_messages(mover.id) == []


async def test_acl_commands_revoke_and_handover(setup: Setup) -> None:
    port = setup.imap_port
    head = await asyncio.to_thread(login, port, setup.head)
    outsider = await asyncio.to_thread(login, port, OUTSIDER)
    old_delegate = await asyncio.to_thread(IMAPClient, "127.0.0.1", port=port, ssl=False)
    try:
        # A non-delegate sees nothing under Shared/ and cannot open it.
        assert not any(n.startswith("Shared") for n in await asyncio.to_thread(listed, outsider))
        typ, data = await call(outsider.select, '"Shared/stttt/INBOX"')
        assert typ == "NO" and b"[NONEXISTENT]" in data
        typ, data = await call(outsider.select, '"Shared/stttt/../../INBOX"')
        assert typ == "NO" and b"[NONEXISTENT]" in data

        # The head holds every right and sees the delegate in GETACL.
        typ, data = await call(head.myrights, '"Shared/stttt/INBOX"')
        assert data == b"Shared/stttt/INBOX lrswipkxtea"
        typ, data = await call(head.getacl, '"Shared/stttt/INBOX"')
        assert typ == "OK"
        assert data == (
            f"Shared/stttt/INBOX {AGENCY} lrswipkxtea {setup.head} lrswipkxtea "
            f"{setup.delegate} lrswipte".encode()
        )
        typ, data = await call(listrights, head, "Shared/stttt/INBOX", OUTSIDER)
        assert data == f'Shared/stttt/INBOX {OUTSIDER} "" l r s w i p k x t e a'.encode()

        # SETACL grants the outsider read-only access, audited with the head as actor.
        typ, data = await call(head.setacl, '"Shared/stttt/INBOX"', OUTSIDER, "lr")
        assert typ == "OK", data
        typ, data = await call(outsider.myrights, '"Shared/stttt/INBOX"')
        assert data == b"Shared/stttt/INBOX lr"
        # Without s, w, t or e the mailbox opens read-only (imaplib raises for that).
        with pytest.raises(imaplib.IMAP4.readonly):
            await asyncio.to_thread(outsider.select, "Shared/stttt/INBOX")
        typ, data = await call(outsider.select, "Shared/stttt/INBOX", True)
        assert typ == "OK" and data == b"0"
        typ, data = await call(outsider.append, "Shared/stttt/INBOX", "", None, b"X: 1\r\n\r\nx")
        assert typ == "NO" and b"[NOPERM]" in data
        typ, data = await call(outsider.setacl, '"Shared/stttt/INBOX"', OUTSIDER, "+a")
        assert typ == "NO" and b"[NOPERM]" in data
        typ, data = await call(head.setacl, '"Shared/stttt/INBOX"', OUTSIDER, "+i")
        typ, data = await call(head.getacl, '"Shared/stttt/INBOX"')
        assert f"{OUTSIDER} lri".encode() in data
        typ, data = await call(head.setacl, '"Shared/stttt/INBOX"', setup.head, "lr")
        assert typ == "NO" and b"[CANNOT]" in data
        typ, data = await call(head.deleteacl, '"Shared/stttt/INBOX"', OUTSIDER)
        assert typ == "OK"
        # The outsider's open session loses the mailbox at its next command.
        typ, data = await call(outsider.noop)
        assert typ == "NO" and b"[NOPERM]" in data
        typ, data = await call(outsider.select, '"Shared/stttt/INBOX"')
        assert typ == "NO"
        log = await setup.svc.directory.audit_log(subject="stttt")
        assert [(e.action, e.actor) for e in log if e.actor == setup.head] == [
            ("agency.delegate", setup.head),
            ("agency.delegate", setup.head),
            ("agency.revoke", setup.head),
        ]

        # Revoke through the directory: an open session with the folder selected
        # is refused at its next command, and LIST no longer shows it.
        await asyncio.to_thread(old_delegate.login, setup.delegate, PASSWORD)
        await asyncio.to_thread(old_delegate.select_folder, "Shared/stttt/INBOX")
        await setup.svc.revoke("stttt", setup.delegate, by=BY)
        with pytest.raises(IMAPClientError, match="NOPERM"):
            await asyncio.to_thread(old_delegate.search, ["ALL"])
        folders = await asyncio.to_thread(old_delegate.list_folders)
        assert not any(name.startswith("Shared") for _, _, name in folders)
        with pytest.raises(IMAPClientError, match="NONEXISTENT"):
            await asyncio.to_thread(old_delegate.select_folder, "Shared/stttt/INBOX")

        # Handover to the former delegate: the old head's open session loses access.
        await asyncio.to_thread(head.select, '"Shared/stttt/INBOX"')
        await setup.svc.handover("stttt", setup.delegate, by=BY)
        typ, data = await call(head.noop)
        assert typ == "NO" and b"[NOPERM]" in data
        typ, data = await call(head.myrights, '"Shared/stttt/INBOX"')
        assert typ == "NO"
        rights = await asyncio.to_thread(old_delegate.getacl, "Shared/stttt/INBOX")
        assert (setup.delegate.encode(), b"lrswipkxtea") in rights
        assert setup.head.encode() not in [who for who, _ in rights]
    finally:
        for m in (head, outsider):
            await asyncio.to_thread(m.logout)
        await asyncio.to_thread(old_delegate.logout)


def imap_service(server: RunningServer) -> ImapService:
    return next(s for s in server.app.services if isinstance(s, ImapService))


async def test_move_into_junk_trains_spam_and_out_trains_ham(setup: Setup) -> None:
    server = setup.server
    (spam,) = [c for c in server.app.pipeline.checks if isinstance(c, SpamCheck)]
    bayes = spam.bayes
    assert bayes is not None
    before = bayes.totals()
    await asyncio.to_thread(send, server.port("smtp"), setup.delegate, "Trung thuong lon")
    await asyncio.to_thread(send, server.port("smtp"), setup.delegate, "Hop giao ban")

    def move(uid: int, source: str, dest: str) -> None:
        with IMAPClient("127.0.0.1", port=setup.imap_port, ssl=False) as c:
            c.login(setup.delegate, PASSWORD)
            c.select_folder(source)
            c.move([uid], dest)

    await asyncio.to_thread(move, 1, "INBOX", "Junk")
    trainer = imap_service(server).trainer
    assert trainer is not None
    await trainer.drain()
    assert bayes.totals() == (before[0] + 1, before[1])
    # Rescued from Junk: learned as ham, the spam learning undone.
    await asyncio.to_thread(move, 1, "Junk", "INBOX")
    await trainer.drain()
    assert bayes.totals() == (before[0], before[1] + 1)
    # Thrown away from Junk: nothing to learn.
    await asyncio.to_thread(move, 2, "INBOX", "Trash")
    await trainer.drain()
    assert bayes.totals() == (before[0], before[1] + 1)


async def test_offboarded_account_open_session_gets_bye(setup: Setup) -> None:
    m = await asyncio.to_thread(login, setup.imap_port, setup.delegate)
    await asyncio.to_thread(m.select, "INBOX")
    await setup.svc.offboard(setup.delegate, by=BY)
    try:
        with pytest.raises(imaplib.IMAP4.abort, match="Account disabled"):
            await asyncio.to_thread(m.noop)
    finally:
        m.shutdown()
    with pytest.raises(imaplib.IMAP4.error):
        await asyncio.to_thread(login, setup.imap_port, setup.delegate)

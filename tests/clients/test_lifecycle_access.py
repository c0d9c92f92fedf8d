"""Issue 16, "Lifecycle leaves access where it should end" (Decision 70/2009 Điều 5
khoản 3-4, Điều 10 khoản 4): the operator runs `python -m mailserver directory
transfer|offboard` in a subprocess against a running server, while the head, a
delegate and someone logged in to the agency mailbox itself hold IMAP sessions
open; what each can still do is checked over IMAP and submission."""

from __future__ import annotations

import asyncio
import imaplib
import json
import re
import smtplib
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from mailserver.auth import hash_password
from mailserver.config import Config
from mailserver.directory.service import DirectoryService
from storage.directory import By, open_directory
from tests.conftest import RunningServer, make_config, wait_until

BY = By("tccb", "Số 77/QĐ-UBND")
PASSWORD = "Mat-khau-cong-vu-2026"
BOX_PASSWORD = "Mat-khau-co-quan-2026"
ACCESS_CACHE = 0.3


@pytest.fixture
def config(tmp_path: Path) -> Config:
    base = make_config(tmp_path / "data")
    return replace(base, imap=replace(base.imap, access_cache=ACCESS_CACHE))


@pytest.fixture
def conf_file(config: Config, tmp_path: Path) -> Path:
    """The same data directory, as the operator's CLI reads it."""
    path = tmp_path / "mailserver.toml"
    path.write_text(
        f'[server]\ndata_dir = "{config.data_dir}"\nhostname = "{config.server.hostname}"\n'
        f'log_level = "WARNING"\n[imap]\naccess_cache = {ACCESS_CACHE}\n',
        encoding="utf-8",
    )
    return path


def cli(conf: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailserver", "--config", str(conf), *args],
        capture_output=True, text=True, timeout=120, check=False,
    )


@dataclass
class Province:
    server: RunningServer
    svc: DirectoryService
    head: str
    clerk: str
    successor: str
    box: str


@pytest.fixture
async def province(server: RunningServer) -> Province:
    store = server.app.store
    svc = DirectoryService(store, open_directory(store), server.config)
    box = (await svc.add_agency("stttt", "Sở Thông tin và Truyền thông", None, by=BY)).address
    await svc.add_agency("ubndbienhoa", "UBND thành phố Biên Hòa", None, by=BY)
    people = []
    for name in ("Nguyễn Văn An", "Trần Thị Bình", "Lê Minh Chí"):
        people.append((await svc.add_person(name, "stttt", by=BY)).address)
    head, clerk, successor = people
    await svc.set_head("stttt", head, by=BY)
    await svc.delegate("stttt", clerk, by=BY)  # read,write,send
    for address, password in ((head, PASSWORD), (clerk, PASSWORD), (successor, PASSWORD),
                              (box, BOX_PASSWORD)):
        account = await store.get_account(address)
        assert account is not None
        await store.set_password(account.id, hash_password(password), must_change_password=False)
    return Province(server, svc, head, clerk, successor, box)


def imap_session(port: int, user: str, password: str, mailbox: str) -> imaplib.IMAP4:
    m = imaplib.IMAP4("127.0.0.1", port)
    try:
        m.login(user, password)
        typ, data = m.select(mailbox)
        assert typ == "OK", data
    except BaseException:
        m.shutdown()
        raise
    return m


def send_as(port: int, user: str, sender: str, to: str) -> None:
    """Submit a message From ``sender``; raises smtplib errors when refused."""
    with smtplib.SMTP("127.0.0.1", port) as s:
        s.login(user, PASSWORD)
        s.sendmail(sender, [to], f"From: {sender}\r\nTo: {to}\r\nSubject: thu\r\n\r\nNoi dung.\r\n".encode())



def until(check: Callable[[], bool], what: str) -> None:
    """``wait_until``, looking three times per ``imap.access_cache`` (in this thread)."""
    wait_until(check, what, interval=ACCESS_CACHE / 3)


def lost_shared_access(m: imaplib.IMAP4) -> bool:
    """NOOP in the shared folder: the session reports [CLOSED] and NO [NOPERM] once
    the right is gone (imap.access_cache later at most)."""
    typ, data = m.noop()
    return typ == "NO" and b"NOPERM" in b" ".join(d for d in data if isinstance(d, bytes))


def ended(m: imaplib.IMAP4) -> bool:
    """The server said BYE and closed the session."""
    try:
        m.noop()
    except (imaplib.IMAP4.abort, OSError):
        m.shutdown()
        return True
    return False


def json_of(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


async def test_transfer_of_head_and_delegate_ends_their_access(province: Province, conf_file: Path) -> None:
    p = province
    imap, submission = p.server.port("imap"), p.server.port("submission")
    shared = '"Shared/stttt/INBOX"'
    head_session = await asyncio.to_thread(imap_session, imap, p.head, PASSWORD, shared)
    clerk_session = await asyncio.to_thread(imap_session, imap, p.clerk, PASSWORD, shared)
    # The head knew the agency mailbox's own password and is logged in with it too.
    box_session = await asyncio.to_thread(imap_session, imap, p.box, BOX_PASSWORD, "INBOX")
    await asyncio.to_thread(send_as, submission, p.head, p.box, p.successor)  # allowed while head

    # A head cannot simply walk away (Điều 10 khoản 4): nothing changes.
    refused = await asyncio.to_thread(
        cli, conf_file, "directory", "transfer", p.head, "--agency", "ubndbienhoa"
    )
    assert refused.returncode == 1
    assert "--new-head" in refused.stderr and "handover" in refused.stderr and "thủ trưởng" in refused.stderr
    assert (await asyncio.to_thread(head_session.noop))[0] == "OK"
    view = json_of(await asyncio.to_thread(cli, conf_file, "agency", "show", "stttt", "--json"))
    assert view["head"]["address"] == p.head

    moved = await asyncio.to_thread(
        cli, conf_file, "directory", "transfer", p.head, "--agency", "ubndbienhoa", "--new-head", p.successor,
        "--decision", "Số 78/QĐ-UBND",
    )
    assert moved.returncode == 0, moved.stderr
    out = moved.stdout
    # Vietnamese first, English beside it: what was removed, rotated, and what is left to do.
    assert f"{p.head} thôi là thủ trưởng của stttt" in out and "no longer heads stttt" in out
    assert f"{p.successor} là thủ trưởng mới của stttt" in out
    rotated = re.search(rf"mật khẩu của hộp thư {re.escape(p.box)} đã được cấp lại.* / .*: (\S+)$", out, re.M)
    assert rotated, out
    assert "Việc cần làm / To do:" in out and f"Không còn quyền nào trên hộp thư {p.box}" in out
    assert out.index("thôi là thủ trưởng") < out.index("no longer heads")

    # Open sessions lose access within imap.access_cache; the agency-password session ends.
    await asyncio.to_thread(until, lambda: lost_shared_access(head_session), "head loses Shared/stttt")
    await asyncio.to_thread(until, lambda: ended(box_session), "the old agency password's session ends")
    assert (await asyncio.to_thread(clerk_session.noop))[0] == "OK"  # the delegate is untouched
    with pytest.raises(smtplib.SMTPSenderRefused):
        await asyncio.to_thread(send_as, submission, p.head, p.box, p.successor)
    await asyncio.to_thread(send_as, submission, p.head, p.head, p.successor)  # own address still fine
    with pytest.raises(imaplib.IMAP4.error):
        await asyncio.to_thread(imap_session, imap, p.box, BOX_PASSWORD, "INBOX")
    with pytest.raises(imaplib.IMAP4.error, match="EXPIRED"):  # the new one, to be changed by the new head
        await asyncio.to_thread(imap_session, imap, p.box, rotated.group(1), "INBOX")
    successor_session = await asyncio.to_thread(imap_session, imap, p.successor, PASSWORD, shared)
    await asyncio.to_thread(successor_session.logout)

    # A delegate's transfer revokes the delegation, says so, and ends the session's access.
    moved = await asyncio.to_thread(
        cli, conf_file, "directory", "transfer", p.clerk, "--agency", "ubndbienhoa"
    )
    assert moved.returncode == 0, moved.stderr
    assert f"đã thu hồi ủy quyền của {p.clerk} trên {p.box}" in moved.stdout
    assert f"delegation of {p.clerk} on {p.box} revoked" in moved.stdout
    await asyncio.to_thread(until, lambda: lost_shared_access(clerk_session), "delegate loses Shared/stttt")
    with pytest.raises(smtplib.SMTPSenderRefused):
        await asyncio.to_thread(send_as, submission, p.clerk, p.box, p.successor)

    # The last head leaves with --force-headless: loud warning, audit record.
    moved = await asyncio.to_thread(
        cli, conf_file, "directory", "transfer", p.successor, "--agency", "ubndbienhoa", "--force-headless",
        "--json",
    )
    data = json_of(moved)
    assert data["agency"] == "ubndbienhoa"
    assert "CẢNH BÁO / WARNING" in moved.stderr and "không còn thủ trưởng" in moved.stderr
    kinds = [c["kind"] for c in data["changes"]]
    assert {"head.removed", "warning", "password.rotated", "person.moved", "follow-up"} <= set(kinds)
    view = json_of(await asyncio.to_thread(cli, conf_file, "agency", "show", "stttt", "--json"))
    assert view["head"] is None
    audit = json_of(await asyncio.to_thread(cli, conf_file, "audit", "--subject", "stttt", "--json"))
    actions = [e["action"] for e in audit]
    assert "agency.handover" in actions and "agency.headless" in actions and "agency.revoke" in actions
    for session in (head_session, clerk_session):
        await asyncio.to_thread(session.shutdown)


async def test_offboarding_a_head_rotates_the_agency_password(province: Province, conf_file: Path) -> None:
    p = province
    imap = p.server.port("imap")
    box_session = await asyncio.to_thread(imap_session, imap, p.box, BOX_PASSWORD, "INBOX")
    done = await asyncio.to_thread(cli, conf_file, "directory", "offboard", p.head)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert f"đã khóa đăng nhập {p.head}" in out and f"login of {p.head} disabled" in out
    assert re.search(rf"mật khẩu của hộp thư {re.escape(p.box)} đã được cấp lại.*: \S+$", out, re.M), out
    assert "Việc cần làm / To do:" in out and "mailserver agency set-head stttt" in out
    assert "CẢNH BÁO / WARNING" in done.stderr  # the agency is left without a head
    await asyncio.to_thread(until, lambda: ended(box_session), "the old agency password's session ends")
    with pytest.raises(imaplib.IMAP4.error):
        await asyncio.to_thread(imap_session, imap, p.box, BOX_PASSWORD, "INBOX")
    # Every other lifecycle command says what it changed, Vietnamese first.
    revoke = await asyncio.to_thread(cli, conf_file, "agency", "revoke", "stttt", p.clerk)
    assert revoke.returncode == 0, revoke.stderr
    assert revoke.stdout.startswith(f"- đã thu hồi ủy quyền của {p.clerk}")
    delegate = await asyncio.to_thread(
        cli, conf_file, "agency", "delegate", "stttt", p.clerk, "--rights", "read"
    )
    assert delegate.stdout.startswith(f"- {p.clerk} được ủy quyền trên {p.box}: lrs / ")
    head = await asyncio.to_thread(cli, conf_file, "agency", "set-head", "stttt", p.successor)
    assert head.stdout.startswith(f"- {p.successor} là thủ trưởng của stttt")
    handover = await asyncio.to_thread(cli, conf_file, "agency", "handover", "stttt", p.clerk)
    assert handover.returncode == 0, handover.stderr
    assert f"{p.successor} thôi là thủ trưởng của stttt" in handover.stdout
    assert "đã được cấp lại" in handover.stdout and "the password of" in handover.stdout
    hire = await asyncio.to_thread(cli, conf_file, "directory", "add-person", "--name", "Phạm Thu Hà",
                                   "--agency", "stttt")
    assert hire.stdout.startswith("đã tạo hộp thư hapt@dongnai.gov.vn")
    assert "initial password: " in hire.stdout

"""``mailserver/ops/admin.py``: the queue and quarantine actions the CLI and the
portal share, over a real SQLite storage, a real spool and a real quarantine
directory; each audits once, and only what it changed. The CLI and the portal
call these functions (checked on their source below), so neither audits nor
changes the queue on its own."""

from __future__ import annotations

import ast
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailserver.ops import admin
from storage import Storage, open_storage
from storage.api import INBOX
from storage.directory import By
from storage.quarantine import FileQuarantine, NoSuchEntry

ROOT = Path(__file__).resolve().parents[2]
MESSAGE = b"From: a@example.org\r\nTo: an@dongnai.gov.vn\r\nSubject: held\r\n\r\nbody\r\n"


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[Storage]:
    opened = open_storage(f"sqlite+aiosqlite:///{tmp_path / 'index.db'}", tmp_path / "maildir",
                          spool_dir=tmp_path / "spool")
    await opened.start()
    yield opened
    await opened.close()


async def _actions(storage: Storage) -> list[tuple[str, str, str]]:
    return [(e.action, e.subject, e.actor) for e in await storage.directory.audit_log()]


async def test_queue_actions_change_the_queue_and_audit_once(storage: Storage) -> None:
    queue = storage.outbound_queue()
    first = await queue.enqueue("an@dongnai.gov.vn", ["x@example.org"], MESSAGE, origin="test")
    second = await queue.enqueue("an@dongnai.gov.vn", ["y@example.org"], MESSAGE, origin="test")
    by = By("operator")
    assert await admin.retry_queued(queue, storage.directory, first, by=by) == 1
    assert await admin.retry_queued(queue, storage.directory, 999, by=by) is None
    assert await admin.bounce_queued(queue, storage.directory, first, by=by)
    assert not await admin.bounce_queued(queue, storage.directory, 999, by=by)
    assert await admin.delete_queued(queue, storage.directory, second, by=by)
    assert not await admin.delete_queued(queue, storage.directory, second, by=by)
    assert await queue.get(second) is None
    found = await queue.get(first)
    assert found is not None and found.bounce_requested
    assert await _actions(storage) == [
        ("queue.retry", f"queue:{first}", "operator"),
        ("queue.bounce", f"queue:{first}", "operator"),
        ("queue.delete", f"queue:{second}", "operator"),
    ]


async def test_release_delivers_to_local_recipients_then_removes_the_entry(
    storage: Storage, tmp_path: Path
) -> None:
    account = await storage.mail.create_account("an@dongnai.gov.vn", "An", "h")
    quarantine = FileQuarantine(tmp_path / "quarantine")
    entry = quarantine.put(MESSAGE, sender="a@example.org",
                           recipients=["An@dongnai.gov.vn", "nobody@dongnai.gov.vn"], reasons=["spam"])
    released = await admin.release_held(storage.mail, quarantine, storage.directory, entry.id, by=By("op"))
    assert released == admin.Release(1, ("nobody@dongnai.gov.vn",))
    inbox = await storage.mail.get_folder(account.id, INBOX)
    (info,) = await storage.mail.list_messages(account.id, inbox.id)
    assert await storage.mail.read_message(account.id, inbox.id, info.uid) == MESSAGE
    assert quarantine.list() == []
    with pytest.raises(NoSuchEntry):
        await admin.release_held(storage.mail, quarantine, storage.directory, entry.id, by=By("op"))
    assert await _actions(storage) == [("quarantine.release", entry.id, "op")]


async def test_release_without_a_local_recipient_keeps_the_entry(storage: Storage, tmp_path: Path) -> None:
    quarantine = FileQuarantine(tmp_path / "quarantine")
    entry = quarantine.put(MESSAGE, sender="a@example.org", recipients=["nobody@dongnai.gov.vn"],
                           reasons=["spam"])
    released = await admin.release_held(storage.mail, quarantine, storage.directory, entry.id, by=By("op"))
    assert released.delivered == 0
    assert [e.id for e in quarantine.list()] == [entry.id]
    await admin.delete_held(quarantine, storage.directory, entry.id, by=By("op"))
    assert quarantine.list() == []
    assert await _actions(storage) == [("quarantine.delete", entry.id, "op")]


QUEUE_CALLS = {"retry", "request_bounce", "delete"}


@pytest.mark.parametrize(
    "rel", ["mailserver/web/server.py", "mailserver/cli/queue.py", "mailserver/cli/quarantine.py"]
)
def test_the_cli_and_the_portal_go_through_ops_admin(rel: str) -> None:
    """Neither changes the queue or the quarantine, nor writes those audit
    entries, itself: ``queue.retry(…)``, ``quarantine.delete(…)`` and the like
    appear only in ``ops/admin.py``."""
    source = (ROOT / rel).read_text("utf-8")
    calls = [
        ast.unparse(node.func)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        and node.func.attr in QUEUE_CALLS and ast.unparse(node.func.value).endswith(("queue", "quarantine"))
    ]
    assert calls == [], f"{rel} calls {calls}: use mailserver.ops.admin"
    assert "mailserver.ops import admin" in source
    assert '"queue.' not in source and '"quarantine.' not in source

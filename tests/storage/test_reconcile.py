"""The start-up reconciliation of the Maildir with the index (storage.reconcile),
on SQLite and PostgreSQL: what a crash leaves is moved to lost+found or
removed, nothing indexed is touched, young files are left for later, and an
interrupted pass resumes where it stopped."""

from __future__ import annotations

import itertools
import json
import os
import time
from pathlib import Path

from storage.api import INBOX, Account, Uid
from storage.maildir import folder_path
from storage.reconcile import STATE_FILE, Reconciler
from storage.sql.store import SqlMailStore

from .test_contract import message


def reconciler(store: SqlMailStore, tmp_path: Path, **kwargs: object) -> Reconciler:
    return Reconciler(store, store.maildir.root, tmp_path / "lost+found", **kwargs)  # type: ignore[arg-type]


def plant(store: SqlMailStore, account: Account, folder: str, sub: str, name: str, data: bytes) -> Path:
    directory = store.maildir.root.joinpath(*folder_path(account.address, folder).parts, sub)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(data)
    return path


async def test_leftovers_go_to_lost_found_and_indexed_mail_stays(
    store: SqlMailStore, alice: Account, tmp_path: Path
) -> None:
    inbox = (await store.get_folder(alice.id, INBOX)).id
    kept = await store.append(alice.id, inbox, message(1))
    blob = (await store.folder_blobs(alice.id, inbox))[0]
    # An APPEND killed after its rename into cur/ and before its commit.
    orphan = plant(store, alice, INBOX, "cur", "1700000000.M1P1R1.host:2,", message(2))
    # An uncommitted MOVE's hard link in Archive: the same inode as the indexed file.
    link = plant(store, alice, "Archive", "cur", "placeholder", b"")
    link.unlink()
    os.link(store.maildir.absolute(blob), link)
    # Partial writes in tmp/: one abandoned long ago, one that may still be written.
    old_tmp = plant(store, alice, "Sent", "tmp", "1600000000.M1P1R2.host", b"partial")
    hours_ago = time.time() - 37 * 3600
    os.utime(old_tmp, (hours_ago, hours_ago))
    young_tmp = plant(store, alice, "Sent", "tmp", "1700000000.M1P1R3.host", b"partial")

    check = reconciler(store, tmp_path, min_age=0)
    assert await check.run(None) is True
    moved = tmp_path / "lost+found" / Path(*folder_path(alice.address, INBOX).parts) / "cur" / orphan.name
    assert moved.read_bytes() == message(2) and not orphan.exists()
    assert not link.exists() and check.stats.unlinked == 1
    assert not old_tmp.exists() and young_tmp.exists()
    assert await store.read_message(alice.id, inbox, kept.uid) == message(1)
    assert len(check.stats.moved) == 1
    # A second pass finds nothing more to do.
    again = reconciler(store, tmp_path, min_age=0)
    assert await again.run(None) and not again.stats.moved and not again.stats.unlinked


async def test_young_candidates_are_left_for_later(
    store: SqlMailStore, alice: Account, tmp_path: Path
) -> None:
    """A file whose row may still be committing (renamed a moment ago) is not touched."""
    orphan = plant(store, alice, INBOX, "cur", "1700000000.M2P1R1.host:2,", message(3))
    now = [time.time()]
    check = reconciler(store, tmp_path, min_age=600, clock=lambda: now[0])
    assert await check.run(None)
    assert orphan.exists() and check.stats.deferred == 1
    assert set(check.deferred) == {alice.id}
    # Once old enough, the background part moves it.
    now[0] += 601
    await check.finish(True)
    assert not orphan.exists() and check.stats.moved and not check.deferred


async def test_a_pass_stops_at_its_budget_and_resumes(
    store: SqlMailStore, tmp_path: Path
) -> None:
    accounts = [await store.create_account(f"user{n}@example.org", "U", "h") for n in range(3)]
    orphans = [plant(store, a, INBOX, "cur", f"1700000000.M{n}P9R9.host:2,", message(n))
               for n, a in enumerate(accounts)]
    # A budget of one second on a clock that jumps: the first account, then out of time.
    ticks = itertools.chain([0.0, 0.0, 0.0], itertools.repeat(5.0))
    first = reconciler(store, tmp_path, min_age=0, monotonic=lambda: next(ticks))
    assert await first.run(1.0) is False
    assert [o.exists() for o in orphans] == [False, True, True]
    state = json.loads((store.maildir.root / STATE_FILE).read_text())
    assert state["after"] == accounts[0].id
    # The next start (a new process) continues after it.
    second = reconciler(store, tmp_path, min_age=0)
    assert await second.run(None) is True
    assert second.stats.accounts == 2 and not any(o.exists() for o in orphans)
    assert json.loads((store.maildir.root / STATE_FILE).read_text())["after"] == 0


async def test_rows_and_files_agree_after_copy_move_expunge(
    store: SqlMailStore, alice: Account, tmp_path: Path
) -> None:
    """Normal operations leave nothing for the check to do."""
    inbox = (await store.get_folder(alice.id, INBOX)).id
    archive = (await store.get_folder(alice.id, "Archive")).id
    for n in range(4):
        await store.append(alice.id, inbox, message(n))
    await store.copy(alice.id, inbox, [Uid(1), Uid(2)], archive)
    await store.move(alice.id, inbox, [Uid(3)], archive)
    check = reconciler(store, tmp_path, min_age=0)
    assert await check.run(None)
    assert not check.stats.moved and not check.stats.unlinked
    assert len(await store.list_messages(alice.id, archive)) == 3

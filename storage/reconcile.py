"""Crash leftovers: every Maildir reconciled with the index at start.

Theory of operation
-------------------
A message file exists before its row and outlives it (``storage.sql.store``:
a committed row always points at a durable file). So a process killed at the
wrong moment leaves files that no row points at, which mutt or Dovecot reading
the Maildir would show as ghosts:

* ``tmp/``: a partial APPEND, killed while writing. Deleted once older than
  36 hours (the Maildir specification's rule, ``STAGING_MAX_AGE``).
* ``cur/`` (or ``new/``, where other tools deliver): an APPEND killed before
  its commit (complete, or - killed before its fsync - empty or partial), a
  delivery placed by a commit that never finished, the hard links an
  uncommitted COPY or MOVE made (or the sources of a committed MOVE, or an
  EXPUNGE, not yet unlinked).

For each folder the check reads the folder's rows (snapshot A), lists ``cur/``
and ``new/``, and reads the rows again (snapshot B); files are matched by name
(a folder RENAME moves directories, never renames files). A name in B is
indexed. A name in A but not B is being expunged or moved right now and is
left to that operation. A name in neither is a candidate; if it changed (mtime
or ctime: a rename or a link updates ctime) less than ``orphan_min_age``
seconds ago it may belong to a delivery or APPEND whose commit is in flight,
here or on another node, so it is left alone and the account is looked at again
once the file is old enough. An older candidate whose inode is that of an
indexed file of the same account (COPY and MOVE link within one account) is a
redundant name and is unlinked: its content stays under the indexed name.
Any other is moved to ``<data_dir>/lost+found/`` under the same relative path
(``<domain>/<local>/<folder>/cur/<name>``, readable as a Maildir) and logged,
for an operator to look at: it may be mail the client was never told was
stored, or an expunged message whose removal was interrupted.

The account's deleted-mail vault (``<account>/..vault``, ``storage.sql.vault``)
is read the same way against its vault rows, and its indexed files count as
indexed inodes: a folder's file left by an expunge that committed but did not
unlink yet shares its inode with its vault copy, so it is removed as a
redundant link, never moved to lost+found. A vault file without a row is a
second name of an indexed message (an expunge that did not commit, an
undelete that did) or what an interrupted purge meant to remove: once old
enough it is unlinked.

Bounded and resumable: accounts are taken in id order; the start-up pass stops
after ``storage.reconcile_budget`` seconds (checked between accounts) and the
server continues it in the background. The last account done is kept in
``<maildir>/.reconcile.json`` (at most once a second, and when the pass
stops), so a pass interrupted by a stop or another crash resumes after it; a
completed pass begins again from the first account at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Final

from storage.api import Account, MailStore, NoSuchFolder
from storage.maildir import STAGING_MAX_AGE, folder_path, fsync_dir, vault_path

log = logging.getLogger(__name__)

STATE_FILE: Final = ".reconcile.json"
"""In the Maildir root (no account directory begins with '.')."""
_SAVE_INTERVAL: Final = 1.0


@dataclass(slots=True)
class ReconcileStats:
    accounts: int = 0
    folders: int = 0
    moved: list[str] = field(default_factory=list)
    """Relative paths moved to lost+found."""
    unlinked: int = 0
    """Redundant links of indexed messages removed (vault leftovers included)."""
    tmp_removed: int = 0
    deferred: int = 0
    """Candidates too young to judge (looked at again later)."""


@dataclass(slots=True)
class _Listing:
    files: list[tuple[str, str, int]]
    """(name, ``cur`` or ``new``, inode) of every message file."""
    tmp_removed: int = 0


def _list_folder(directory: Path, tmp_horizon: float) -> _Listing:
    """The folder's message files; ``tmp/`` files last modified before
    ``tmp_horizon`` (Unix time) are deleted on the way."""
    listing = _Listing([])
    for sub in ("cur", "new"):
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            with os.scandir(directory / sub) as entries:
                for entry in entries:
                    if entry.is_file(follow_symlinks=False):
                        listing.files.append((entry.name, sub, entry.inode()))
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        with os.scandir(directory / "tmp") as entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < tmp_horizon:
                        os.unlink(entry.path)
                        listing.tmp_removed += 1
                        log.info("reconcile: removed abandoned %s", entry.path)
    return listing


class Reconciler:
    """The start-up check of the Maildir against the index (module docstring)."""

    def __init__(
        self,
        store: MailStore,
        maildir_root: Path,
        lost_found: Path,
        *,
        min_age: float,
        tmp_max_age: float = STAGING_MAX_AGE,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.root = Path(maildir_root).resolve()
        self.lost_found = Path(lost_found)
        self.min_age = min_age
        self.tmp_max_age = tmp_max_age
        self._clock = clock
        self._monotonic = monotonic
        self.stats = ReconcileStats()
        self.deferred: dict[int, float] = {}
        """Account id -> Unix time its youngest candidate becomes old enough to judge."""

    @property
    def state_path(self) -> Path:
        return self.root / STATE_FILE

    # -- progress ---------------------------------------------------------------
    def _load(self) -> int:
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
            return int(state.get("after", 0))
        except (OSError, ValueError, TypeError, AttributeError):
            return 0

    def _save(self, after: int, *, completed: bool = False) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        state = {"after": after, "saved_at": self._clock()}
        if completed:
            state["completed_at"] = self._clock()
        tmp = self.state_path.with_name(STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(state), encoding="utf-8")
        os.replace(tmp, self.state_path)

    # -- the pass -------------------------------------------------------------------
    async def run(self, budget: float | None) -> bool:
        """Continue the pass for at most ``budget`` seconds (None: to the end);
        True once every account has been checked."""
        after = await asyncio.to_thread(self._load)
        accounts = sorted(await self.store.list_accounts(), key=lambda a: a.id)
        started = saved = self._monotonic()
        done_until = after
        try:
            for account in accounts:
                if account.id <= after:
                    continue
                if budget is not None and self._monotonic() - started >= budget:
                    log.info("reconcile: start-up budget spent; continuing in the background")
                    return False
                await self.check_account(account)
                done_until = account.id
                if self._monotonic() - saved >= _SAVE_INTERVAL:
                    await asyncio.to_thread(self._save, done_until)
                    saved = self._monotonic()
            done_until = 0
            await asyncio.to_thread(self._save, 0, completed=True)
            if self.stats.moved or self.stats.unlinked or self.stats.tmp_removed:
                log.warning(
                    "reconcile: %d file(s) without an index row moved to %s, %d leftover link(s) and "
                    "%d abandoned tmp file(s) removed",
                    len(self.stats.moved), self.lost_found, self.stats.unlinked, self.stats.tmp_removed,
                )
            return True
        finally:
            if done_until:
                with contextlib.suppress(OSError):
                    await asyncio.to_thread(self._save, done_until)

    async def startup(self, budget: float) -> bool:
        """``run(budget)`` for the server's start: a failure is logged, never
        stops the server (the pass is then not continued)."""
        try:
            return await self.run(budget)
        except Exception:
            log.exception("reconcile: the check of the Maildir against the index failed")
            return True

    async def finish(self, complete: bool) -> None:
        """The background part: the rest of the pass, then the accounts whose
        candidates were too young to judge, once they are old enough. Failures
        are logged and end it."""
        try:
            await self._finish(complete)
        except Exception:
            log.exception("reconcile: the check of the Maildir against the index failed")

    async def _finish(self, complete: bool) -> None:
        if not complete:
            await self.run(None)
        while self.deferred:
            due = min(self.deferred.values())
            await asyncio.sleep(max(0.0, due - self._clock()))
            now = self._clock()
            for account_id in [a for a, when in self.deferred.items() if when <= now]:
                del self.deferred[account_id]
                account = await self.store.get_account_by_id(account_id)
                if account is not None:
                    await self.check_account(account)

    async def check_account(self, account: Account) -> None:
        indexed_inodes: set[int] = set()
        candidates: list[tuple[PurePosixPath, int]] = []
        for folder in await self.store.list_folders(account.id):
            try:
                relative = folder_path(account.address, folder.name)
            except ValueError:
                continue
            try:
                before = {PurePosixPath(b).name for b in await self.store.folder_blobs(account.id, folder.id)}
                horizon = self._clock() - self.tmp_max_age
                listing = await asyncio.to_thread(_list_folder, self.root / relative, horizon)
                after = {PurePosixPath(b).name for b in await self.store.folder_blobs(account.id, folder.id)}
            except NoSuchFolder:
                continue  # deleted meanwhile
            self.stats.folders += 1
            self.stats.tmp_removed += listing.tmp_removed
            for name, sub, inode in listing.files:
                if name in after:
                    indexed_inodes.add(inode)
                elif name not in before:
                    candidates.append((relative / sub / name, inode))
        vault_candidates = await self._check_vault(account, indexed_inodes)
        self.stats.accounts += 1
        if candidates or vault_candidates:
            youngest = await asyncio.to_thread(self._settle, candidates, indexed_inodes, vault_candidates)
            if youngest is not None:
                self.deferred[account.id] = max(self.deferred.get(account.id, 0.0), youngest + self.min_age)

    async def _check_vault(
        self, account: Account, indexed_inodes: set[int]
    ) -> list[tuple[PurePosixPath, int]]:
        """Add the inodes of the vault's indexed files; its files without a row."""
        relative = vault_path(account.address)
        before = {PurePosixPath(b).name for b in await self.store.deleted_blobs(account.id)}
        horizon = self._clock() - self.tmp_max_age
        listing = await asyncio.to_thread(_list_folder, self.root / relative, horizon)
        after = {PurePosixPath(b).name for b in await self.store.deleted_blobs(account.id)}
        self.stats.tmp_removed += listing.tmp_removed
        candidates: list[tuple[PurePosixPath, int]] = []
        for name, sub, inode in listing.files:
            if name in after:
                indexed_inodes.add(inode)
            elif name not in before:
                candidates.append((relative / sub / name, inode))
        return candidates

    # -- deciding a candidate (blocking) ------------------------------------------------
    def _settle(
        self,
        candidates: list[tuple[PurePosixPath, int]],
        indexed: set[int],
        vault: Sequence[tuple[PurePosixPath, int]] = (),
    ) -> float | None:
        """Unlink or move each old enough candidate (a vault one is unlinked); the
        latest change time of those too young, or None."""
        youngest: float | None = None
        now = self._clock()
        in_vault = {relative for relative, _ in vault}
        for relative, inode in [*candidates, *vault]:
            path = self.root / relative
            try:
                st = path.stat()
            except FileNotFoundError:
                continue  # gone meanwhile (an expunge finishing)
            changed = max(st.st_mtime, st.st_ctime)
            if now - changed < self.min_age:
                self.stats.deferred += 1
                youngest = changed if youngest is None else max(youngest, changed)
                continue
            try:
                if relative in in_vault:
                    path.unlink()
                    self.stats.unlinked += 1
                    log.info("reconcile: %s is a vault file without a vault row; removed", relative)
                elif inode in indexed and st.st_ino == inode:
                    path.unlink()
                    self.stats.unlinked += 1
                    log.info("reconcile: %s was a leftover link of an indexed message; removed", relative)
                else:
                    target = self._move(path, relative)
                    self.stats.moved.append(str(relative))
                    log.warning("reconcile: %s has no index row; moved to %s", relative, target)
            except FileNotFoundError:
                continue
        return youngest

    def _move(self, path: Path, relative: PurePosixPath) -> Path:
        target = self.lost_found.joinpath(*relative.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        n = 0
        while target.exists():
            n += 1
            target = target.with_name(f"{relative.name}.{n}")
        try:
            os.rename(path, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            # lost+found on another file system than the Maildir: copy, sync, drop.
            shutil.copy2(path, target)
            fd = os.open(target, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            path.unlink()
        fsync_dir(target.parent)
        return target

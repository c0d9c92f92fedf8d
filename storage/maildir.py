"""Maildir blob store: message files written with tmp/ + fsync + rename into cur/.

Implements the delivery protocol of the Maildir specification (D. J. Bernstein,
https://cr.yp.to/proto/maildir.html) and the Maildir++ folder layout (Courier,
as used by Dovecot's default ``LAYOUT=maildir++``).

Layout
------
``<root>/<domain>/<localpart>/`` is an account's Maildir and its INBOX
(``cur``/``new``/``tmp`` directly inside). Every other folder is the Maildir++
subfolder ``.<level1>.<level2>...`` next to them: the '/' hierarchy delimiter
becomes '.'.

Names are encoded so that any Unicode name is one safe path component:

* folder levels use IMAP modified UTF-7 (RFC 3501 section 5.1.3, the encoding
  Dovecot uses on disk), extended so that '.' is also base64-encoded (``&AC4-``)
  because '.' separates levels in Maildir++. The result only contains printable
  ASCII without '/', and a standard modified UTF-7 decoder reads it back.
* address parts (domain and local part, lower-cased) keep ``[a-z0-9._+=-]`` and
  percent-encode every other UTF-8 octet, plus a leading '.', so '', '.', '..',
  '/', NUL or an absolute path can never leave ``<root>``; over-long parts are
  shortened with a SHA-256 suffix.

Flags are kept in SQL, so a file name never changes after delivery (the ``:2,``
info suffix stays empty). All blocking file I/O runs in worker threads of this
module's own pool, so that threads waiting for the disk never delay the short
jobs of the event loop's default executor.

Deliveries are staged: ``stage`` (or ``begin_stage``, whose future the
committer waits for) writes and fsyncs the file in
``<root>/.staging/`` while the store commits other messages; the store's commit
transaction then moves it into the target folders with ``place_staged`` (one
rename and one directory fsync per folder per batch) and ``unplace`` moves it
back if the transaction fails. Files left in staging by a crash were never
acknowledged; ``clean_staging`` removes them.

Durability: a new file is written in ``tmp/`` and renamed into ``cur/``; then
the file and ``cur/`` are fsynced, the two at once (in two threads), before
``write`` returns (or the future of ``begin_write`` completes). Renaming first
keeps the rule that no other reader ever sees a partial file in ``cur/`` while
the server runs, and lets one fsync of the directory, started after the rename,
run beside the file's: on ext4 two fsyncs in flight together cost about one
journal commit and device flush, two in a row cost two (measured in
bench/README.md, issue 17). A crash before both completed may leave an empty
or partial file in ``cur/``; no row points at it (the store commits the row
only after both), so the start-up reconciliation (``storage.reconcile``) takes
it away as it does any uncommitted file. Writers that rename into the same directory at the same
time share the directory fsync (``_DirSync``: group commit, as databases do
for their log): each waits for an fsync that began after its own rename, so
every one of them is covered, with one fsync per group instead of one per
message.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import errno
import functools
import hashlib
import os
import random
import secrets
import shutil
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import Final, TypeVar

_T = TypeVar("_T")

__all__ = [
    "Maildir",
    "VAULT",
    "account_path",
    "decode_folder_level",
    "encode_folder_level",
    "folder_path",
    "fsync_dir",
    "vault_path",
    "write_new_file",
]

_SUBDIRS: Final = ("cur", "new", "tmp")
_NAME_MAX: Final = 255
"""Longest file name component on common Linux file systems."""
_PART_MAX: Final = 120
"""Longest encoded address part before it is shortened with a hash."""
_SAFE_ADDRESS: Final = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789._+=-")


def _encode_address_part(part: str) -> str:
    out: list[str] = []
    for index, byte in enumerate(part.lower().encode("utf-8", "surrogatepass")):
        if byte in _SAFE_ADDRESS and not (index == 0 and byte == ord(".")):
            out.append(chr(byte))
        else:
            out.append(f"%{byte:02X}")
    encoded = "".join(out) or "%"
    if len(encoded) > _PART_MAX:
        digest = hashlib.sha256(encoded.encode("ascii")).hexdigest()[:32]
        encoded = f"{encoded[:80]}~{digest}"
    return encoded


def account_path(address: str) -> PurePosixPath:
    """Relative directory of an account's Maildir: ``<domain>/<localpart>``."""
    local, at, domain = address.rpartition("@")
    if not at:
        local, domain = address, ""
    return PurePosixPath(_encode_address_part(domain), _encode_address_part(local))


def _is_direct(char: str) -> bool:
    # RFC 3501 section 5.1.3: printable US-ASCII except '&' represent themselves;
    # '.' is our addition (Maildir++ level separator), '/' never reaches here.
    return 0x20 <= ord(char) <= 0x7E and char not in "&."


def encode_folder_level(level: str) -> str:
    """Modified UTF-7 of one hierarchy level, with '.' encoded too."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            raw = "".join(pending).encode("utf-16-be", "surrogatepass")
            out.append("&" + base64.b64encode(raw).decode("ascii").rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for char in level:
        if _is_direct(char):
            flush()
            out.append(char)
        elif char == "&":
            flush()
            out.append("&-")
        else:
            pending.append(char)
    flush()
    return "".join(out)


def decode_folder_level(encoded: str) -> str:
    """Inverse of ``encode_folder_level`` (any modified UTF-7 is accepted)."""
    out: list[str] = []
    index = 0
    while index < len(encoded):
        char = encoded[index]
        if char != "&":
            out.append(char)
            index += 1
            continue
        end = encoded.index("-", index)
        chunk = encoded[index + 1 : end]
        if not chunk:
            out.append("&")
        else:
            b64 = chunk.replace(",", "/")
            raw = base64.b64decode(b64 + "=" * (-len(b64) % 4))
            out.append(raw.decode("utf-16-be", "surrogatepass"))
        index = end + 1
    return "".join(out)


def folder_path(address: str, folder_name: str) -> PurePosixPath:
    """Relative directory of a folder; ``folder_name`` is already validated
    (no empty, '.' or '..' levels). INBOX is the account directory itself.

    Raises ValueError when the encoded name does not fit in one path component.
    """
    base = account_path(address)
    if folder_name == "INBOX":
        return base
    component = "." + ".".join(encode_folder_level(level) for level in folder_name.split("/"))
    if len(component.encode("ascii")) > _NAME_MAX - 10:
        raise ValueError("folder name too long for the file system")
    return base / component


VAULT: Final = "..vault"
"""Directory of an account's deleted-mail vault, beside its folders. Maildir++
folder directories are ``.`` followed by non-empty levels, so no folder's
directory can be named this (its first level would be empty)."""


def vault_path(address: str) -> PurePosixPath:
    """Relative directory of an account's deleted-mail vault (a Maildir of its own:
    ``cur``/``new``/``tmp``), where expunged messages wait for
    ``retention.deleted_days`` (``storage.sql.vault``)."""
    return account_path(address) / VAULT


def _hostname() -> str:
    # Maildir spec: '/' and ':' in the host name are written as \057 and \072.
    return socket.gethostname().replace("/", "\\057").replace(":", "\\072") or "localhost"


_HOST: Final = _hostname()


class _NameSource:
    """The process id and a random generator seeded from the kernel, both renewed
    in a forked child: a name costs no system call (``secrets.token_hex`` asks
    the kernel every time, and in a worker thread each such call hands the GIL
    over and waits to get it back)."""

    def __init__(self) -> None:
        self.renew()

    def renew(self) -> None:
        self.pid = os.getpid()
        # Uniqueness, not secrecy: the name shows the time and the process id anyway.
        self.random = random.Random(secrets.token_bytes(32))  # noqa: S311


_names: Final = _NameSource()
os.register_at_fork(after_in_child=_names.renew)


def _unique_name() -> str:
    """``time.MusecPpid_Rrandom.host`` as recommended by the Maildir spec (the
    random part 64 bits, as before: unique with the time and the process id;
    the file is created with O_EXCL anyway)."""
    now = time.time()
    unique = _names.random.getrandbits(64)
    return f"{int(now)}.M{int((now % 1) * 1_000_000)}P{_names.pid}R{unique:016x}.{_HOST}"


def write_new_file(path: str | os.PathLike[str], data: bytes) -> None:
    """Create ``path`` (it must not exist), write ``data`` and fsync it; nothing
    is left if that fails."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        raise
    os.close(fd)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _DirSync:
    """Group fsync of one directory, for worker threads (module docstring).

    ``after_rename`` is called once the caller's rename is done; it returns
    when an fsync of the directory that started after that call has completed.
    One caller at a time runs the fsync for everyone registered before it
    started; the others wait. A failed fsync raises in the caller that ran it,
    and the callers it was meant to cover try again themselves.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._registered = 0
        self._synced = 0
        self._running = False

    def after_rename(self, path: Path) -> None:
        with self._cond:
            self._registered += 1
            mine = self._registered
            while self._synced < mine:
                if self._running:
                    self._cond.wait()
                    continue
                self._running = True
                target = self._registered
                done = False
                self._cond.release()
                try:
                    fsync_dir(path)
                    done = True
                finally:
                    self._cond.acquire()
                    self._running = False
                    if done:
                        self._synced = max(self._synced, target)
                    self._cond.notify_all()


_dir_syncs: weakref.WeakValueDictionary[Path, _DirSync] = weakref.WeakValueDictionary()
_dir_syncs_lock = threading.Lock()


def _sync_dir(path: Path) -> None:
    """fsync ``path`` after a rename into it, shared with concurrent renames."""
    with _dir_syncs_lock:
        sync = _dir_syncs.get(path)
        if sync is None:
            sync = _dir_syncs[path] = _DirSync()
    sync.after_rename(path)


_FOLDER_PATHS_MAX: Final = 4096
"""Folder paths ``Maildir._folder`` remembers (then it starts afresh)."""

STAGING: Final = ".staging"
STAGING_MAX_AGE: Final = 36 * 3600.0
"""The Maildir specification's age for abandoned ``tmp/`` files."""

_IO_THREADS: Final = 16
"""Maildir I/O threads: mostly waiting in fsync, which the file system
completes faster when many are in flight together (journal group commit)."""
_io_pool: concurrent.futures.ThreadPoolExecutor | None = None
_DIR_SYNC_THREADS: Final = 4
"""Enough: writers renaming into one directory share its fsync (``_DirSync``)."""
_dir_sync_pool: concurrent.futures.ThreadPoolExecutor | None = None
_io_pool_lock = threading.Lock()


def _dir_pool() -> concurrent.futures.ThreadPoolExecutor:
    """Threads that only fsync directories for ``Maildir._write`` (never ``_pool``'s
    own: a writer waiting there for a job queued behind it could wait forever)."""
    global _dir_sync_pool
    if _dir_sync_pool is None:
        with _io_pool_lock:
            if _dir_sync_pool is None:
                _dir_sync_pool = concurrent.futures.ThreadPoolExecutor(
                    _DIR_SYNC_THREADS, thread_name_prefix="maildir-dirsync"
                )
    return _dir_sync_pool


def _pool() -> concurrent.futures.ThreadPoolExecutor:
    global _io_pool
    if _io_pool is None:
        with _io_pool_lock:
            if _io_pool is None:
                _io_pool = concurrent.futures.ThreadPoolExecutor(_IO_THREADS, thread_name_prefix="maildir")
    return _io_pool


async def _in_thread(func: Callable[..., _T], *args: object) -> _T:
    return await asyncio.get_running_loop().run_in_executor(_pool(), functools.partial(func, *args))


class Maildir:
    """Message files under one root. Paths given and returned are relative to it
    (POSIX strings, as stored in SQL)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self._folder_lock = threading.Lock()
        self._ready: set[Path] = set()
        """Folders this instance made or found complete (``_make_folder``)."""
        self._staging = str(self.root / STAGING)
        self._paths: dict[PurePosixPath, Path] = {}
        """Folder -> ``absolute(folder)``, which is lexical only (no file system
        access) and costs ~25 us: a delivery asks it for its folder each time."""

    def absolute(self, relative: str | PurePosixPath) -> Path:
        """Resolve a relative path, refusing anything that would leave the root."""
        rel = PurePosixPath(relative)
        if rel.is_absolute() or ".." in rel.parts or "\0" in str(rel):
            raise ValueError(f"unsafe maildir path {str(relative)!r}")
        path = self.root.joinpath(*rel.parts)
        if not Path(os.path.normpath(path)).is_relative_to(self.root):
            raise ValueError(f"unsafe maildir path {str(relative)!r}")
        return path

    # -- folders --------------------------------------------------------------
    def _make_folder(self, folder: PurePosixPath) -> Path:
        """Create ``folder`` with its cur/new/tmp, durably, and return its path.

        Under one lock: a writer that finds a folder half made (``cur`` there,
        ``tmp`` not yet) or made but not yet fsynced must wait for it, or its
        message would fail, or be acknowledged in a directory a crash can lose.
        Every directory this call creates has its entry fsynced in its parent."""
        path = self.absolute(folder)
        with self._folder_lock:
            created: list[Path] = []
            missing = path
            while not missing.is_dir() and missing != self.root:
                created.append(missing)
                missing = missing.parent
            for directory in reversed(created):
                directory.mkdir(parents=True, exist_ok=True)
            for sub in _SUBDIRS:
                try:
                    (path / sub).mkdir()
                except FileExistsError:
                    continue
                created.append(path / sub)
            # A new directory entry is durable only once its parent is fsynced.
            for parent in {directory.parent for directory in created}:
                fsync_dir(parent)
            self._ready.add(path)
        return path

    def _folder(self, folder: PurePosixPath) -> Path:
        """The path of ``folder``, made (durably) if it is not there yet."""
        path = self._paths.get(folder)
        if path is None:
            path = self.absolute(folder)
            if len(self._paths) >= _FOLDER_PATHS_MAX:
                self._paths.clear()
            self._paths[folder] = path
        if path in self._ready and (path / "cur").is_dir():
            return path
        return self._make_folder(folder)

    def _forget_folders(self) -> None:
        """After removing or renaming folders: let the next write check again."""
        with self._folder_lock:
            self._ready.clear()

    async def create_folder(self, folder: PurePosixPath) -> None:
        await _in_thread(self._make_folder, folder)

    # The ``*_blocking`` methods are the blocking halves of the async ones below
    # them, for worker threads inside a SQL transaction (``storage.sql.database.run_io``).
    def rename_blocking(self, pairs: list[tuple[PurePosixPath, PurePosixPath]]) -> None:
        done: list[tuple[Path, Path]] = []
        try:
            for old, new in pairs:
                src, dst = self.absolute(old), self.absolute(new)
                if dst.exists():
                    raise FileExistsError(errno.EEXIST, "target folder directory exists", str(dst))
                if src.is_dir():
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    os.rename(src, dst)
                    done.append((src, dst))
                else:
                    self._make_folder(new)
        except BaseException:
            for src, dst in reversed(done):
                os.rename(dst, src)
            raise
        for _, dst in done:
            fsync_dir(dst.parent)
        self._forget_folders()

    async def rename_folders(self, pairs: list[tuple[PurePosixPath, PurePosixPath]]) -> None:
        """Rename folder directories; all or none."""
        await _in_thread(self.rename_blocking, pairs)

    def _remove_tree(self, relative: PurePosixPath) -> None:
        path = self.absolute(relative)
        if path == self.root:
            raise ValueError("refusing to remove the maildir root")
        shutil.rmtree(path, ignore_errors=True)
        self._forget_folders()

    async def remove_tree(self, relative: PurePosixPath) -> None:
        await _in_thread(self._remove_tree, relative)

    def _remove_folder(self, folder: PurePosixPath) -> None:
        # Only the folder's own cur/new/tmp: for INBOX-level paths this must not
        # take the Maildir++ subfolders with it.
        path = self.absolute(folder)
        for sub in _SUBDIRS:
            shutil.rmtree(path / sub, ignore_errors=True)
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()
        self._forget_folders()

    async def remove_folder(self, folder: PurePosixPath) -> None:
        await _in_thread(self._remove_folder, folder)

    # -- messages -------------------------------------------------------------
    def _write(self, folder: PurePosixPath, name: str, data: bytes) -> None:
        """Write a new message file as ``<folder>/cur/<name>:2,`` durably (module
        docstring: renamed first, then fsynced with its directory); on failure
        nothing is left under either name."""
        path = self._folder(folder)
        tmp, final = path / "tmp" / name, path / "cur" / f"{name}:2,"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        where = tmp
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.rename(tmp, final)
            where = final
            # The directory's fsync runs beside the file's: two in flight at once
            # cost about one device flush, two in a row cost two (bench/README).
            dir_synced = _dir_pool().submit(_sync_dir, path / "cur")
            try:
                os.fsync(fd)
            finally:
                concurrent.futures.wait([dir_synced])
            dir_synced.result()
        except BaseException:
            os.close(fd)
            where.unlink(missing_ok=True)
            raise
        os.close(fd)

    def begin_write(self, folder: PurePosixPath, data: bytes) -> tuple[str, concurrent.futures.Future[None]]:
        """Start storing a message in ``folder``: its relative path at once, and a
        future that completes when the file and its directory entry are durable
        (it raises what the write raised; then no file is left). The caller can
        do other work meanwhile - the store prepares the message's row - but
        must not commit the row before the future is done."""
        name = _unique_name()
        future = _pool().submit(self._write, folder, name, data)
        return str(folder / "cur" / f"{name}:2,"), future

    # -- staged deliveries (the store's group commit) ---------------------------
    @property
    def staging(self) -> Path:
        """``<root>/.staging``: message files written before their folder is known.
        No address part starts with '.', so no account's directory is this."""
        return self.root / STAGING

    def _stage(self, data: bytes, name: str | None = None) -> str:
        name = name or _unique_name()
        # A plain string: pathlib's joins and conversions cost more than the write.
        path = f"{self._staging}/{name}"
        try:
            write_new_file(path, data)
        except FileNotFoundError:
            # Made on the first staging (and again if it was removed): a mkdir
            # per message cost a system call and an exception on every delivery.
            self.staging.mkdir(exist_ok=True)
            write_new_file(path, data)
        return name

    async def stage(self, data: bytes) -> str:
        """Write ``data`` to a new file in the staging directory and fsync it (its
        directory entry is made durable by ``place_staged``); returns its name.
        Many deliveries stage in parallel while the store commits others."""
        return await _in_thread(self._stage, data)

    def begin_stage(self, data: bytes) -> tuple[str, concurrent.futures.Future[str]]:
        """``stage`` started in a worker thread: the name at once, and a future that
        completes when the file is fsynced (raising what the write raised; then
        no file is left). The caller may queue the delivery meanwhile; whoever
        places it must wait for the future first (the store's commit does)."""
        name = _unique_name()
        return name, _pool().submit(self._stage, data, name)

    def drop_staged(self, name: str, written: concurrent.futures.Future[str]) -> None:
        """Remove a file ``begin_stage`` is writing or wrote, once the write is over,
        in a worker thread: for a delivery cancelled before it was queued (nothing
        will place it). Returns at once: nothing to await, which a cancelled task
        could not do reliably."""
        path = self.staging / name

        def remove(_: object) -> None:
            _pool().submit(path.unlink, True)

        written.add_done_callback(remove)

    async def unstage(self, name: str) -> None:
        """Drop a staged file that will not be placed."""
        await _in_thread((self.staging / name).unlink, True)

    def place_staged(self, items: Sequence[tuple[str, Sequence[PurePosixPath]]]) -> list[list[str]]:
        """Blocking (the store's commit transaction calls it): each staged file
        renamed into the ``cur/`` of the first of its folders and hard-linked into
        the others; each directory fsynced once. Returns the relative paths per
        item, in folder order. On failure everything is as before the call."""
        placed: list[tuple[str, list[str]]] = []
        try:
            # Plain strings, and each folder looked up (made if missing) once per
            # call: pathlib's joins cost more than the rename (a batch of 32
            # deliveries to a few INBOXes built ~250 paths).
            dirs: dict[str, Path] = {}
            folder_dirs: dict[PurePosixPath, tuple[Path, str]] = {}
            for name, folders in items:
                found = folder_dirs.get(folders[0])
                if found is None:
                    path = self._folder(folders[0])
                    found = folder_dirs[folders[0]] = (path, str(path / "cur"))
                path, cur = found
                final = f"{name}:2,"
                staged = f"{self._staging}/{name}"
                try:
                    os.rename(staged, f"{cur}/{final}")
                except OSError as exc:
                    if exc.errno != errno.EXDEV:
                        raise
                    # The folder is on another file system: copy, then drop the staged file.
                    write_new_file(path / "tmp" / name, Path(staged).read_bytes())
                    os.rename(path / "tmp" / name, path / "cur" / final)
                    Path(staged).unlink()
                # As str(folders[0] / "cur" / final): a folder path is never empty.
                first = f"{folders[0]}/cur/{final}"
                placed.append((name, [first]))
                if cur not in dirs:
                    dirs[cur] = path / "cur"
                for other in folders[1:]:
                    placed[-1][1].extend(self.link_blocking([first], other))  # fsyncs its directory
            for directory in dirs.values():
                _sync_dir(directory)
        except BaseException:
            self.unplace(placed)
            raise
        return [blobs for _, blobs in placed]

    def unplace(self, placed: Sequence[tuple[str, Sequence[str]]]) -> None:
        """Undo ``place_staged`` (blocking): the links removed, each file moved
        back to the staging directory under its name, to be placed again."""
        for name, blobs in reversed(placed):
            self.unlink_blocking(blobs[1:])
            try:
                os.rename(self.absolute(blobs[0]), self.staging / name)
            except OSError:
                # Copied across file systems: the delivery fails (and is retried
                # by its client) rather than leave an uncommitted file in a folder.
                self.unlink_blocking(blobs[:1])

    def _clean_staging(self, older_than: float) -> int:
        removed = 0
        now = time.time()
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.staging):
                with contextlib.suppress(OSError):
                    if now - entry.stat().st_mtime > older_than:
                        os.unlink(entry.path)
                        removed += 1
        return removed

    async def clean_staging(self, older_than: float = STAGING_MAX_AGE) -> int:
        """Remove staged files older than ``older_than`` seconds: left by a crash
        between staging and commit, so never acknowledged (the Maildir spec's
        cleaning of ``tmp/``). Returns how many were removed."""
        return await _in_thread(self._clean_staging, older_than)

    async def write(self, folder: PurePosixPath, data: bytes) -> str:
        """Store a message durably; returns its relative path."""
        blob, future = self.begin_write(folder, data)
        await asyncio.wrap_future(future)
        return blob

    def link_blocking(self, blobs: list[str], folder: PurePosixPath) -> list[str]:
        path = self._folder(folder)
        made: list[str] = []
        try:
            for blob in blobs:
                final = f"{_unique_name()}:2,"
                target = path / "cur" / final
                try:
                    # Same file system: a hard link shares the (already fsynced) data.
                    os.link(self.absolute(blob), target)
                except OSError as exc:
                    if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                        raise
                    tmp = path / "tmp" / final
                    shutil.copyfile(self.absolute(blob), tmp)
                    fd = os.open(tmp, os.O_RDONLY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
                    os.rename(tmp, target)
                made.append(str(folder / "cur" / final))
            _sync_dir(path / "cur")
        except BaseException:
            self.unlink_blocking(made)
            raise
        return made

    async def link(self, blobs: list[str], folder: PurePosixPath) -> list[str]:
        """New directory entries in ``folder`` for existing messages (COPY)."""
        return await _in_thread(self.link_blocking, blobs, folder)

    def move_blocking(self, blobs: list[str], folder: PurePosixPath) -> list[str]:
        path = self._folder(folder)
        moved: list[tuple[str, str]] = []
        try:
            for blob in blobs:
                new = str(folder / "cur" / PurePosixPath(blob).name)
                os.rename(self.absolute(blob), self.absolute(new))
                moved.append((blob, new))
        except BaseException:
            for old, new in reversed(moved):
                os.rename(self.absolute(new), self.absolute(old))
            raise
        _sync_dir(path / "cur")
        return [new for _, new in moved]

    async def move(self, blobs: list[str], folder: PurePosixPath) -> list[str]:
        """Rename message files into another folder (all or none)."""
        return await _in_thread(self.move_blocking, blobs, folder)

    def unlink_blocking(self, blobs: Iterable[str]) -> None:
        for blob in blobs:
            try:
                self.absolute(blob).unlink(missing_ok=True)
            except (OSError, ValueError):
                # An orphan file costs disk space only; SQL no longer points at it.
                continue

    async def remove(self, blobs: Iterable[str]) -> None:
        await _in_thread(self.unlink_blocking, list(blobs))

    def read_blocking(self, blob: str) -> bytes:
        return self.absolute(blob).read_bytes()

    def read_header_blocking(self, blob: str, limit: int = 65536) -> bytes:
        """The message's header section (up to and including the blank line), at
        most ``limit`` octets: what THREAD needs of a message without its body."""
        with self.absolute(blob).open("rb") as f:
            data = b""
            while len(data) < limit:
                chunk = f.read(8192)
                if not chunk:
                    break
                data += chunk
                end = data.find(b"\r\n\r\n")
                if end >= 0:
                    return data[: end + 4]
                end = data.find(b"\n\n")
                if end >= 0:
                    return data[: end + 2]
            return data[:limit]

    async def read(self, blob: str) -> bytes:
        return await _in_thread(self.read_blocking, blob)

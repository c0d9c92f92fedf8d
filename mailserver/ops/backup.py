"""Online backups: create, verify, restore, schedule with retention.

Decision 70/2009 Điều 7 khoản 1 asks for periodic backups of the system's data.

Theory of operation
-------------------
A backup is one directory (``<root>/<YYYYmmddTHHMMSSZ>``) holding::

    manifest.json      what is inside: every file with its sha256 and size
    manifest.sha256    sha256 of manifest.json (so the manifest cannot be altered unseen)
    db/                the index: SQLite online-backup copy, or a pg_dump archive
    maildir/<blob>     every message file the index refers to (the deleted-mail
                       vaults' files included: storage/sql/vault.py)
    spool/<blob>       every queued outbound message file
    files/<path>       the rest of the data directory (TLS, DKIM, CA…); private
                       material (keys, the portal's session key) as
                       ``<path>.enc`` when a passphrase is configured

Consistency while mail flows: the index is snapshotted first (SQLite backup
API, which reads one consistent snapshot; for PostgreSQL a REPEATABLE READ
transaction exports its snapshot and ``pg_dump --snapshot`` dumps exactly
that), and the list of message files is read from the *same* snapshot. The
store writes and fsyncs a message file before its row commits and unlinks
files only after their rows are gone (storage/sql/store.py), so every file the
snapshot names exists, unless it was expunged after the snapshot: such files
are listed in the manifest as ``vanished`` and their rows dropped on restore.
Mail delivered after the snapshot is simply not in this backup.

The backup is assembled under ``.partial-<name>`` and renamed at the end, so an
interrupted run never looks like a backup. ``--incremental`` hard-links message
files that the previous backup in the same root already holds (Maildir files
never change once written), so each backup stays complete on its own and
retention may delete any of them.

Private keys are encrypted with AES-256-GCM under a key derived from the
passphrase with scrypt (salt in the manifest); the manifest hashes the stored
(encrypted) bytes, so ``verify`` needs no passphrase.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import socket
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from sqlalchemy.engine import make_url

from mailserver.cluster import Cluster
from mailserver.config import Config
from mailserver.smtp.outbound_settings import spool_path
from pki.dkim import key_directory

log = logging.getLogger(__name__)

FORMAT: Final = 1
MANIFEST: Final = "manifest.json"
MANIFEST_SUM: Final = "manifest.sha256"
ENV_PASSPHRASE: Final = "MAILSERVER_BACKUP_PASSPHRASE"  # noqa: S105 - a variable name
_CHUNK: Final = 1 << 20
_NAME: Final = re.compile(r"^\d{8}T\d{6}Z(-\d+)?$")
_SECRET_DIRS: Final = ("tls", "dkim", "pki", "ca")
_SECRET_FILES: Final = ("web/session.key", "srs.key")
"""Secret files outside those directories: the key signing the portal's session
cookies (whoever has it can forge an operator's session, mailserver/web/server.py)
and the SRS secret (whoever has it can make the MX relay a "bounce" anywhere,
mailserver/smtp/srs.py)."""


class BackupError(Exception):
    """A backup that cannot be made, verified or restored; the text says why."""


@dataclass(frozen=True, slots=True)
class BackupResult:
    path: Path
    files: int
    octets: int
    linked: int
    """Message files hard-linked from the previous backup (incremental)."""
    vanished: int


@dataclass(slots=True)
class VerifyResult:
    path: Path
    files: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


# -- helpers -------------------------------------------------------------------


def load_passphrase(config: Config) -> bytes | None:
    env = os.environ.get(ENV_PASSPHRASE)
    if env:
        return env.encode()
    if config.backup.passphrase_file:
        try:
            text = Path(config.backup.passphrase_file).read_text("utf-8").strip()
        except OSError as exc:
            raise BackupError(f"cannot read backup.passphrase_file: {exc.strerror}") from None
        return text.encode() if text else None
    return None


def backup_root(config: Config) -> Path:
    return Path(config.backup.dir) if config.backup.dir else config.data_dir / "backups"


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _copy_hashing(src: Path, dst: Path) -> tuple[str, int]:
    dst.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    with src.open("rb") as fin, dst.open("wb") as fout:
        while chunk := fin.read(_CHUNK):
            digest.update(chunk)
            fout.write(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _derive(passphrase: bytes, salt: bytes) -> bytes:
    return Scrypt(salt=salt, length=32, n=2**15, r=8, p=1).derive(passphrase)


def _safe_relative(text: str) -> PurePosixPath:
    """A manifest path that cannot leave the backup (no absolute paths, no '..')."""
    path = PurePosixPath(text)
    if path.is_absolute() or any(part in ("", "..") for part in path.parts) or not path.parts:
        raise BackupError(f"manifest names an unsafe path: {text!r}")
    return path


def resolve_backup(path: Path) -> Path:
    """``path`` itself if it is a backup, else the newest backup inside it."""
    if (path / MANIFEST).is_file():
        return path
    found = list_backups(path)
    if not found:
        raise BackupError(f"{path}: no backup here (no {MANIFEST})")
    return found[-1]


def list_backups(root: Path) -> list[Path]:
    """Complete backups in ``root``, oldest first."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if _NAME.match(p.name) and (p / MANIFEST).is_file())


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads((path / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise BackupError(f"{path}: unreadable manifest: {exc}") from None
    if data.get("format") != FORMAT:
        raise BackupError(f"{path}: unknown backup format {data.get('format')!r}")
    return data


def _sqlite_path(url: str) -> Path:
    parsed = make_url(url)
    if not parsed.database:
        raise BackupError("in-memory SQLite databases cannot be backed up")
    return Path(parsed.database)


# -- the database snapshot -------------------------------------------------------


def _snapshot_sqlite(url: str, dest: Path) -> tuple[list[str], list[str]]:
    """Online copy with the SQLite backup API; the blob lists come from the copy."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(_sqlite_path(url), timeout=30)
    try:
        target = sqlite3.connect(dest)
        try:
            source.backup(target)  # one step: a single consistent read snapshot
            return _blob_lists(target)
        finally:
            target.close()
    finally:
        source.close()


def _blob_lists(conn: sqlite3.Connection) -> tuple[list[str], list[str]]:
    messages = [r[0] for r in conn.execute("SELECT blob FROM messages")]
    try:
        messages += [r[0] for r in conn.execute("SELECT blob FROM vault")]
    except sqlite3.OperationalError:  # a database from before the vault (0007_vault)
        pass
    try:
        spool = [r[0] for r in conn.execute("SELECT blob FROM outbound_messages")]
    except sqlite3.OperationalError:  # no queue tables in this database
        spool = []
    return messages, spool


def _pg_env(url: str) -> tuple[dict[str, str], list[str], str]:
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        # Never on the command line, where `ps` shows it.
        env["PGPASSWORD"] = str(parsed.password)
    args = ["-h", parsed.host or "127.0.0.1", "-p", str(parsed.port or 5432)]
    if parsed.username:
        args += ["-U", parsed.username]
    dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    return env, args, dsn


async def _run(argv: list[str], env: dict[str, str]) -> str:
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
    except FileNotFoundError:
        raise BackupError(f"{argv[0]} is not installed (Debian package postgresql-client)") from None
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise BackupError(f"{argv[0]} failed: {err.decode(errors='replace').strip()[:500]}")
    return out.decode(errors="replace")


async def _snapshot_postgres(url: str, dest: Path) -> tuple[list[str], list[str]]:
    import asyncpg  # type: ignore[import-untyped]

    env, args, dsn = _pg_env(url)
    database = make_url(url).database or ""
    version = await _run(["pg_dump", "--version"], env)
    conn = await asyncpg.connect(dsn)
    try:
        server_major = int(await conn.fetchval("SHOW server_version_num")) // 10000
        match = re.search(r"(\d+)(?:\.\d+)?", version)
        client_major = int(match.group(1)) if match else 0
        if client_major < server_major:
            raise BackupError(
                f"pg_dump {client_major} is older than the PostgreSQL {server_major} server; "
                "install a matching postgresql-client"
            )
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            snapshot = await conn.fetchval("SELECT pg_export_snapshot()")
            dest.parent.mkdir(parents=True, exist_ok=True)
            await _run(
                ["pg_dump", *args, "--snapshot", snapshot, "--format=custom", "--no-owner",
                 "--no-privileges", "--file", str(dest), database],
                env,
            )
            messages = [r[0] for r in await conn.fetch("SELECT blob FROM messages")]
            if await conn.fetchval("SELECT to_regclass('vault') IS NOT NULL"):
                messages += [r[0] for r in await conn.fetch("SELECT blob FROM vault")]
            has_queue = await conn.fetchval("SELECT to_regclass('outbound_messages') IS NOT NULL")
            spool = (
                [r[0] for r in await conn.fetch("SELECT blob FROM outbound_messages")] if has_queue else []
            )
    finally:
        await conn.close()
    return messages, spool


# -- create ----------------------------------------------------------------------


def _other_files(config: Config, skip: Iterable[Path]) -> list[tuple[PurePosixPath, Path, bool]]:
    """(relative path, absolute path, secret?) of the rest of the data directory."""
    root = config.data_dir.resolve()
    skipped = {p.resolve() for p in skip}
    db_names = {"mailserver.db", "mailserver.db-wal", "mailserver.db-shm", "mailserver.db-journal"}
    secret_roots = {(root / d).resolve() for d in _SECRET_DIRS}
    secret_roots.add(key_directory(config.dkim, config.data_dir).resolve())
    out: list[tuple[PurePosixPath, Path, bool]] = []
    if not root.is_dir():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if (here / d).resolve() not in skipped)
        for name in sorted(filenames):
            path = here / name
            if here == root and name in db_names:
                continue
            if not path.is_file() or path.is_symlink():
                continue
            rel = PurePosixPath(path.relative_to(root).as_posix())
            secret = str(rel) in _SECRET_FILES or (
                any(path.resolve().is_relative_to(s) for s in secret_roots)
                and not name.endswith((".crt", "cert.pem", ".pub"))
            )
            out.append((rel, path, secret))
    return out


def _timestamp_name(root: Path, now: datetime) -> str:
    base = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    name, n = base, 1
    while (root / name).exists() or (root / f".partial-{name}").exists():
        n += 1
        name = f"{base}-{n}"
    return name


def _assemble(
    config: Config,
    work: Path,
    messages: list[str],
    spool: list[str],
    previous: Path | None,
    passphrase: bytes | None,
    skip: list[Path],
) -> tuple[dict[str, dict[str, Any]], int, list[str], dict[str, str]]:
    files: dict[str, dict[str, Any]] = {}
    linked = 0
    vanished: list[str] = []
    prev_files: dict[str, dict[str, Any]] = {}
    if previous is not None:
        with contextlib.suppress(BackupError):
            prev_files = _read_manifest(previous)["files"]
    maildir_root = config.maildir
    spool_root = spool_path(config.outbound, config.data_dir)
    for prefix, root, blobs in (("maildir", maildir_root, messages), ("spool", spool_root, spool)):
        for blob in blobs:
            rel = f"{prefix}/{_safe_relative(blob)}"
            src = root / blob
            dst = work / rel
            before = prev_files.get(rel)
            if previous is not None and before is not None:
                try:
                    if src.stat().st_size == before["size"]:
                        dst.parent.mkdir(parents=True, exist_ok=True)
                        os.link(previous / rel, dst)
                        files[rel] = dict(before)
                        linked += 1
                        continue
                except FileNotFoundError:
                    pass  # fall through: copy (or record as vanished)
                except OSError:
                    pass  # another file system: copy instead of linking
            try:
                digest, size = _copy_hashing(src, dst)
            except FileNotFoundError:
                vanished.append(rel)
                continue
            files[rel] = {"sha256": digest, "size": size}
    kdf: dict[str, str] = {}
    aead: AESGCM | None = None
    if passphrase is not None:
        salt = secrets.token_bytes(16)
        kdf = {"name": "scrypt", "n": str(2**15), "r": "8", "p": "1", "salt": salt.hex()}
        aead = AESGCM(_derive(passphrase, salt))
    for rel_path, path, secret in _other_files(config, skip):
        rel = f"files/{rel_path}"
        dst = work / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            if secret and aead is not None:
                rel += ".enc"
                dst = work / rel
                nonce = secrets.token_bytes(12)
                sealed = nonce + aead.encrypt(nonce, path.read_bytes(), rel.encode())
                fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(sealed)
                files[rel] = {"sha256": hashlib.sha256(sealed).hexdigest(), "size": len(sealed)}
            else:
                digest, size = _copy_hashing(path, dst)
                if secret:
                    dst.chmod(0o600)
                files[rel] = {"sha256": digest, "size": size}
        except FileNotFoundError:
            continue  # removed while we walked: not part of the data any more
    return files, linked, vanished, kdf


def _fsync_tree(root: Path) -> None:
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            fd = os.open(Path(dirpath) / name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fd = os.open(dirpath, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


async def create_backup(
    config: Config,
    root: Path,
    *,
    incremental: bool = False,
    passphrase: bytes | None = None,
    now: datetime | None = None,
) -> BackupResult:
    """Back up the running (or stopped) server into a new directory under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    if (root / MANIFEST).exists():
        raise BackupError(f"{root} is a backup itself; give the directory that holds backups")
    previous = list_backups(root)[-1] if incremental and list_backups(root) else None
    name = _timestamp_name(root, now or datetime.now(UTC))
    work = root / f".partial-{name}"
    work.mkdir()
    try:
        url = config.storage_url
        backend = make_url(url).get_backend_name()
        if backend == "sqlite":
            db_rel = "db/mailserver.db"
            messages, spool = await asyncio.to_thread(_snapshot_sqlite, url, work / db_rel)
        elif backend == "postgresql":
            db_rel = "db/mailserver.pgdump"
            messages, spool = await _snapshot_postgres(url, work / db_rel)
        else:
            raise BackupError(f"cannot back up a {backend} database")
        skip = [config.maildir, spool_path(config.outbound, config.data_dir), root, backup_root(config)]
        files, linked, vanished, kdf = await asyncio.to_thread(
            _assemble, config, work, messages, spool, previous, passphrase, skip
        )
        files[db_rel] = dict(zip(("sha256", "size"), await asyncio.to_thread(
            lambda: (_sha256_file(work / db_rel), (work / db_rel).stat().st_size)), strict=True))
        manifest = {
            "format": FORMAT,
            "created_at": (now or datetime.now(UTC)).astimezone(UTC).isoformat(),
            "hostname": config.server.hostname,
            "host": socket.gethostname(),
            "backend": backend,
            "database": db_rel,
            "spool_dir": _relative_spool(config),
            "incremental_from": previous.name if previous is not None else None,
            "encryption": kdf or None,
            "vanished": vanished,
            "files": dict(sorted(files.items())),
        }
        text = json.dumps(manifest, indent=1, ensure_ascii=False).encode()
        (work / MANIFEST).write_bytes(text)
        (work / MANIFEST_SUM).write_text(hashlib.sha256(text).hexdigest() + "  " + MANIFEST + "\n")
        await asyncio.to_thread(_fsync_tree, work)
        final = root / name
        work.rename(final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    octets = sum(int(f["size"]) for f in files.values())
    log.info("backup %s: %d files, %d octets, %d linked, %d vanished", final, len(files), octets, linked,
             len(vanished))
    return BackupResult(final, len(files), octets, linked, len(vanished))


def _relative_spool(config: Config) -> str:
    spool = spool_path(config.outbound, config.data_dir)
    try:
        return spool.resolve().relative_to(config.data_dir.resolve()).as_posix()
    except ValueError:
        return "queue"


# -- verify ----------------------------------------------------------------------


def verify_backup(path: Path) -> VerifyResult:
    """Check the manifest's own checksum and every file's size and sha256."""
    path = resolve_backup(path)
    result = VerifyResult(path)
    text = (path / MANIFEST).read_bytes()
    try:
        expected = (path / MANIFEST_SUM).read_text().split()[0]
    except (OSError, IndexError):
        result.problems.append(f"{MANIFEST_SUM} is missing")
        expected = ""
    if expected and hashlib.sha256(text).hexdigest() != expected:
        result.problems.append(f"{MANIFEST} does not match {MANIFEST_SUM} (altered)")
    manifest = _read_manifest(path)
    listed: set[str] = set()
    for rel, meta in manifest["files"].items():
        listed.add(str(_safe_relative(rel)))
        file = path / rel
        result.files += 1
        try:
            size = file.stat().st_size
        except FileNotFoundError:
            result.problems.append(f"missing: {rel}")
            continue
        if size != meta["size"]:
            result.problems.append(f"size differs: {rel} ({size} != {meta['size']})")
        elif _sha256_file(file) != meta["sha256"]:
            result.problems.append(f"checksum differs: {rel}")
    for dirpath, _dirs, names in os.walk(path):
        for name in names:
            rel = (Path(dirpath) / name).relative_to(path).as_posix()
            if rel not in listed and rel not in (MANIFEST, MANIFEST_SUM):
                result.problems.append(f"not in the manifest: {rel}")
    return result


# -- restore ---------------------------------------------------------------------


async def restore_backup(
    path: Path,
    target: Path,
    *,
    passphrase: bytes | None = None,
    database_url: str | None = None,
) -> Path:
    """Restore into the empty data directory ``target`` (created if missing).
    A PostgreSQL backup needs ``database_url`` naming an empty database."""
    path = resolve_backup(path)
    checked = await asyncio.to_thread(verify_backup, path)
    if not checked.ok:
        raise BackupError(f"{path} failed verification: {'; '.join(checked.problems[:5])}")
    manifest = _read_manifest(path)
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} is not empty; restore only into an empty data directory")
    encryption = manifest.get("encryption")
    aead: AESGCM | None = None
    if encryption:
        if passphrase is None:
            raise BackupError(
                f"this backup's keys are encrypted: set {ENV_PASSPHRASE} or backup.passphrase_file"
            )
        aead = AESGCM(_derive(passphrase, bytes.fromhex(encryption["salt"])))
    if manifest["backend"] == "postgresql" and not database_url:
        raise BackupError("a PostgreSQL backup needs --database-url of an empty database to restore into")
    target.mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread(_restore_files, path, target, manifest, aead)
    vanished = [v.split("/", 1) for v in manifest.get("vanished", [])]
    if manifest["backend"] == "sqlite":
        db = target / "mailserver.db"
        await asyncio.to_thread(shutil.copyfile, path / manifest["database"], db)
        await asyncio.to_thread(_prune_sqlite, db, vanished)
    else:
        assert database_url is not None  # noqa: S101 - checked above
        env, args, _dsn = _pg_env(database_url)
        await _run(["pg_restore", *args, "--no-owner", "--no-privileges", "--exit-on-error",
                    "-d", make_url(database_url).database or "", str(path / manifest["database"])], env)
        await _prune_postgres(database_url, vanished)
    return path


def _restore_files(path: Path, target: Path, manifest: dict[str, Any], aead: AESGCM | None) -> None:
    spool_dir = _safe_relative(manifest.get("spool_dir") or "queue")
    for rel in manifest["files"]:
        safe = _safe_relative(rel)
        top, rest = safe.parts[0], PurePosixPath(*safe.parts[1:]) if len(safe.parts) > 1 else None
        if rest is None or top == "db":
            continue
        if top == "maildir":
            dst = target / "maildir" / rest
        elif top == "spool":
            dst = target / spool_dir / rest
        elif top == "files":
            dst = target / rest
        else:
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if top == "files" and rel.endswith(".enc") and aead is not None:
            sealed = (path / rel).read_bytes()
            try:
                plain = aead.decrypt(sealed[:12], sealed[12:], rel.encode())
            except InvalidTag:
                raise BackupError("wrong backup passphrase (cannot decrypt the keys)") from None
            dst = dst.with_name(dst.name[: -len(".enc")])
            fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(plain)
        else:
            shutil.copy2(path / rel, dst)


_RECOUNT: Final = (
    "UPDATE accounts SET "
    "storage_used = (SELECT COALESCE(SUM(m.size), 0) FROM messages m JOIN folders f "
    "ON f.id = m.folder_id WHERE f.account_id = accounts.id), "
    "message_count = (SELECT COUNT(m.id) FROM messages m JOIN folders f "
    "ON f.id = m.folder_id WHERE f.account_id = accounts.id)"
)
"""The quota usage counters (storage 0006_quota) recounted after rows were pruned;
a backup older than that revision has none (the upgrade at start counts them)."""


def _prune_sqlite(db: Path, vanished: list[list[str]]) -> None:
    if not vanished:
        return
    conn = sqlite3.connect(db)
    try:
        with conn:
            for kind, blob in vanished:
                if kind == "maildir":
                    conn.execute("DELETE FROM messages WHERE blob = ?", (blob,))
                    with contextlib.suppress(sqlite3.OperationalError):  # no vault table
                        conn.execute("DELETE FROM vault WHERE blob = ?", (blob,))
                else:
                    conn.execute("DELETE FROM outbound_messages WHERE blob = ?", (blob,))
            columns = {row[1] for row in conn.execute("PRAGMA table_info(accounts)")}
            if "storage_used" in columns:
                conn.execute(_RECOUNT)
    finally:
        conn.close()


async def _prune_postgres(url: str, vanished: list[list[str]]) -> None:
    if not vanished:
        return
    import asyncpg

    conn = await asyncpg.connect(_pg_env(url)[2])
    try:
        has_vault = await conn.fetchval("SELECT to_regclass('vault') IS NOT NULL")
        for kind, blob in vanished:
            table = "messages" if kind == "maildir" else "outbound_messages"
            await conn.execute(f"DELETE FROM {table} WHERE blob = $1", blob)  # noqa: S608 - fixed names
            if kind == "maildir" and has_vault:
                await conn.execute("DELETE FROM vault WHERE blob = $1", blob)
        counted = await conn.fetchval(
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_name = 'accounts' AND column_name = 'storage_used'"
        )
        if counted:
            await conn.execute(_RECOUNT)
    finally:
        await conn.close()


# -- retention and schedule --------------------------------------------------------


def prune_backups(root: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` backups (and leftovers of interrupted runs)."""
    removed: list[Path] = []
    backups = list_backups(root)
    for old in backups[: max(0, len(backups) - max(keep, 1))]:
        shutil.rmtree(old)
        removed.append(old)
    if root.is_dir():
        for partial in root.glob(".partial-*"):
            shutil.rmtree(partial, ignore_errors=True)
    return removed


def parse_schedule(text: str) -> tuple[int, int] | None:
    """``"daily HH:MM"`` -> (hour, minute); ``""`` -> None; anything else is an error."""
    if not text.strip():
        return None
    match = re.fullmatch(r"\s*daily\s+(\d{1,2}):(\d{2})\s*", text)
    if match is None or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise BackupError(f'backup.schedule must be "daily HH:MM" or empty, got {text!r}')
    return int(match.group(1)), int(match.group(2))


def next_run(schedule: tuple[int, int], now: datetime) -> datetime:
    """The next local ``HH:MM`` strictly after ``now`` (an aware datetime)."""
    candidate = now.replace(hour=schedule[0], minute=schedule[1], second=0, microsecond=0)
    if candidate <= now:
        candidate += timedelta(days=1)
    return candidate


async def backup_loop(config: Config, cluster: Cluster | None = None) -> None:
    """The server's own schedule: back up at ``backup.schedule``, keep ``backup.keep``;
    with several nodes, one of them per scheduled time (``cluster``)."""
    schedule = parse_schedule(config.backup.schedule)
    if schedule is None:
        return
    root = backup_root(config)
    cluster = cluster or Cluster(None)

    async def back_up() -> None:
        result = await create_backup(
            config, root, incremental=config.backup.incremental, passphrase=load_passphrase(config)
        )
        removed = await asyncio.to_thread(prune_backups, root, config.backup.keep)
        log.info("scheduled backup %s done; %d old backup(s) removed", result.path.name, len(removed))

    while True:
        now = datetime.now().astimezone()
        due = next_run(schedule, now)
        await asyncio.sleep(max((due - now).total_seconds(), 1.0))
        try:
            await cluster.run_once("backup", due.astimezone(UTC).isoformat(timespec="minutes"), back_up)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("scheduled backup failed")

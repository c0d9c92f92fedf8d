"""Issue 16: the portal's session key (``<data_dir>/web/session.key``, which signs
operators' session cookies) is private material: a backup with a passphrase
holds it encrypted like the TLS, DKIM and CA keys, and a restore gives it back.
``mailserver backup create|restore`` run as the operator does (subprocess)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from mailserver.app import App
from tests.conftest import make_config
from tests.ops.conftest import cli

PASSPHRASE = "cum-tu-bi-mat-sao-luu"


def test_session_key_encrypted_in_backup(tmp_path: Path) -> None:
    data = tmp_path / "data"

    async def run_portal_once() -> None:
        async with App(make_config(data)):  # the portal creates its key at start
            pass

    asyncio.run(run_portal_once())
    key_file = data / "web" / "session.key"
    key = key_file.read_bytes()
    assert len(key) == 64
    config = tmp_path / "mailserver.toml"
    config.write_text(f'[server]\ndata_dir = "{data}"\n', "utf-8")
    env = {**os.environ, "MAILSERVER_BACKUP_PASSPHRASE": PASSPHRASE}
    env.pop("MAILSERVER_MIGRATE_INLINE", None)
    created = cli(config, "backup", "create", str(tmp_path / "backups"), env=env)
    assert created.returncode == 0, created.stderr
    [backup] = [p for p in (tmp_path / "backups").iterdir() if not p.name.startswith(".")]
    stored = backup / "files" / "web"
    assert not (stored / "session.key").exists(), "the session key in clear"
    sealed = (stored / "session.key.enc").read_bytes()
    assert key not in sealed and bytes.fromhex(key.decode()) not in sealed
    everything = b"".join(p.read_bytes() for p in backup.rglob("*") if p.is_file())
    assert key not in everything
    assert cli(config, "backup", "verify", str(tmp_path / "backups"), env=env).returncode == 0
    target = tmp_path / "r"
    restored = cli(config, "backup", "restore", str(tmp_path / "backups"), "--to", str(target), env=env)
    assert restored.returncode == 0, restored.stderr
    assert (tmp_path / "r" / "web" / "session.key").read_bytes() == key
    assert (tmp_path / "r" / "web" / "session.key").stat().st_mode & 0o077 == 0

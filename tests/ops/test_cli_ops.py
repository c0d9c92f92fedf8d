"""The operator commands end to end: ``mail find``/``mail remove`` with an audit
record, ``report`` output formats, ``backup`` create/verify/restore and their
clear errors."""

from __future__ import annotations

import json
from pathlib import Path

from tests.ops.conftest import cli, server_config

ADDRESS = "annv@dongnai.gov.vn"


def test_mail_find_remove_report_and_backup_commands(tmp_path: Path) -> None:
    config = server_config(tmp_path)
    assert cli(config, "account", "add", ADDRESS, "--password-stdin", "--no-change-required",
               stdin="Mot-mat-khau-rat-dai-2026\n").returncode == 0
    import asyncio

    from mailserver.config import load
    from storage import open_store

    async def seed() -> None:
        cfg = load(config)
        store = open_store(cfg.storage_url, cfg.maildir)
        await store.start()
        account = await store.get_account(ADDRESS)
        assert account is not None
        for subject in ("Quảng cáo cờ bạc", "Công văn số 12", "quảng cáo lần 2"):
            message = f"From: spam@example.org\r\nSubject: {subject}\r\n\r\nx\r\n".encode()
            await store.deliver([account.id], message)
        await store.close()

    asyncio.run(seed())
    found = cli(config, "mail", "find", "--header", "subject:quảng cáo", "--json")
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)
    assert sorted(h["uid"] for h in hits) == [1, 3] and all(h["address"] == ADDRESS for h in hits)
    bad = cli(config, "mail", "find", "--header", "x-spam:yes")
    assert bad.returncode == 1 and "cannot search header" in bad.stderr and "Traceback" not in bad.stderr
    ids = [str(h["id"]) for h in hits]
    removed = cli(config, "mail", "remove", *ids, "--reason", "nội dung không phù hợp")
    assert removed.returncode == 0, removed.stderr
    assert json.loads(cli(config, "mail", "find", "--header", "subject:quảng cáo", "--json").stdout) == []
    audit = json.loads(cli(config, "audit", "--json").stdout)
    entries = [e for e in audit if e["action"] == "mail.remove"]
    assert len(entries) == 2 and entries[0]["detail"]["reason"] == "nội dung không phù hợp"
    missing = cli(config, "mail", "remove", "999999", "--reason", "x")
    assert missing.returncode == 1 and "no message with id 999999" in missing.stderr

    html = tmp_path / "report.html"
    usage = cli(config, "report", "usage", "--from", "2020-01-01", "--to", "2030-12-31", "--format", "html",
                "-o", str(html))
    assert usage.returncode == 0, usage.stderr
    assert "<svg" in html.read_text()
    as_json = json.loads(cli(config, "report", "usage", "--from", "2020-01-01", "--to", "2030-12-31",
                             "--format", "json").stdout)
    assert as_json["accounts"][0]["received_external"] == 1  # the one not removed
    wrong = cli(config, "report", "usage", "--from", "2025-13-01", "--to", "2025-12-31")
    assert wrong.returncode == 1 and "not a date" in wrong.stderr
    checks = cli(config, "report", "checks", "--date", "2025-03-04", "--json")
    assert checks.returncode == 0 and json.loads(checks.stdout)["working_day"] is True

    created = cli(config, "backup", "create", str(tmp_path / "backups"))
    assert created.returncode == 0, created.stderr
    assert cli(config, "backup", "verify", str(tmp_path / "backups")).returncode == 0
    restored = cli(config, "backup", "restore", str(tmp_path / "backups"), "--to", str(tmp_path / "r"))
    assert restored.returncode == 0, restored.stderr
    assert (tmp_path / "r" / "mailserver.db").exists()
    again = cli(config, "backup", "restore", str(tmp_path / "backups"), "--to", str(tmp_path / "r"))
    assert again.returncode == 1 and "not empty" in again.stderr
    nothing = cli(config, "backup", "verify", str(tmp_path / "nowhere"))
    assert nothing.returncode == 1 and "no backup here" in nothing.stderr

"""``mailserver queue …`` as an operator runs it: a subprocess against a data dir
whose queue holds mail for a remote MX that is down."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from pathlib import Path
from typing import Any

from mailserver import config as config_mod
from mailserver.app import App
from storage.api import INBOX
from tests.clients.test_submission import ANNV, OUTSIDE, PASSWORD, eventually, message, parse, submit
from tests.conftest import RunningServer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(tmp_path: Path, down_port: int) -> Path:
    path = tmp_path / "mailserver.toml"
    path.write_text(
        f"""
[server]
hostname = "mx.test.dongnai.gov.vn"
data_dir = "{tmp_path / 'data'}"
[smtp]
listen = "127.0.0.1:0"
[submission]
listen = "127.0.0.1:0"
tls_listen = "127.0.0.1:0"
allow_plaintext_auth = true
[imap]
listen = "127.0.0.1:0"
tls_listen = "127.0.0.1:0"
[managesieve]
listen = "127.0.0.1:0"
[dns]
use_servers = false
[outbound]
static_routes = {{ "example.org" = "127.0.0.1:{down_port}" }}
retry_base = 3600
poll_interval = 0.1
delay_warning_hours = 0
""",
        encoding="utf-8",
    )
    return path


async def cli(config: Path, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mailserver", "--config", str(config), "queue", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def queued_json(config: Path) -> list[dict[str, Any]]:
    code, out, err = await cli(config, "list", "--json")
    assert code == 0, err
    result: list[dict[str, Any]] = json.loads(out)
    return result


async def test_queue_cli(tmp_path: Path) -> None:
    path = write_config(tmp_path, free_port())
    config = config_mod.load(path)
    async with App(config) as app:
        running = RunningServer(app, config)
        await running.add_account(ANNV, PASSWORD)
        for subject in ("Thứ nhất", "Thứ hai"):
            await submit(running, ANNV, [OUTSIDE], message(ANNV, [OUTSIDE], subject))

        async def both_tried() -> bool:
            queued = await app.queue.list()
            return len(queued) == 2 and all(m.recipients[0].attempts >= 1 for m in queued)

        await eventually(both_tried, "first attempts made")

    listing = await queued_json(path)
    assert [m["sender"] for m in listing] == [ANNV, ANNV]
    first, second = (m["id"] for m in listing)
    rcpt = listing[0]["recipients"][0]
    assert rcpt["address"] == OUTSIDE and rcpt["state"] == "queued" and rcpt["attempts"] >= 1
    assert "cannot connect" in rcpt["last_error"]

    code, out, _ = await cli(path, "list")
    assert code == 0 and f"{first}" in out and "1 of 1 waiting" in out
    code, out, _ = await cli(path, "show", str(first), "--json")
    assert code == 0 and json.loads(out)["recipients"][0]["address"] == OUTSIDE
    code, out, _ = await cli(path, "show", str(first))
    assert code == 0 and f"<{OUTSIDE}> queued" in out
    code, out, _ = await cli(path, "retry", str(first))
    assert code == 0 and out.startswith("1 recipient")
    code, out, _ = await cli(path, "retry", "--all")
    assert code == 0 and out.startswith("2 recipient")
    code, _, err = await cli(path, "show", "999999")
    assert code == 1 and "no queued message 999999" in err

    code, out, _ = await cli(path, "delete", str(second))
    assert code == 0
    code, out, _ = await cli(path, "bounce", str(first))
    assert code == 0
    (left,) = await queued_json(path)
    assert left["id"] == first and left["bounce_requested"] is True

    # The server's worker returns the message to its (local) sender.
    async with App(config) as app:
        running = RunningServer(app, config)

        async def bounced() -> bool:
            return not await app.queue.list()

        await eventually(bounced, "bounce processed")
        account = await app.store.get_account(ANNV)
        assert account is not None
        folder = await app.store.get_folder(account.id, INBOX)
        (info,) = await app.store.list_messages(account.id, folder.id)
        report = parse(await app.store.read_message(account.id, folder.id, info.uid))
        per_recipient = report.get_payload()[1].get_payload()[1]
        assert per_recipient["Action"] == "failed" and per_recipient["Status"] == "5.0.0"
    assert await queued_json(path) == []
    assert not any((tmp_path / "data" / "queue" / "msg").iterdir())

"""``mailserver migrate imap`` against a real Dovecot started by the test
(tests/transfer/dovecot.py): thousands of messages in a dozen folders move over
with identical bytes, flags and dates; runs are idempotent and resumable."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient

from storage.api import FlagMode, Uid
from tests.transfer.dovecot import Dovecot, available, running_dovecot
from tests.transfer.helpers import (
    ANNV,
    Snapshot,
    add_accounts,
    cli,
    count,
    expected,
    make_mailbox,
    snapshot,
    with_store,
    write_config,
)

pytestmark = pytest.mark.skipif(not available(), reason="dovecot-imapd is not installed")

PASSWORD = "nguon-Secret-1"


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    with running_dovecot() as server:
        yield server


def source_snapshot(dovecot: Dovecot, user: str) -> Snapshot:
    """The source as Dovecot serves it, read with IMAPClient (not our code)."""
    out: Snapshot = {}
    with IMAPClient("127.0.0.1", port=dovecot.port, ssl=False) as client:
        client.normalise_times = False
        client.login(user, PASSWORD)
        for _, delimiter, name in client.list_folders():
            client.select_folder(name, readonly=True)
            uids = client.search("ALL")
            fetched = client.fetch(uids, ["BODY.PEEK[]", "FLAGS", "INTERNALDATE"]) if uids else {}
            counter: Counter[tuple[str, frozenset[str], datetime]] = Counter()
            for item in fetched.values():
                flags = frozenset(f.decode() for f in item[b"FLAGS"] if f.lower() != b"\\recent")
                date = item[b"INTERNALDATE"].astimezone(UTC)
                counter[(hashlib.sha256(item[b"BODY[]"]).hexdigest(), flags, date)] += 1
            if counter:
                out[name.replace(delimiter.decode(), "/")] = counter
    return out


def args(dovecot: Dovecot, user: str, to: str, pw_file: Path, *extra: str) -> list[str]:
    return ["migrate", "imap", "--host", "127.0.0.1", "--port", str(dovecot.port), "--user", user,
            "--password-file", str(pw_file), "--to", to, *extra]


def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "password"
    path.write_text(PASSWORD + "\n", encoding="utf-8")
    return path


def summary(out: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(out)
    return data


async def test_thousands_of_messages_move_over_after_an_interruption(
    dovecot: Dovecot, tmp_path: Path
) -> None:
    user = "big@binhphuoc.gov.vn"
    mailbox = make_mailbox(1, 3000)
    dovecot.add_user(user, PASSWORD)
    dovecot.fill(user, mailbox)
    want = expected(mailbox)
    assert count(want) == 3001 and len(want) == 12
    # The generated mailbox is what Dovecot serves: the folder names as Dovecot lists them.
    served = source_snapshot(dovecot, user)
    renamed = {"Sent": "Sent Items", "Trash": "Deleted Items", "Junk": "Spam"}
    assert {renamed.get(k, k): v for k, v in want.items()} == served

    config = write_config(tmp_path)
    await add_accounts(config, ANNV)
    pw = password_file(tmp_path)

    # First run: killed once the progress bar shows 30 %.
    proc = await asyncio.create_subprocess_exec(
        "python", "-m", "mailserver", "--config", str(config), *args(dovecot, user, ANNV, pw),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ},
    )
    assert proc.stderr is not None
    seen: list[bytes] = []
    while True:
        line = await proc.stderr.readline()
        assert line, f"ended before 30 %: {b''.join(seen)!r}"
        seen.append(line)
        if b": 30% (" in line:
            break
    proc.kill()
    await proc.wait()
    partial = await snapshot(config, ANNV)
    assert 0 < count(partial) < 3001

    # Second run: completes, without duplicates.
    code, out, err = await cli(config, *args(dovecot, user, ANNV, pw), "--json")
    assert code == 0, err
    result = summary(out)["mailboxes"][0]
    assert result["errors"] == 0 and result["copied"] + result["present"] == 3001
    assert result["present"] >= count(partial) - 1
    assert await snapshot(config, ANNV) == want

    # Third run: nothing new.
    code, out, err = await cli(config, *args(dovecot, user, ANNV, pw), "--json")
    assert code == 0, err
    result = summary(out)["mailboxes"][0]
    assert (result["copied"], result["present"]) == (0, 3001)
    assert await snapshot(config, ANNV) == want
    # The plain summary names the mailbox and its counts.
    code, out, _ = await cli(config, *args(dovecot, user, ANNV, pw))
    assert code == 0 and "0 đã chép / copied, 3001 đã có / already there" in out


SMALL_FOLDERS = ("INBOX", "Sent Items", "Spam", "Công văn đến", "Dự án/Cầu Đồng Nai")


async def test_dry_run_since_folder_map_and_the_ledger(dovecot: Dovecot, tmp_path: Path) -> None:
    user = "small@binhphuoc.gov.vn"
    mailbox = make_mailbox(2, 300, SMALL_FOLDERS)
    dovecot.add_user(user, PASSWORD)
    dovecot.fill(user, mailbox)
    config = write_config(tmp_path)
    first, second = ANNV, "lttb@dongnai.gov.vn"
    await add_accounts(config, first, second)
    pw = password_file(tmp_path)

    # --dry-run: the count a real run would copy, and nothing written.
    code, out, err = await cli(config, *args(dovecot, user, first, pw), "--dry-run", "--json")
    assert code == 0, err
    assert summary(out)["mailboxes"][0]["copied"] == 301
    assert await snapshot(config, first) == {}
    store = await with_store(config)
    try:
        account = await store.get_account(first)
        assert account is not None
        names = {f.name for f in await store.list_folders(account.id)}
        assert "Công văn đến" not in names
    finally:
        await store.close()

    # --since: only mail received on or after the date (Việt Nam time).
    since = datetime(2018, 1, 1, tzinfo=timezone(timedelta(hours=7)))
    code, out, err = await cli(config, *args(dovecot, user, first, pw), "--since", "2018-01-01", "--json")
    assert code == 0, err
    want = expected(mailbox, since=since)
    assert 0 < count(want) < 301
    assert await snapshot(config, first) == want
    assert summary(out)["mailboxes"][0]["skipped_since"] == 301 - count(want)

    # A message deleted here after the move does not come back on the next run.
    store = await with_store(config)
    try:
        account = await store.get_account(first)
        assert account is not None
        inbox = await store.get_folder(account.id, "INBOX")
        victim = (await store.list_messages(account.id, inbox.id))[0].uid
        await store.store_flags(account.id, inbox.id, [Uid(victim)], ["\\Deleted"], FlagMode.ADD)
        assert await store.expunge(account.id, inbox.id) == [victim]
    finally:
        await store.close()
    code, out, err = await cli(config, *args(dovecot, user, first, pw), "--since", "2018-01-01", "--json")
    assert code == 0, err
    assert summary(out)["mailboxes"][0]["copied"] == 0
    assert count(await snapshot(config, first)) == count(want) - 1
    code, out, err = await cli(config, *args(dovecot, user, first, pw), "--since", "2018-01-01", "--json",
                               "--dry-run")
    assert code == 0 and summary(out)["mailboxes"][0]["copied"] == 0

    # --folder-map: a folder (and its children) elsewhere; an empty target skips one.
    code, out, err = await cli(
        config, *args(dovecot, user, second, pw),
        "--folder-map", "Công văn đến=Lưu trữ/Công văn đến", "--folder-map", "Dự án=Dự án cũ",
        "--folder-map", "Spam=", "--json",
    )
    assert code == 0, err
    want = expected(mailbox, where={"Công văn đến": "Lưu trữ/Công văn đến",
                                    "Dự án/Cầu Đồng Nai": "Dự án cũ/Cầu Đồng Nai", "Spam": None})
    assert await snapshot(config, second) == want
    assert "Junk" not in want and "Lưu trữ/Công văn đến" in want


async def test_wrong_password_is_a_clear_error(dovecot: Dovecot, tmp_path: Path) -> None:
    user = "locked@binhphuoc.gov.vn"
    dovecot.add_user(user, "another-password")
    config = write_config(tmp_path)
    await add_accounts(config, ANNV)
    code, out, err = await cli(config, *args(dovecot, user, ANNV, password_file(tmp_path)))
    assert code == 1
    assert "từ chối đăng nhập" in err and "refused the login" in err
    assert "Traceback" not in err + out
    # Unreachable server and a missing account: clear too.
    code, _, err = await cli(config, "migrate", "imap", "--host", "127.0.0.1", "--port", "1", "--user", user,
                             "--password-file", str(password_file(tmp_path)), "--to", ANNV)
    assert code == 1 and "cannot connect to the source server 127.0.0.1:1" in err
    code, _, err = await cli(config, *args(dovecot, user, "nobody@dongnai.gov.vn", password_file(tmp_path)))
    assert code == 1 and "no such account nobody@dongnai.gov.vn" in err
    code, _, err = await cli(config, "migrate", "imap", "--host", "127.0.0.1")
    assert code == 1 and "--user" in err and "Traceback" not in err


async def test_csv_of_mailboxes_with_a_bad_row(dovecot: Dovecot, tmp_path: Path) -> None:
    users = ("csv1@binhphuoc.gov.vn", "csv2@binhphuoc.gov.vn")
    mailboxes = [make_mailbox(10 + i, 40, ("INBOX", "Sent Items", "Công văn đi")) for i in range(2)]
    for user, mailbox in zip(users, mailboxes, strict=True):
        dovecot.add_user(user, PASSWORD)
        dovecot.fill(user, mailbox)
    config = write_config(tmp_path)
    targets = ("a@dongnai.gov.vn", "b@dongnai.gov.vn")
    await add_accounts(config, *targets)
    password_file(tmp_path)
    rows = [
        "to,host,port,security,user,password_file,folder_map,since",
        f"{targets[0]},127.0.0.1,{dovecot.port},plain,{users[0]},password,,",
        f"{targets[1]},,{dovecot.port},plain,{users[1]},password,,",  # no host
        f"{targets[1]},127.0.0.1,{dovecot.port},carrier-pigeon,{users[1]},password,,",
        f"{targets[1]},127.0.0.1,{dovecot.port},plain,{users[1]},password,Công văn đi=Đi,2015-01-01",
    ]
    (tmp_path / "mailboxes.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    code, out, err = await cli(config, "migrate", "imap", "--csv", str(tmp_path / "mailboxes.csv"))
    assert code == 1  # bad rows make the status non-zero; the good rows were done
    assert "row 3" in err and "missing column value: host" in err
    assert "row 4" in err and "carrier-pigeon" in err
    assert "Traceback" not in err
    assert await snapshot(config, targets[0]) == expected(mailboxes[0])
    since = datetime(2015, 1, 1, tzinfo=timezone(timedelta(hours=7)))
    want = expected(mailboxes[1], since=since, where={"Công văn đi": "Đi"})
    assert await snapshot(config, targets[1]) == want
    assert "Tổng / Total: 2 hộp thư / mailboxes" in out


async def test_tls_and_starttls(dovecot: Dovecot, tmp_path: Path) -> None:
    user = "tls@binhphuoc.gov.vn"
    mailbox = make_mailbox(20, 30, ("INBOX", "Công văn đi"))
    dovecot.add_user(user, PASSWORD)
    dovecot.fill(user, mailbox)
    config = write_config(tmp_path)
    await add_accounts(config, ANNV, "b@dongnai.gov.vn")
    pw = password_file(tmp_path)
    code, _, err = await cli(config, *args(dovecot, user, ANNV, pw), "--starttls",
                             "--ca-file", str(dovecot.ca_file))
    assert code == 0, err
    assert await snapshot(config, ANNV) == expected(mailbox)
    tls = ["migrate", "imap", "--host", "127.0.0.1", "--port", str(dovecot.tls_port), "--tls", "--user", user,
           "--password-file", str(pw), "--to", "b@dongnai.gov.vn"]
    code, _, err = await cli(config, *tls, "--ca-file", str(dovecot.ca_file))
    assert code == 0, err
    assert await snapshot(config, "b@dongnai.gov.vn") == expected(mailbox)
    # A certificate nobody vouched for: refused, clearly.
    code, _, err = await cli(config, *tls)
    assert code == 1 and "TLS error with 127.0.0.1" in err and "CERTIFICATE_VERIFY_FAILED" in err
    assert "Traceback" not in err


async def test_message_errors_are_reported_and_the_rest_goes_on(dovecot: Dovecot, tmp_path: Path) -> None:
    """A destination that runs out of quota halfway: the messages refused are
    listed one by one, the run finishes its folders, and once the quota is raised
    the next run copies exactly the missing ones."""
    user = "quota@binhphuoc.gov.vn"
    mailbox = make_mailbox(30, 120, ("INBOX", "Sent Items", "Công văn đến"))
    dovecot.add_user(user, PASSWORD)
    dovecot.fill(user, mailbox)
    config = write_config(tmp_path)
    await add_accounts(config, ANNV)
    pw = password_file(tmp_path)
    total = sum(len(m.data.replace(b"\n", b"\r\n")) for ms in mailbox.values() for m in ms)
    code, _, err = await cli(config, "account", "set-quota", ANNV, str(total // 2))
    assert code == 0, err
    code, out, err = await cli(config, *args(dovecot, user, ANNV, pw), "--json")
    assert code == 1
    result = summary(out)["mailboxes"][0]
    assert result["error"] is None
    assert 0 < result["copied"] < 121 and result["errors"] == 121 - result["copied"]
    assert len(result["message_errors"]) == result["errors"]
    assert all(" UID " in line and "quota" in line for line in result["message_errors"])
    code, out, err = await cli(config, *args(dovecot, user, ANNV, pw))
    assert code == 1 and "lỗi / error: " in out and "Traceback" not in err
    code, _, err = await cli(config, "account", "set-quota", ANNV, "0")
    assert code == 0, err
    code, out, err = await cli(config, *args(dovecot, user, ANNV, pw), "--json")
    assert code == 0, err
    assert summary(out)["mailboxes"][0]["errors"] == 0
    assert await snapshot(config, ANNV) == expected(mailbox)

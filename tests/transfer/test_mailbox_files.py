"""``mailserver mailbox export|import``: round trips through mbox and Maildir
keep bytes, flags, keywords, dates and folders; imports are idempotent; our
Maildir export is read by a real Dovecot, and Dovecot's Maildir is imported."""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from imapclient import IMAPClient

from storage.api import INBOX
from tests.transfer.dovecot import Dovecot, available, running_dovecot
from tests.transfer.helpers import (
    ANNV,
    OURS,
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

OTHER = "lttb@dongnai.gov.vn"
THIRD = "ntmai@dongnai.gov.vn"


async def fill_account(config: Path, address: str, seed: int, total: int) -> Snapshot:
    """Our account filled through the store, with the folders named as ours."""
    mailbox = make_mailbox(seed, total)
    store = await with_store(config)
    try:
        account = await store.get_account(address)
        assert account is not None
        for source, messages in mailbox.items():
            name = OURS.get(source, source)
            try:
                folder = await store.get_folder(account.id, name)
            except Exception:  # noqa: BLE001 - NoSuchFolder: create it
                folder = await store.create_folder(account.id, name)
            for m in messages:
                await store.append(account.id, folder.id, m.data.replace(b"\n", b"\r\n"), flags=m.flags,
                                   internal_date=m.internal_date)
    finally:
        await store.close()
    return expected(mailbox)


@pytest.mark.parametrize("kind", ["mbox", "maildir"])
async def test_export_then_import_round_trip(tmp_path: Path, kind: str) -> None:
    config = write_config(tmp_path)
    await add_accounts(config, ANNV, OTHER, THIRD)
    want = await fill_account(config, ANNV, 3, 400)
    assert await snapshot(config, ANNV) == want
    out = tmp_path / "export"
    code, stdout, err = await cli(config, "mailbox", "export", ANNV, "--format", kind, "-o", str(out),
                                  "--json")
    assert code == 0, err
    assert json.loads(stdout)["copied"] == 401
    if kind == "mbox":
        assert (out / "INBOX.mbox").is_file() and (out / "Dự án" / "Cầu Đồng Nai.mbox").is_file()
        raw = (out / "INBOX.mbox").read_bytes()
        assert b"\n>From the mbox point of view" in raw and b"\n>>From this one too." in raw
    else:
        assert (out / "cur").is_dir() and (out / ".D&HvE- &AOE-n.C&Hqc-u &ARAe0w-ng Nai" / "cur").is_dir()

    # --dry-run writes nothing.
    code, stdout, err = await cli(config, "mailbox", "import", THIRD, str(out), "--dry-run", "--json")
    assert code == 0, err
    assert json.loads(stdout)["copied"] == 401
    assert await snapshot(config, THIRD) == {}

    code, stdout, err = await cli(config, "mailbox", "import", OTHER, str(out), "--json")
    assert code == 0, err
    assert json.loads(stdout)["copied"] == 401
    assert await snapshot(config, OTHER) == want
    # Again: nothing new.
    code, stdout, err = await cli(config, "mailbox", "import", OTHER, str(out), "--json")
    assert code == 0, err
    assert (json.loads(stdout)["copied"], json.loads(stdout)["present"]) == (0, 401)
    assert await snapshot(config, OTHER) == want

    # Exporting into a directory that has files is refused, clearly.
    code, _, err = await cli(config, "mailbox", "export", ANNV, "--format", kind, "-o", str(out))
    assert code == 1 and "the output directory must be empty" in err and "Traceback" not in err


async def test_a_single_mbox_file_goes_to_inbox_or_a_named_folder(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    await add_accounts(config, ANNV, OTHER)
    await fill_account(config, ANNV, 4, 60)
    out = tmp_path / "export"
    code, _, err = await cli(config, "mailbox", "export", ANNV, "--format", "mbox", "-o", str(out))
    assert code == 0, err
    sent = (await snapshot(config, ANNV))["Sent"]
    code, _, err = await cli(config, "mailbox", "import", OTHER, str(out / "Sent.mbox"),
                             "--folder", "Cũ/Đã gửi")
    assert code == 0, err
    assert (await snapshot(config, OTHER)) == {"Cũ/Đã gửi": sent}


async def test_a_directory_of_eml_files(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    await add_accounts(config, ANNV)
    root = tmp_path / "eml"
    (root / "Công văn").mkdir(parents=True)
    letters = {
        root / "a.eml": b"Subject: a\nDate: Mon, 02 Mar 2015 08:30:00 +0700\nMessage-ID: <a@x>\n\nBody a\n",
        root / "Công văn" / "b.EML": b"Subject: b\r\nDate: 1 Jan 2020 00:00:01 -0000\r\n\r\nBody b\r\n",
        root / "Công văn" / "c.eml": b"Subject: c (no date)\n\nBody c\n",
    }
    for path, data in letters.items():
        path.write_bytes(data)
    os.utime(root / "Công văn" / "c.eml", (1_600_000_000, 1_600_000_000))
    (root / "notes.txt").write_text("not mail")
    code, _, err = await cli(config, "mailbox", "import", ANNV, str(root))
    assert code == 0, err

    def key(data: bytes, date: datetime) -> tuple[str, frozenset[str], datetime]:
        return hashlib.sha256(data).hexdigest(), frozenset(), date

    assert await snapshot(config, ANNV) == {
        INBOX: Counter([key(letters[root / "a.eml"].replace(b"\n", b"\r\n"),
                            datetime(2015, 3, 2, 1, 30, tzinfo=UTC))]),
        "Công văn": Counter([
            key(letters[root / "Công văn" / "b.EML"], datetime(2020, 1, 1, 0, 0, 1, tzinfo=UTC)),
            key(letters[root / "Công văn" / "c.eml"].replace(b"\n", b"\r\n"),
                datetime.fromtimestamp(1_600_000_000, UTC)),
        ]),
    }
    code, out, err = await cli(config, "mailbox", "import", ANNV, str(root), "--json")
    assert code == 0 and json.loads(out)["copied"] == 0

    # Bad input: clear errors, no traceback.
    code, _, err = await cli(config, "mailbox", "import", ANNV, str(tmp_path / "missing"))
    assert code == 1 and "no such file or directory" in err and "Traceback" not in err
    (tmp_path / "empty").mkdir()
    code, _, err = await cli(config, "mailbox", "import", ANNV, str(tmp_path / "empty"))
    assert code == 1 and "no mail found" in err
    code, _, err = await cli(config, "mailbox", "import", "nobody@dongnai.gov.vn", str(root))
    assert code == 1 and "no such account" in err


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    if not available():
        pytest.skip("dovecot-imapd is not installed")
    with running_dovecot() as server:
        yield server


def dovecot_view(dovecot: Dovecot, user: str, password: str) -> Snapshot:
    out: Snapshot = {}
    with IMAPClient("127.0.0.1", port=dovecot.port, ssl=False) as client:
        client.normalise_times = False
        client.login(user, password)
        for _, delimiter, name in client.list_folders():
            client.select_folder(name, readonly=True)
            uids = client.search("ALL")
            counter: Counter[tuple[str, frozenset[str], datetime]] = Counter()
            fetched = client.fetch(uids, ["BODY.PEEK[]", "FLAGS", "INTERNALDATE"]) if uids else {}
            for item in fetched.values():
                flags = frozenset(f.decode() for f in item[b"FLAGS"] if f.lower() != b"\\recent")
                counter[(hashlib.sha256(item[b"BODY[]"]).hexdigest(), flags,
                         item[b"INTERNALDATE"].astimezone(UTC))] += 1
            if counter:
                out[name.replace(delimiter.decode(), "/")] = counter
    return out


async def test_dovecot_reads_our_maildir_and_we_read_dovecots(dovecot: Dovecot, tmp_path: Path) -> None:
    config = write_config(tmp_path)
    await add_accounts(config, ANNV, OTHER)
    want = await fill_account(config, ANNV, 5, 300)
    # Our export, dropped in as a Dovecot user's mail: Dovecot serves the same mail.
    user = "export@dongnai.gov.vn"
    dovecot.add_user(user, "pw-export-1")
    code, _, err = await cli(config, "mailbox", "export", ANNV, "--format", "maildir",
                             "-o", str(dovecot.mail / user))
    assert code == 0, err
    dovecot.fill(user, {})  # hand the files to Dovecot's user
    assert dovecot_view(dovecot, user, "pw-export-1") == want
    # Dovecot's own Maildir (LF files, its keyword file), imported as it lies on disk.
    source = "maildir@binhphuoc.gov.vn"
    mailbox = make_mailbox(6, 200)
    dovecot.fill(source, mailbox)
    code, out, err = await cli(config, "mailbox", "import", OTHER, str(dovecot.mail / source), "--json")
    assert code == 0, err
    assert await snapshot(config, OTHER) == expected(mailbox)
    assert count(expected(mailbox)) == 201

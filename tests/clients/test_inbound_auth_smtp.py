"""Sender authentication on the MX port end to end: a real App on port 0 with
static DNS answers (no network), driven by smtplib; what was stored is read back
through the store. Outside DKIM keys are made with our own signer and keystore
and published through the static DNS map."""

from __future__ import annotations

import asyncio
import json
import re
import smtplib
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from datetime import date, timedelta
from pathlib import Path

import pytest

from mailserver.app import App
from pki.dkim import DkimSigner
from pki.keystore import DkimKeyStore
from pki.settings import DkimSettings
from storage.api import INBOX
from tests.conftest import RunningServer, make_config

ANNV = "annv@dongnai.gov.vn"
HOSTNAME = "mx.test.dongnai.gov.vn"


def message(from_addr: str, subject: str = "Chao anh", extra: str = "") -> bytes:
    return (
        f"{extra}From: <{from_addr}>\r\nTo: <{ANNV}>\r\nSubject: {subject}\r\n"
        f"Date: Mon, 05 Jan 2026 08:00:00 +0700\r\nMessage-ID: <{subject.replace(' ', '.')}@example.org>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nXin chao.\r\n"
    ).encode()


def send(port: int, sender: str, data: bytes, recipients: Sequence[str] = (ANNV,)) -> None:
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.example", timeout=60) as smtp:
        smtp.sendmail(sender, list(recipients), data)


async def stored_messages(
    server: RunningServer, address: str = ANNV, folder_name: str = INBOX
) -> list[bytes]:
    account = await server.app.store.get_account(address)
    assert account is not None
    folder = await server.app.store.get_folder(account.id, folder_name)
    infos = await server.app.store.list_messages(account.id, folder.id)
    return [await server.app.store.read_message(account.id, folder.id, i.uid) for i in infos]


def auth_results(stored: bytes) -> list[str]:
    head = stored.split(b"\r\n\r\n", 1)[0].decode()
    fields = re.findall(r"^Authentication-Results:.*?(?=\r\n[^\t ]|\Z)", head, re.MULTILINE | re.DOTALL)
    return [re.sub(r"\r\n[\t ]+", " ", f) for f in fields]


@pytest.fixture
def outside_keys(tmp_path: Path) -> DkimKeyStore:
    """example.org's keys (they sign; we only see their DNS records)."""
    store = DkimKeyStore(tmp_path / "example-org-keys")
    until = date.today() + timedelta(days=30)
    store.generate("example.org", "ext1", "rsa", retire_after=until)
    store.generate("example.org", "ext2", "ed25519", retire_after=until)
    return store


@pytest.fixture
async def mx(tmp_path: Path, outside_keys: DkimKeyStore) -> AsyncIterator[RunningServer]:
    zone = {
        "example.org TXT": ["v=spf1 ip4:127.0.0.1 -all"],
        "_dmarc.example.org TXT": ["v=DMARC1; p=reject"],
        "reject.example TXT": ["v=spf1 ip4:192.0.2.1 -all"],
        "_dmarc.reject.example TXT": ["v=DMARC1; p=reject"],
        "quarantine.example TXT": ["v=spf1 ip4:192.0.2.1 -all"],
        "_dmarc.quarantine.example TXT": ["v=DMARC1; p=quarantine"],
        **{f"{k.dns_name} TXT": [k.txt] for k in outside_keys.keys()},
    }
    config = make_config(tmp_path / "data", dns_static=zone)
    async with App(config) as app:
        running = RunningServer(app, config)
        await running.add_account(ANNV, "pw")
        yield running


async def test_local_from_spoof_with_foreign_envelope_refused(mx: RunningServer) -> None:
    data = message("giamdoc@dongnai.gov.vn", "Chi dao khan")
    with pytest.raises(smtplib.SMTPDataError) as refused:
        await asyncio.to_thread(send, mx.port("smtp"), "a@example.org", data)
    assert refused.value.smtp_code == 550
    assert refused.value.smtp_error.startswith(b"5.7.1 ")
    assert await stored_messages(mx) == []


async def test_local_envelope_sender_still_refused_at_mail_from(mx: RunningServer) -> None:
    with pytest.raises(smtplib.SMTPSenderRefused) as refused:
        await asyncio.to_thread(
            send, mx.port("smtp"), "giamdoc@dongnai.gov.vn", message("giamdoc@dongnai.gov.vn")
        )
    assert refused.value.smtp_code == 553


async def test_dkim_signed_message_gets_dkim_and_spf_pass(
    mx: RunningServer, outside_keys: DkimKeyStore
) -> None:
    original = message("news@example.org", "Ban tin")
    signed = DkimSigner(outside_keys, DkimSettings()).sign(original, "example.org")
    await asyncio.to_thread(send, mx.port("smtp"), "bounce@example.org", signed)
    (stored,) = await stored_messages(mx)
    (results,) = auth_results(stored)
    assert results.startswith(f"Authentication-Results: {HOSTNAME}; ")
    assert "spf=pass smtp.mailfrom=example.org" in results
    assert "dkim=pass header.d=example.org header.a=rsa-sha256 header.s=ext1" in results
    assert "dkim=pass header.d=example.org header.a=ed25519-sha256 header.s=ext2" in results
    assert "dmarc=pass (p=reject) header.from=example.org" in results
    # Return-Path, then our Authentication-Results, then Received, then the message as sent.
    assert stored.startswith(b"Return-Path: <bounce@example.org>\r\nAuthentication-Results: ")
    assert stored.endswith(signed)
    assert stored.index(b"Authentication-Results:") < stored.index(b"Received: from client.example")


async def test_tampered_signature_fails_but_spf_passes(mx: RunningServer, outside_keys: DkimKeyStore) -> None:
    signed = DkimSigner(outside_keys, DkimSettings()).sign(message("news@example.org"), "example.org")
    tampered = signed.replace(b"Xin chao.", b"Xin chao, da sua.")
    await asyncio.to_thread(send, mx.port("smtp"), "bounce@example.org", tampered)
    (stored,) = await stored_messages(mx)
    (results,) = auth_results(stored)
    assert "dkim=fail header.d=example.org" in results
    assert "dmarc=pass" in results  # SPF is aligned


async def test_dmarc_reject_failure_refused(mx: RunningServer) -> None:
    with pytest.raises(smtplib.SMTPDataError) as refused:
        await asyncio.to_thread(send, mx.port("smtp"), "a@reject.example", message("boss@reject.example"))
    assert (refused.value.smtp_code, refused.value.smtp_error[:6]) == (550, b"5.7.1 ")
    assert await stored_messages(mx) == []


async def test_dmarc_quarantine_delivered_and_marked(mx: RunningServer) -> None:
    await asyncio.to_thread(send, mx.port("smtp"), "a@quarantine.example", message("x@quarantine.example"))
    # p=quarantine asks receivers to treat failing mail as suspicious (RFC 7489
    # section 6.3): the DMARC failure counts in the spam score, and it lands in Junk.
    assert await stored_messages(mx) == []
    (stored,) = await stored_messages(mx, folder_name="Junk")
    assert b"X-Spam-Flag: YES" in stored and b"DMARC fail" not in stored  # the reason is logged only
    (results,) = auth_results(stored)
    assert "spf=fail smtp.mailfrom=quarantine.example" in results
    assert "dmarc=fail (p=quarantine dis=quarantine) header.from=quarantine.example" in results


async def test_forged_results_claiming_our_hostname_are_removed(mx: RunningServer) -> None:
    forged = f"Authentication-Results: {HOSTNAME}; dkim=pass header.d=dongnai.gov.vn\r\n"
    other = "Authentication-Results: mx.example.org; spf=pass smtp.mailfrom=example.org\r\n"
    data = message("news@example.org", "Forged", extra=forged + other)
    await asyncio.to_thread(send, mx.port("smtp"), "bounce@example.org", data)
    (stored,) = await stored_messages(mx)
    results = auth_results(stored)
    assert len(results) == 2
    assert results[0].startswith(f"Authentication-Results: {HOSTNAME}; spf=pass")
    assert results[1] == other.rstrip("\r\n")
    assert b"header.d=dongnai.gov.vn" not in stored


# -- CLI --------------------------------------------------------------------------------
def run_cli(config_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailserver", "--config", str(config_file), *args],
        capture_output=True, text=True, timeout=120, check=False,
    )


def test_cli_dkim_keygen_and_show(tmp_path: Path) -> None:
    config_file = tmp_path / "mailserver.toml"
    config_file.write_text(f'[server]\ndata_dir = "{tmp_path / "var"}"\n')
    made = run_cli(config_file, "dkim", "keygen", "--domain", "dongnai.gov.vn", "--selector", "s2026")
    assert made.returncode == 0, made.stderr
    assert re.search(
        r'^s2026\._domainkey\.dongnai\.gov\.vn\. IN TXT '
        r'"v=DKIM1; k=rsa; p=[A-Za-z0-9+/]+" "[A-Za-z0-9+/=]+"$',
        made.stdout, re.MULTILINE,
    ), made.stdout
    key_file = tmp_path / "var" / "dkim" / "dongnai.gov.vn" / "s2026.rsa.key"
    assert key_file.stat().st_mode & 0o777 == 0o600

    rotated = run_cli(config_file, "dkim", "keygen", "--domain", "dongnai.gov.vn", "--selector", "s2027",
                      "--retire-after", (date.today() + timedelta(days=3)).isoformat())
    assert rotated.returncode == 0, rotated.stderr
    assert "s2026 is retiring" in rotated.stdout

    shown = run_cli(config_file, "dkim", "show", "--json")
    assert shown.returncode == 0, shown.stderr
    keys = {k["selector"]: k for k in json.loads(shown.stdout)}
    assert set(keys) == {"s2026", "s2027"}
    assert keys["s2026"]["status"] == "retiring" and keys["s2027"]["status"] == "active"
    assert keys["s2027"]["name"] == "s2027._domainkey.dongnai.gov.vn."
    assert keys["s2027"]["txt"].startswith("v=DKIM1; k=rsa; p=")

    text = run_cli(config_file, "dkim", "show", "--domain", "dongnai.gov.vn")
    assert text.stdout.count(" IN TXT ") == 2

    refused = run_cli(config_file, "dkim", "keygen", "--domain", "example.org")
    assert refused.returncode == 1 and "not a local domain" in refused.stderr

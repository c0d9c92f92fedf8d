"""Issue 16, "PKI that keeps itself current": the CRL follows revocations and is
renewed by the running server, certificates name where the CRL is, a PKCS#12 is
never written with its key in clear, and X-Signature-Status says ``mismatch``
when the From is not the signer's (RFC 8550 section 3), between colleagues too.
Checked with the openssl command line, the CLI in a subprocess, `mailserver
serve` with its portal, and real SMTP/IMAP clients."""

from __future__ import annotations

import asyncio
import datetime as dt
import imaplib
import os
import re
import shutil
import smtplib
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest
from cryptography import x509

from mailserver.app import App
from mailserver.auth import hash_password
from mailserver.directory.service import DirectoryService
from pki.ca import CertificateAuthority
from pki.smime import sign_message
from storage.directory import By, open_directory
from tests.conftest import RunningServer, end_all, make_config, wait_until
from tests.ops.conftest import Servers, free_port, server_config

PASS = "correct horse battery staple"
PW = "S3cret-pass-word-2026"
BY = By("test")

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl command needed")


def openssl(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["openssl", *args], input=stdin, capture_output=True, check=False)


def cli(conf: Path, *args: str, stdin: str | None = None, passphrase: bool = True
        ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MAILSERVER_PKI_PASSPHRASE"}
    if passphrase:
        env["MAILSERVER_PKI_PASSPHRASE"] = PASS
    proc = subprocess.run(
        [sys.executable, "-m", "mailserver", "--config", str(conf), *args],
        input=stdin, capture_output=True, text=True, timeout=120, check=False, env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def crl_serials(path: Path, der: bool = False) -> set[int]:
    data = path.read_bytes()
    crl = x509.load_der_x509_crl(data) if der else x509.load_pem_x509_crl(data)
    return {entry.serial_number for entry in crl}


def test_issue_names_the_crl_and_never_writes_a_clear_key(tmp_path: Path) -> None:
    conf = tmp_path / "mailserver.toml"
    conf.write_text(f'[server]\ndata_dir = "{tmp_path / "data"}"\nhostname = "mail.dongnai.gov.vn"\n'
                    'log_level = "WARNING"\n', encoding="utf-8")
    cli(conf, "pki", "init")
    cli(conf, "agency", "add", "stttt", "--name", "Sở Thông tin và Truyền thông")
    p12 = tmp_path / "stttt.p12"
    out = cli(conf, "pki", "issue", "stttt@dongnai.gov.vn", "--out", str(p12)).stdout
    match = re.search(r"PKCS#12 password \(shown once\): (\S+)$", out, re.M)
    assert match, out
    password = match.group(1)
    # No clear key: without the password (or with an empty one) openssl cannot read it.
    assert openssl("pkcs12", "-in", str(p12), "-passin", "pass:", "-nodes", "-noout").returncode != 0
    cert_pem = tmp_path / "cert.pem"
    done = openssl("pkcs12", "-in", str(p12), "-passin", f"pass:{password}", "-nokeys", "-clcerts",
                   "-out", str(cert_pem))
    assert done.returncode == 0, done.stderr
    key = openssl("pkcs12", "-in", str(p12), "-passin", f"pass:{password}", "-nocerts", "-nodes")
    assert key.returncode == 0 and b"PRIVATE KEY" in key.stdout
    text = openssl("x509", "-in", str(cert_pem), "-noout", "-text").stdout.decode()
    # RFC 5280 section 4.2.1.13, default: the portal's /crl at the server's host name.
    assert "X509v3 CRL Distribution Points" in text and "URI:http://mail.dongnai.gov.vn/crl" in text
    # A password given on stdin is used and not printed.
    own = tmp_path / "own.p12"
    out = cli(conf, "pki", "issue", "stttt@dongnai.gov.vn", "--out", str(own), "--p12-password-stdin",
              stdin="Mat-khau-p12-rieng\n").stdout
    assert "Mat-khau-p12-rieng" not in out and "shown once" not in out
    assert openssl("pkcs12", "-in", str(own), "-passin", "pass:Mat-khau-p12-rieng", "-nokeys",
                   "-noout").returncode == 0
    # pki.crl_url overrides the default.
    conf.write_text(conf.read_text() + '[pki]\ncrl_url = "http://pki.dongnai.gov.vn/ca/issuing.crl"\n')
    cli(conf, "pki", "issue-tls", "mail.dongnai.gov.vn")
    tls = openssl("x509", "-in", str(tmp_path / "data" / "tls" / "cert.pem"), "-noout", "-text")
    assert "URI:http://pki.dongnai.gov.vn/ca/issuing.crl" in tls.stdout.decode()

    # A revocation by a process holding the passphrase is in crl.pem when the command returns.
    crl = tmp_path / "data" / "pki" / "crl.pem"
    cli(conf, "directory", "add-person", "--name", "Nguyễn Văn An", "--agency", "stttt")
    cli(conf, "pki", "issue", "annv@dongnai.gov.vn")
    ca = CertificateAuthority(tmp_path / "data" / "pki")
    [serial] = [int(r.serial, 16) for r in ca.records() if r.subject == "annv@dongnai.gov.vn"]
    assert crl_serials(crl) == set()
    out = cli(conf, "directory", "offboard", "annv@dongnai.gov.vn").stdout
    # Serials compared as integers: openssl pads to whole bytes (a leading 0) and prints
    # upper case, the CLI prints plain lower-case hex.
    said = {int(s, 16) for s in re.findall(r"đã thu hồi chứng thư số ([0-9A-Fa-f]+)", out)}
    assert said == {serial} and "đã công bố lại CRL / CRL republished" in out
    assert crl_serials(crl) == {serial}
    listed = openssl("crl", "-in", str(crl), "-noout", "-text").stdout.decode()
    assert {int(s, 16) for s in re.findall(r"Serial Number: ([0-9A-Fa-f]+)", listed)} == {serial}
    assert "Affiliation Changed" in listed
    # `pki revoke` publishes at once as well.
    agency_serials = {int(r.serial, 16) for r in ca.records() if r.subject == "stttt@dongnai.gov.vn"}
    assert len(agency_serials) == 2
    out = cli(conf, "pki", "revoke", "stttt@dongnai.gov.vn", "--reason", "superseded").stdout
    assert "CRL republished" in out
    assert crl_serials(crl) == agency_serials | {serial}


def test_running_server_republishes_and_renews_the_crl(tmp_path: Path) -> None:
    web = free_port()
    conf = server_config(tmp_path, pki={"crl_check_interval": 0.2},
                         web={"enabled": True, "listen": f"127.0.0.1:{web}"})
    cli(conf, "pki", "init")
    cli(conf, "agency", "add", "stttt", "--name", "Sở Thông tin và Truyền thông")
    cli(conf, "directory", "add-person", "--name", "Nguyễn Văn An", "--agency", "stttt")
    cli(conf, "pki", "issue", "annv@dongnai.gov.vn")
    pki = tmp_path / "data" / "pki"
    crl = pki / "crl.pem"
    ca = CertificateAuthority(pki, passphrase=PASS.encode())
    [serial] = [int(r.serial, 16) for r in ca.records()]
    servers = Servers()
    env: Mapping[str, str] = {**os.environ, "MAILSERVER_PKI_PASSPHRASE": PASS}
    try:
        servers.start(conf, env=env)

        def fetched() -> set[int]:
            with urllib.request.urlopen(f"http://127.0.0.1:{web}/crl", timeout=10) as response:  # noqa: S310
                assert response.headers["Content-Type"] == "application/pkix-crl"
                return {e.serial_number for e in x509.load_der_x509_crl(response.read())}

        assert fetched() == set()
        # Offboarding by an operator without the passphrase: the index only...
        out = cli(conf, "directory", "offboard", "annv@dongnai.gov.vn", passphrase=False).stdout
        assert "the running server republishes the CRL within 0.2 s" in out
        # ...and the running server publishes it, file and portal alike.
        wait_until(lambda: crl_serials(crl) == {serial}, "crl.pem lists the offboarded person's certificate")
        assert fetched() == {serial}
        assert openssl("crl", "-in", str(crl), "-noout").returncode == 0
        # A CRL two days old (five left before nextUpdate) is renewed without any revocation.
        old = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
        ca.publish_crl(old)
        assert x509.load_pem_x509_crl(crl.read_bytes()).last_update_utc < old + dt.timedelta(minutes=1)

        def renewed() -> bool:
            parsed = x509.load_pem_x509_crl(crl.read_bytes())
            return parsed.last_update_utc > dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)

        wait_until(renewed, "the server renews a CRL past pki.crl_refresh_hours")
        parsed = x509.load_pem_x509_crl(crl.read_bytes())
        assert parsed.next_update_utc is not None
        assert parsed.next_update_utc > dt.datetime.now(dt.UTC) + dt.timedelta(days=6)
        assert {e.serial_number for e in parsed} == {serial}
        servers.stop(servers.procs[0])
    finally:
        end_all(servers.procs)


# -- X-Signature-Status over real SMTP and IMAP ---------------------------------------

@pytest.fixture
async def pki_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[RunningServer]:
    monkeypatch.setenv("MAILSERVER_PKI_PASSPHRASE", PASS)
    config = make_config(tmp_path / "data")
    config.data_dir.mkdir(parents=True)
    CertificateAuthority.open(config.pki, config.data_dir).init()
    async with App(config) as app:
        yield RunningServer(app, config)


def inbox(port: int, user: str) -> list[bytes]:
    with imaplib.IMAP4("127.0.0.1", port) as imap:
        imap.login(user, PW)
        imap.select("INBOX")
        _, data = imap.uid("SEARCH", "ALL")
        out = []
        for uid in data[0].split():
            _, parts = imap.uid("FETCH", uid, "(BODY.PEEK[])")
            first = parts[0]
            assert isinstance(first, tuple)
            out.append(first[1])
        return out


def status_of(message: bytes) -> str:
    match = re.search(rb"^X-Signature-Status: (.*)\r$", message, re.M)
    return match.group(1).decode() if match else ""


def plain(sender: str, to: str, subject: str, extra: str = "") -> bytes:
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n{extra}MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\nKính gửi anh chị.\r\n").encode()


async def test_signature_status_mismatch_on_mx_and_between_colleagues(pki_server: RunningServer) -> None:
    server = pki_server
    store = server.app.store
    ca = CertificateAuthority.open(server.config.pki, server.config.data_dir)
    svc = DirectoryService(store, open_directory(store), server.config)
    box = (await svc.add_agency("stttt", "Sở Thông tin và Truyền thông", None, by=BY)).address
    an = (await svc.add_person("Nguyễn Văn An", "stttt", by=BY)).address
    binh = (await svc.add_person("Trần Thị Bình", "stttt", by=BY)).address
    await svc.set_head("stttt", an, by=BY)
    for address in (an, binh, box):
        account = await store.get_account(address)
        assert account is not None
        await store.set_password(account.id, hash_password(PW), must_change_password=False)
    _, an_cert, an_key = ca.issue_smime(an, "Nguyễn Văn An", "Sở TT&TT")
    _, binh_cert, binh_key = ca.issue_smime(binh, "Trần Thị Bình", "Sở TT&TT")
    ca.issue_smime(box, "Sở Thông tin và Truyền thông", "UBND tỉnh Đồng Nai")
    _, ext_cert, ext_key = ca.issue_smime("vanthu@example.org", "Văn thư", "Bộ X")
    chain = ca.chain()[:1]

    def mx(message: bytes, sender: str) -> None:
        with smtplib.SMTP("127.0.0.1", server.port("smtp")) as s:
            s.sendmail(sender, [binh], message)

    def submit(message: bytes, sender: str) -> None:
        with smtplib.SMTP("127.0.0.1", server.port("submission")) as s:
            s.login(an, PW)
            s.sendmail(sender, [binh], message)

    # From the outside (MX): the certificate names vanthu@example.org.
    await asyncio.to_thread(mx, sign_message(plain("vanthu@example.org", binh, "mx ok"), ext_cert, ext_key,
                                             chain), "vanthu@example.org")
    await asyncio.to_thread(mx, sign_message(plain("partner@example.org", binh, "mx other"), ext_cert,
                                             ext_key, chain), "partner@example.org")
    # Between colleagues (submission): signed by An's own client, by a certificate
    # that is not An's, unsigned with a forged verdict, and agency mail the server signs.
    await asyncio.to_thread(submit, sign_message(plain(an, binh, "own"), an_cert, an_key, chain), an)
    await asyncio.to_thread(submit, sign_message(plain(an, binh, "not mine"), binh_cert, binh_key, chain), an)
    forged = plain(an, binh, "forged", "X-Signature-Status: valid; signer=x@y\r\n")
    await asyncio.to_thread(submit, forged, an)
    await asyncio.to_thread(submit, plain(box, binh, "agency"), box)
    got = {re.search(rb"^Subject: (.*)\r$", m, re.M).group(1).decode(): m  # type: ignore[union-attr]
           for m in await asyncio.to_thread(inbox, server.port("imap"), binh)}
    assert status_of(got["mx ok"]) == "valid; signer=vanthu@example.org"
    mismatch = status_of(got["mx other"])
    assert mismatch.startswith("mismatch; signer=vanthu@example.org; reason=")
    assert "partner@example.org" in mismatch
    assert status_of(got["own"]) == f"valid; signer={an}"
    assert status_of(got["not mine"]).startswith(f"mismatch; signer={binh}")
    assert status_of(got["forged"]) == ""
    assert status_of(got["agency"]) == f"valid; signer={box}"
    assert b"multipart/signed" in got["agency"]

"""Certificate login (SASL EXTERNAL, RFC 4422 appendix A) over real sockets:
imaplib and smtplib present a TLS client certificate issued by ``mailserver pki
issue`` and sign in with EXTERNAL on IMAPS, IMAP after STARTTLS, submissions
(465) and submission after STARTTLS (587); an account that did not opt in, a
revoked certificate, a foreign CA's certificate and a wrong authorization
identity are refused, and password logins keep working beside them.
"""

from __future__ import annotations

import asyncio
import imaplib
import io
import smtplib
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from mailserver.app import App
from mailserver.cli import main
from pki.ca import CertificateAuthority
from tests.conftest import RunningServer, make_config

ANNV = "annv@dongnai.gov.vn"
BINH = "binhtt@dongnai.gov.vn"
PW = "S3cret-pass-word"
PASS = "correct horse battery staple"
P12_PASSWORD = "Mat-khau-p12-2026"


@pytest.fixture(autouse=True)
def passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILSERVER_PKI_PASSPHRASE", PASS)


def cli(config: Path, *args: str, stdin: str = "") -> int:
    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        return main(["--config", str(config), *args])
    finally:
        sys.stdin = old


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "mailserver.toml"
    path.write_text(f'[server]\ndata_dir = "{tmp_path / "data"}"\ndomains = ["dongnai.gov.vn"]\n', "utf-8")
    return path


def client_files(tmp_path: Path, p12: Path) -> tuple[Path, Path]:
    """PEM certificate and key of a PKCS#12 file (what ssl's load_cert_chain reads)."""
    key, cert, _ = pkcs12.load_key_and_certificates(p12.read_bytes(), P12_PASSWORD.encode())
    assert key is not None and cert is not None
    cert_path, key_path = tmp_path / f"{p12.stem}.crt", tmp_path / f"{p12.stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def issue(tmp_path: Path, config: Path, address: str) -> tuple[Path, Path]:
    p12 = tmp_path / f"{address.split('@')[0]}.p12"
    assert cli(config, "pki", "issue", address, "--out", str(p12), "--p12-password-stdin",
               stdin=P12_PASSWORD + "\n") == 0
    return client_files(tmp_path, p12)


def tls_client(cert: tuple[Path, Path] | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the test server's certificate is self-signed
    if cert is not None:
        context.load_cert_chain(cert[0], cert[1])
    return context


class Setup:
    def __init__(self, server: RunningServer, config_file: Path, certs: dict[str, tuple[Path, Path]]) -> None:
        self.server = server
        self.config_file = config_file
        self.certs = certs


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    config_file = write_config(tmp_path)

    def prepare() -> dict[str, tuple[Path, Path]]:  # the CLI runs its own event loop
        assert cli(config_file, "pki", "init") == 0
        for address in (ANNV, BINH):
            assert cli(config_file, "account", "add", address, "--password-stdin", "--no-change-required",
                       stdin=PW + "\n") == 0
        assert cli(config_file, "account", "set", ANNV, "--cert-login", "on") == 0
        return {address: issue(tmp_path, config_file, address) for address in (ANNV, BINH)}

    certs = await asyncio.to_thread(prepare)
    config = make_config(tmp_path / "data")
    async with App(config) as app:
        yield Setup(RunningServer(app, config), config_file, certs)


def imaps(s: Setup, cert: tuple[Path, Path] | None) -> imaplib.IMAP4_SSL:
    return imaplib.IMAP4_SSL("127.0.0.1", s.server.port("imaps"), ssl_context=tls_client(cert))


def external(authzid: str = "") -> object:
    return lambda _challenge: authzid.encode()


async def test_imap_external_login_on_imaps_and_after_starttls(setup: Setup) -> None:
    def run() -> None:
        with imaps(setup, setup.certs[ANNV]) as imap:
            assert "AUTH=EXTERNAL" in imap.capabilities
            typ, data = imap.authenticate("EXTERNAL", external())
            assert typ == "OK", data
            assert imap.select("INBOX")[0] == "OK"
        with imaplib.IMAP4("127.0.0.1", setup.server.port("imap")) as imap:
            assert "AUTH=EXTERNAL" not in imap.capabilities  # no TLS, no certificate
            imap.starttls(ssl_context=tls_client(setup.certs[ANNV]))
            assert "AUTH=EXTERNAL" in imap.capabilities
            # RFC 4422: the authorization identity may name the certificate's own address.
            assert imap.authenticate("EXTERNAL", external(ANNV))[0] == "OK"

    await asyncio.to_thread(run)
    # Only the IMAP and submission listeners ask for certificates, not the MX or the portal.
    assert setup.server.app.ssl_context is not None
    assert setup.server.app.ssl_context.verify_mode == ssl.CERT_NONE
    account = await setup.server.app.store.get_account(ANNV)
    assert account is not None and account.last_login_at is not None


async def test_submission_external_on_465_and_587(setup: Setup) -> None:
    def run() -> None:
        port = setup.server.port("submissions")
        with smtplib.SMTP_SSL("127.0.0.1", port, context=tls_client(setup.certs[ANNV])) as smtp:
            smtp.ehlo("client.test")
            assert "EXTERNAL" in smtp.esmtp_features["auth"].split()
            code, _ = smtp.auth("EXTERNAL", lambda challenge=None: "")  # type: ignore[misc]
            assert code == 235
            assert smtp.mail(ANNV)[0] == 250
        with smtplib.SMTP("127.0.0.1", setup.server.port("submission")) as smtp:
            smtp.starttls(context=tls_client(setup.certs[ANNV]))
            smtp.ehlo("client.test")
            assert "EXTERNAL" in smtp.esmtp_features["auth"].split()
            code, _ = smtp.auth("EXTERNAL", lambda challenge=None: ANNV)  # type: ignore[misc]
            assert code == 235

    await asyncio.to_thread(run)


async def test_without_opt_in_refused_and_password_still_works(setup: Setup) -> None:
    def run() -> None:
        with imaps(setup, setup.certs[BINH]) as imap:
            assert "AUTH=EXTERNAL" in imap.capabilities  # a valid certificate of ours
            with pytest.raises(imaplib.IMAP4.error, match="not enabled"):
                imap.authenticate("EXTERNAL", external())
            assert imap.login(BINH, PW)[0] == "OK"
        with smtplib.SMTP_SSL("127.0.0.1", setup.server.port("submissions"),
                              context=tls_client(setup.certs[BINH])) as smtp:
            smtp.ehlo("client.test")
            with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
                smtp.auth("EXTERNAL", lambda challenge=None: "")  # type: ignore[misc]
            assert refused.value.smtp_code == 535
            assert refused.value.smtp_error.startswith(b"5.7.8")

    await asyncio.to_thread(run)
    assert await asyncio.to_thread(cli, setup.config_file, "account", "set", BINH, "--cert-login", "on") == 0

    def again() -> None:
        with imaps(setup, setup.certs[BINH]) as imap:
            assert imap.authenticate("EXTERNAL", external())[0] == "OK"

    await asyncio.to_thread(again)


async def test_wrong_authorization_identity_refused(setup: Setup) -> None:
    def run() -> None:
        with imaps(setup, setup.certs[ANNV]) as imap, pytest.raises(imaplib.IMAP4.error, match="names"):
            imap.authenticate("EXTERNAL", external(BINH))

    await asyncio.to_thread(run)


async def test_revoked_certificate_refused(setup: Setup) -> None:
    def run() -> None:
        # A connection opened before the revocation: the check at AUTHENTICATE counts.
        with imaps(setup, setup.certs[ANNV]) as imap:
            assert "AUTH=EXTERNAL" in imap.capabilities
            assert cli(setup.config_file, "pki", "revoke", ANNV) == 0
            with pytest.raises(imaplib.IMAP4.error, match="revoked"):
                imap.authenticate("EXTERNAL", external())
        with imaps(setup, setup.certs[ANNV]) as imap:
            assert "AUTH=EXTERNAL" not in imap.capabilities
            with pytest.raises(imaplib.IMAP4.error, match="revoked"):
                imap.authenticate("EXTERNAL", external())
            assert imap.login(ANNV, PW)[0] == "OK"
        with smtplib.SMTP_SSL("127.0.0.1", setup.server.port("submissions"),
                              context=tls_client(setup.certs[ANNV])) as smtp:
            smtp.ehlo("client.test")
            assert "EXTERNAL" not in smtp.esmtp_features["auth"].split()
            with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
                smtp.auth("EXTERNAL", lambda challenge=None: "")  # type: ignore[misc]
            assert refused.value.smtp_code == 535 and b"revoked" in refused.value.smtp_error

    await asyncio.to_thread(run)


async def test_unknown_ca_refused_at_authentication(setup: Setup, tmp_path: Path) -> None:
    other = CertificateAuthority(tmp_path / "other-ca", passphrase=b"other passphrase")
    other.init(organization="Not ours")
    record, _cert, _key = other.issue_smime(ANNV, "Impostor", "Not ours")
    p12 = tmp_path / "foreign.p12"
    p12.write_bytes(other.pkcs12(record, P12_PASSWORD.encode(), "foreign"))
    foreign = client_files(tmp_path, p12)

    def run() -> None:
        # The handshake succeeds (other clients' certificates must not lock them out) ...
        with imaps(setup, foreign) as imap:
            assert "AUTH=EXTERNAL" not in imap.capabilities
            with pytest.raises(imaplib.IMAP4.error, match="trusted CA"):
                imap.authenticate("EXTERNAL", external())
            # ... and a password login on the same connection still works.
            assert imap.login(BINH, PW)[0] == "OK"
        with smtplib.SMTP_SSL("127.0.0.1", setup.server.port("submissions"),
                              context=tls_client(foreign)) as smtp:
            smtp.ehlo("client.test")
            with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
                smtp.auth("EXTERNAL", lambda challenge=None: "")  # type: ignore[misc]
            assert refused.value.smtp_code == 535 and refused.value.smtp_error.startswith(b"5.7.8")
            assert smtp.login(BINH, PW)[0] == 235
        # No certificate at all: no EXTERNAL, passwords as before.
        with imaps(setup, None) as imap:
            assert "AUTH=EXTERNAL" not in imap.capabilities
            assert imap.login(ANNV, PW)[0] == "OK"

    await asyncio.to_thread(run)


def test_account_set_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    assert cli(config, "account", "add", ANNV, "--password-stdin", stdin=PW + "\n") == 0
    assert cli(config, "account", "set", ANNV, "--cert-login", "on") == 0
    assert "certificate login: bật / on" in capsys.readouterr().out
    assert cli(config, "account", "show", ANNV, "--json") == 0
    assert '"cert_login": true' in capsys.readouterr().out
    assert cli(config, "account", "set", ANNV) != 0
    assert cli(config, "account", "set", "nobody@dongnai.gov.vn", "--cert-login", "off") != 0
    assert "no such account" in capsys.readouterr().err


async def test_refused_certificate_logins_are_throttled(setup: Setup) -> None:
    limit = setup.server.config.auth.max_failures

    def run() -> list[str]:
        answers = []
        with imaps(setup, setup.certs[BINH]) as imap:  # BINH has not opted in
            for _ in range(limit + 1):
                try:
                    imap.authenticate("EXTERNAL", external())
                except imaplib.IMAP4.error as exc:
                    answers.append(str(exc))
        return answers

    answers = await asyncio.to_thread(run)
    assert all("not enabled" in a for a in answers[:limit]), answers
    assert "UNAVAILABLE" in answers[limit]

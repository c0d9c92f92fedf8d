"""Certificate login over real sockets (issue 23): a client certificate issued by
``mailserver pki issue`` signs in to IMAP with AUTHENTICATE EXTERNAL (RFC 4422
appendix A) through imaplib over implicit TLS and to submission with AUTH EXTERNAL
(smtplib, port 465 and STARTTLS), only once the account opted in
(``account set --cert-login on``), never after ``pki revoke``; a client without
a certificate is still served (the listener requests, never requires, one)."""

from __future__ import annotations

import asyncio
import imaplib
import json
import os
import smtplib
import ssl
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from mailserver.app import App
from tests.conftest import make_config

ADDRESS = "phamd@dongnai.gov.vn"
PASSWORD = "Mat-khau-chinh-2026"
P12_PASSWORD = "p12-Secret-2026"


def cli(data_dir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    config = data_dir.parent / "cli.toml"
    config.write_text(f'[server]\ndata_dir = "{data_dir}"\n', encoding="utf-8")
    env = {**os.environ, "MAILSERVER_PKI_PASSPHRASE": "correct horse battery staple"}
    return subprocess.run([sys.executable, "-m", "mailserver", "--config", str(config), *args],
                          input=stdin, capture_output=True, text=True, timeout=120, check=False, env=env)


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def client_context(cert_pem: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the test server's own certificate is self-signed
    if cert_pem is not None:
        context.load_cert_chain(cert_pem)
    return context


def external(port: int, cert_pem: Path | None, authzid: str = "") -> tuple[str, list[str]]:
    """AUTHENTICATE EXTERNAL over implicit TLS: ('OK' or the NO text, capabilities before)."""
    imap = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=client_context(cert_pem))
    caps = list(imap.capabilities)
    try:
        imap.authenticate("EXTERNAL", lambda _: authzid.encode())
    except imaplib.IMAP4.error as exc:
        return str(exc), caps
    finally:
        imap.logout()
    return "OK", caps


def smtp_external(port: int, cert_pem: Path | None, starttls: bool) -> tuple[int, str]:
    """AUTH EXTERNAL on submission (implicit TLS or STARTTLS): reply code, advertised AUTH."""
    context = client_context(cert_pem)
    smtp = smtplib.SMTP("127.0.0.1", port, timeout=30) if starttls else smtplib.SMTP_SSL(
        "127.0.0.1", port, context=context, timeout=30)
    with smtp:
        if starttls:
            smtp.starttls(context=context)
        smtp.ehlo()
        code, _ = smtp.docmd("AUTH", "EXTERNAL =")
        return code, smtp.esmtp_features.get("auth", "")


def password_login(port: int) -> str:
    imap = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=client_context(None))
    try:
        imap.login(ADDRESS, PASSWORD)
    finally:
        imap.logout()
    return "OK"


async def test_client_certificate_signs_in_over_imap(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    ok(await asyncio.to_thread(cli, data, "pki", "init"))
    ok(await asyncio.to_thread(cli, data, "account", "add", ADDRESS, "--password-stdin",
                               "--no-change-required", stdin=PASSWORD + "\n"))
    p12 = tmp_path / "phamd.p12"
    issued = json.loads(ok(await asyncio.to_thread(
        cli, data, "pki", "issue", ADDRESS, "--out", str(p12), "--p12-password-stdin", "--json",
        stdin=P12_PASSWORD + "\n")))
    key, cert, _ = pkcs12.load_key_and_certificates(p12.read_bytes(), P12_PASSWORD.encode())
    assert key is not None and cert is not None
    pem = tmp_path / "phamd.pem"
    pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption())
        + cert.public_bytes(serialization.Encoding.PEM)
    )

    config = make_config(data)
    async with App(config) as app:
        port = app.addresses["imaps"][1]
        # Not opted in yet: refused.
        refused, caps = await asyncio.to_thread(external, port, pem)
        assert "AUTH=EXTERNAL" in caps and "AUTHENTICATIONFAILED" in refused
        ok(await asyncio.to_thread(cli, data, "account", "set", ADDRESS, "--cert-login", "on"))
        assert (await asyncio.to_thread(external, port, pem))[0] == "OK"
        assert (await asyncio.to_thread(external, port, pem, ADDRESS))[0] == "OK"
        # The certificate names phamd only: another authorization identity is refused.
        other, _ = await asyncio.to_thread(external, port, pem, "giamdoc@dongnai.gov.vn")
        assert "AUTHENTICATIONFAILED" in other
        # Without a certificate: no EXTERNAL offered, EXTERNAL refused, passwords still work.
        bare, caps = await asyncio.to_thread(external, port, None)
        assert "AUTH=EXTERNAL" not in caps and "AUTHENTICATIONFAILED" in bare
        assert await asyncio.to_thread(password_login, port) == "OK"
        # Submission: implicit TLS (465) and STARTTLS (587) alike.
        for name, starttls in (("submissions", False), ("submission", True)):
            code, auth = await asyncio.to_thread(smtp_external, app.addresses[name][1], pem, starttls)
            assert code == 235 and "EXTERNAL" in auth
        code, auth = await asyncio.to_thread(smtp_external, app.addresses["submissions"][1], None, False)
        assert code == 504 and "EXTERNAL" not in auth

        serial = issued[0]["serial"] if isinstance(issued, list) else issued["serial"]
        ok(await asyncio.to_thread(cli, data, "pki", "revoke", serial, "--reason", "keyCompromise"))
        revoked, _ = await asyncio.to_thread(external, port, pem)
        assert "AUTHENTICATIONFAILED" in revoked
        code, _ = await asyncio.to_thread(smtp_external, app.addresses["submissions"][1], pem, False)
        assert code == 535

        assert app.authenticator.history is not None
        await app.authenticator.history.flush()
    history = json.loads(ok(await asyncio.to_thread(cli, data, "account", "logins", ADDRESS, "--json")))
    seen = [(h["protocol"], h["success"], h["detail"]) for h in history]
    assert seen.count(("imap", True, "certificate")) == 2
    assert ("imap", False, "cert-login-off") in seen
    assert ("imap", False, "certificate-revoked") in seen
    assert ("imap", True, "password") in seen
    assert seen.count(("smtp", True, "certificate")) == 2
    assert ("smtp", False, "certificate-revoked") in seen

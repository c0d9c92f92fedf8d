"""Issue 7: internal CA, S/MIME signing/verification, revocation, signed
dispatch. Checked with the openssl command line (a subprocess) as well as
with our own Python verifier, over real SMTP/IMAP listeners."""

from __future__ import annotations

import asyncio
import imaplib
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiosmtplib
import dkim
import pytest
from cryptography.hazmat.primitives.serialization import pkcs12

from mailserver.app import App
from mailserver.auth import hash_password
from mailserver.cli import main
from mailserver.directory.service import DirectoryService
from pki.ca import CertificateAuthority, pki_directory
from pki.dkim import DkimSigner
from pki.keystore import DkimKeyStore
from pki.settings import DkimSettings
from pki.smime import SmimeVerifier, sign_message
from storage.directory import By, open_directory
from tests.conftest import RunningServer, make_config

PASS = "correct horse battery staple"
PW = "S3cret-pass-word"
BY = By("test")

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl command needed")


def openssl(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["openssl", *args], input=stdin, capture_output=True, check=False)


@pytest.fixture(autouse=True)
def passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILSERVER_PKI_PASSPHRASE", PASS)


def new_ca(path: Path) -> CertificateAuthority:
    ca = CertificateAuthority(path, passphrase=PASS.encode())
    ca.init()
    return ca


def test_ca_issue_revoke_crl_with_openssl(tmp_path: Path) -> None:
    ca = new_ca(tmp_path / "pki")
    record, cert, _ = ca.issue_smime("stttt@dongnai.gov.vn", "Sở Thông tin và Truyền thông",
                                     "UBND tỉnh Đồng Nai")
    chain = tmp_path / "chain.pem"
    chain.write_bytes((ca.directory / "root.pem").read_bytes() + (ca.directory / "ca.pem").read_bytes())
    leaf = str(ca.directory / record.cert)
    crl = str(ca.directory / "crl.pem")
    ok = openssl("verify", "-crl_check", "-CAfile", str(chain), "-CRLfile", crl,
                 "-purpose", "smimesign", leaf)
    assert ok.returncode == 0, ok.stderr
    text = openssl("x509", "-in", leaf, "-noout", "-text", "-nameopt", "utf8").stdout.decode()
    assert "email:stttt@dongnai.gov.vn" in text and "E-mail Protection" in text
    assert "Sở Thông tin và Truyền thông" in text and "Non Repudiation" in text
    # PKCS#12 for Thunderbird: key, certificate and chain, under a password.
    blob = ca.pkcs12(record, b"p12pass", "stttt")
    key, p12_cert, extra = pkcs12.load_key_and_certificates(blob, b"p12pass")
    assert key is not None and p12_cert == cert and len(extra) == 2
    assert [r.serial for r in ca.revoke("stttt@dongnai.gov.vn", "keyCompromise")] == [record.serial]
    ca.publish_crl()
    bad = openssl("verify", "-crl_check", "-CAfile", str(chain), "-CRLfile", crl, leaf)
    assert bad.returncode != 0 and b"revoked" in bad.stdout + bad.stderr


def test_rsa_ca_and_unicode_signature_verifies(tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path / "pki", passphrase=PASS.encode())
    ca.init(algorithm="rsa3072")
    _, cert, key = ca.issue_smime("vp@dongnai.gov.vn", "Văn phòng", "UBND", algorithm="rsa3072")
    message = ("From: vp@dongnai.gov.vn\r\nTo: a@dongnai.gov.vn\r\nSubject: =?utf-8?q?th=C6=B0?=\r\n"
               "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
               "Kính gửi các cơ quan   \r\n").encode()
    signed = sign_message(message, cert, key, ca.chain()[:1])
    assert signed.isascii()  # 8bit re-encoded before signing (RFC 8551 section 3.1.2)
    out = openssl("smime", "-verify", "-CAfile", str(ca.directory / "root.pem"), stdin=signed)
    assert out.returncode == 0, out.stderr
    assert "Kính gửi".encode() in out.stdout or b"base64" in out.stdout
    assert SmimeVerifier(ca).verify(signed) is not None
    assert SmimeVerifier(ca).verify(signed).status == "valid"  # type: ignore[union-attr]


def test_dkim_and_smime_verify_on_the_same_message(tmp_path: Path) -> None:
    ca = new_ca(tmp_path / "pki")
    _, cert, key = ca.issue_smime("stttt@dongnai.gov.vn", "Sở TT&TT", "UBND")
    message = (b"From: stttt@dongnai.gov.vn\r\nTo: x@example.org\r\nSubject: test\r\n"
               b"Date: Mon, 01 Jan 2024 00:00:00 +0700\r\nMessage-ID: <1@dongnai.gov.vn>\r\n\r\nHello\r\n")
    signed = sign_message(message, cert, key, ca.chain()[:1])
    store = DkimKeyStore(tmp_path / "dkim")
    import datetime as dt
    dkey = store.generate("dongnai.gov.vn", "s1", "rsa", retire_after=dt.date(2030, 1, 1))
    both = DkimSigner(store, DkimSettings()).sign(signed, "dongnai.gov.vn")
    assert both.startswith(b"DKIM-Signature:")

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"s1._domainkey.dongnai.gov.vn."
        return dkey.txt.encode()

    assert dkim.verify(both, dnsfunc=dns)
    assert SmimeVerifier(ca).verify(both).status == "valid"  # type: ignore[union-attr]
    out = openssl("smime", "-verify", "-CAfile", str(ca.directory / "root.pem"), stdin=both)
    assert out.returncode == 0, out.stderr
    # A user's own signature is not signed again.
    assert sign_message(signed, cert, key) == signed


# -- over real SMTP and IMAP -------------------------------------------------------

@pytest.fixture
async def pki_server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    config = make_config(tmp_path / "data")
    config.data_dir.mkdir(parents=True)
    ca = CertificateAuthority.open(config.pki, config.data_dir)
    ca.init()
    async with App(config) as app:
        yield RunningServer(app, config)


async def add_agency(server: RunningServer, code: str, name: str) -> str:
    service = DirectoryService(server.app.store, open_directory(server.app.store), server.config)
    issued = await service.add_agency(code, name, None, by=BY)
    account = await server.app.store.get_account(issued.address)
    assert account is not None
    await server.app.store.set_password(account.id, hash_password(PW), must_change_password=False)
    return issued.address


def imap_fetch_all(port: int, user: str) -> list[bytes]:
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


async def test_agency_mail_signed_on_submission_verifies_after_imap(pki_server: RunningServer) -> None:
    server = pki_server
    ca = CertificateAuthority.open(server.config.pki, server.config.data_dir)
    sender = await add_agency(server, "stttt", "Sở Thông tin và Truyền thông")
    ca.issue_smime(sender, "Sở Thông tin và Truyền thông", "UBND tỉnh Đồng Nai")
    await server.add_account("nhan@dongnai.gov.vn", PW)
    message = ("From: Sở TT&TT <stttt@dongnai.gov.vn>\r\nTo: nhan@dongnai.gov.vn\r\n"
               "Subject: =?utf-8?q?C=C3=B4ng_v=C4=83n?=\r\nMIME-Version: 1.0\r\n"
               "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
               "Kính gửi: các cơ quan, đơn vị.\r\n").encode()
    await aiosmtplib.send(message, sender=sender, recipients=["nhan@dongnai.gov.vn"], hostname="127.0.0.1",
                          port=server.port("submission"), username=sender, password=PW, start_tls=False)
    [got] = await asyncio.to_thread(imap_fetch_all, server.port("imap"), "nhan@dongnai.gov.vn")
    assert b"multipart/signed" in got and b"micalg=sha-256" in got
    root = str(ca.directory / "root.pem")
    out = openssl("smime", "-verify", "-CAfile", root, stdin=got)
    assert out.returncode == 0, out.stderr
    assert "Kính gửi".encode() in out.stdout or b"base64" in out.stdout
    verifier = SmimeVerifier(ca)
    status = verifier.verify(got)
    assert status is not None and status.status == "valid" and status.signer == sender
    tampered = got.replace(b"\r\n\r\nThis is an S/MIME", b"\r\n\r\nThis is an S/MIME")
    body_start = tampered.index(b"Content-Transfer-Encoding: base64\r\n\r\n") + 38
    tampered = tampered[:body_start] + (b"A" if tampered[body_start:body_start + 1] != b"A" else b"B") \
        + tampered[body_start + 1:]
    assert openssl("smime", "-verify", "-CAfile", root, stdin=tampered).returncode != 0
    bad = verifier.verify(tampered)
    assert bad is not None and bad.status == "invalid"


async def test_inbound_signature_status_and_revocation(pki_server: RunningServer) -> None:
    server = pki_server
    ca = CertificateAuthority.open(server.config.pki, server.config.data_dir)
    record, cert, key = ca.issue_smime("vanthu@example.org", "Văn thư", "Bộ X")
    await server.add_account("nhan@dongnai.gov.vn", PW)
    message = (b"From: vanthu@example.org\r\nTo: nhan@dongnai.gov.vn\r\nSubject: signed\r\n"
               b"X-Signature-Status: valid; signer=forged@example.org\r\n\r\nBody\r\n")
    signed = sign_message(message, cert, key, ca.chain()[:1])
    unsigned_forgery = message

    async def mx(data: bytes) -> None:
        await aiosmtplib.send(data, sender="vanthu@example.org", recipients=["nhan@dongnai.gov.vn"],
                              hostname="127.0.0.1", port=server.port("smtp"), start_tls=False)

    await mx(signed)
    ca.revoke(record.serial, "keyCompromise")
    await mx(signed)
    await mx(unsigned_forgery)
    first, second, third = await asyncio.to_thread(imap_fetch_all, server.port("imap"), "nhan@dongnai.gov.vn")
    assert b"X-Signature-Status: valid; signer=vanthu@example.org\r\n" in first
    assert b"forged@example.org" not in first
    assert b"X-Signature-Status: revoked; signer=vanthu@example.org" in second
    assert b"X-Signature-Status" not in third  # the sender's claim removed, nothing to verify


async def test_offboarding_revokes_certificates(pki_server: RunningServer) -> None:
    server = pki_server
    service = DirectoryService(server.app.store, open_directory(server.app.store), server.config)
    await service.add_agency("stttt", "Sở Thông tin và Truyền thông", None, by=BY)
    issued = await service.add_person("Nguyễn Văn An", "stttt", by=BY)
    ca = CertificateAuthority.open(server.config.pki, server.config.data_dir)
    ca.issue_smime(issued.address, "Nguyễn Văn An", "Sở Thông tin và Truyền thông")
    assert ca.valid_for(issued.address) is not None
    await service.offboard(issued.address, by=BY)
    [record] = ca.records()
    assert record.revoked and record.reason == "affiliationChanged"
    assert ca.valid_for(issued.address) is None


# -- dispatch through the CLI ------------------------------------------------------

def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "mailserver.toml"
    path.write_text(
        f'[server]\ndata_dir = "{tmp_path / "data"}"\ndomains = ["dongnai.gov.vn"]\nlog_level = "WARNING"\n'
        '[policy]\nworkers = 0\nchecks = ["classified"]\n',
        "utf-8",
    )
    return path


def make_docx(path: Path, lines: list[str], extra: str = "") -> None:
    import docx

    document = docx.Document()
    document.add_paragraph("ỦY BAN NHÂN DÂN TỈNH ĐỒNG NAI")
    if extra:
        document.add_paragraph(extra)
    document.add_paragraph("QUYẾT ĐỊNH về việc ban hành Quy chế sử dụng thư điện tử")
    table = document.add_table(rows=1, cols=2)
    cell = table.cell(0, 0)
    cell.paragraphs[0].text = "Nơi nhận:"
    for line in lines:
        cell.add_paragraph(line)
    table.cell(0, 1).paragraphs[0].text = "TM. ỦY BAN NHÂN DÂN\nCHỦ TỊCH"
    document.save(str(path))


def cli(config: Path, *args: str) -> int:
    return main(["--config", str(config), *args])


def test_dispatch_from_document(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    assert cli(config, "pki", "init") == 0
    agencies = [("ubndtinh", "Ủy ban nhân dân tỉnh Đồng Nai"), ("stttt", "Sở Thông tin và Truyền thông"),
                ("ubndbienhoa", "Ủy ban nhân dân thành phố Biên Hòa"),
                ("ubndlongthanh", "Ủy ban nhân dân huyện Long Thành")]
    for code, name in agencies:
        assert cli(config, "agency", "add", code, "--name", name) == 0
    assert cli(config, "group", "add", "ubnd-huyen", "--name", "UBND các huyện, thành phố") == 0
    for code in ("ubndbienhoa", "ubndlongthanh"):
        assert cli(config, "group", "add-member", "ubnd-huyen", code) == 0
    assert cli(config, "pki", "issue", "ubndtinh@dongnai.gov.vn") == 0
    doc = tmp_path / "qd-70.docx"
    make_docx(doc, ["- Như Điều 3;", "- Sở TT&TT;", "- UBND các huyện, thành phố;", "- Lưu: VT, KT."])
    capsys.readouterr()
    assert cli(config, "dispatch", str(doc), "--from", "ubndtinh", "--from-document",
               "--number", "Số 70/2009/QĐ-UBND") == 1
    err = capsys.readouterr().err
    assert "Như Điều 3" in err and "nothing sent" in err
    assert not (tmp_path / "data" / "dispatch").exists()
    assert cli(config, "dispatch", str(doc), "--from", "ubndtinh", "--from-document", "--skip", "Như Điều 3",
               "--number", "Số 70/2009/QĐ-UBND", "--json") == 0
    import json
    record = json.loads(capsys.readouterr().out)
    assert record["signed"] is True
    assert {r["address"]: r["status"] for r in record["recipients"]} == {
        "stttt@dongnai.gov.vn": "delivered", "ubndbienhoa@dongnai.gov.vn": "delivered",
        "ubndlongthanh@dongnai.gov.vn": "delivered",
    }
    assert cli(config, "dispatch", "status", record["id"]) == 0
    assert "ubndlongthanh@dongnai.gov.vn" in capsys.readouterr().out
    # The copy in an agency mailbox verifies with openssl against the root.
    data = tmp_path / "data"
    stored = [p for p in (data / "maildir").rglob("*")
              if p.is_file() and b"X-Document-Number" in p.read_bytes()]
    assert len(stored) == 4  # three agencies, and the issuer's copy in its Sent folder
    out = openssl("smime", "-verify", "-CAfile", str(pki_directory(make_config(data).pki, data) / "root.pem"),
                  stdin=stored[0].read_bytes())
    assert out.returncode == 0, out.stderr
    # A classified document is refused by the policy engine (Điều 6), nothing sent.
    secret = tmp_path / "mat.docx"
    make_docx(secret, ["- Sở TT&TT;"], extra="Độ mật: TỐI MẬT")
    assert cli(config, "dispatch", str(secret), "--from", "ubndtinh", "--to", "stttt") == 1
    assert "policy" in capsys.readouterr().err
    # CLI revoke + CRL, checked by openssl.
    assert cli(config, "pki", "revoke", "ubndtinh@dongnai.gov.vn", "--reason", "superseded") == 0
    assert cli(config, "pki", "crl", "--out", str(tmp_path / "crl.der")) == 0
    assert openssl("crl", "-inform", "DER", "-in", str(tmp_path / "crl.der"), "-noout").returncode == 0
    assert cli(config, "pki", "list", "--json") == 0
    assert '"revoked_at"' in capsys.readouterr().out


def test_import_external_ca_certificate_signs_and_is_trusted(tmp_path: Path) -> None:
    government = new_ca(tmp_path / "gov")
    record, cert, key = government.issue_smime("stttt@dongnai.gov.vn", "Sở TT&TT", "Ban Cơ yếu Chính phủ")
    p12 = tmp_path / "gov.p12"
    p12.write_bytes(pkcs12.serialize_key_and_certificates(
        b"stttt", key, cert, government.chain(), serialization_none()))
    config = write_config(tmp_path)
    assert cli(config, "pki", "init") == 0
    assert cli(config, "pki", "import", "--p12", str(p12)) == 0
    data = tmp_path / "data"
    ca = CertificateAuthority.open(make_config(data).pki, data)
    chosen = ca.valid_for("stttt@dongnai.gov.vn")
    assert chosen is not None and chosen.kind == "external"
    message = b"From: stttt@dongnai.gov.vn\r\nTo: a@dongnai.gov.vn\r\nSubject: x\r\n\r\nBody\r\n"
    signed = sign_message(message, ca.certificate(chosen.cert), ca.load_key(chosen.key or ""),
                          ca.extra_chain(chosen))
    status = SmimeVerifier(ca).verify(signed)
    assert status is not None and status.status == "valid"
    # Without the imported anchor the same signature is untrusted.
    stranger = new_ca(tmp_path / "other")
    assert SmimeVerifier(stranger).verify(signed).status == "untrusted"  # type: ignore[union-attr]


def serialization_none():  # noqa: ANN201
    from cryptography.hazmat.primitives import serialization

    return serialization.NoEncryption()

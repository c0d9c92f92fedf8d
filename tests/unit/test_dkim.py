"""DKIM keys and signing (pki/keystore.py, pki/dkim.py): generated records,
signatures verified by dkimpy against those records, dual signing, rotation."""

from __future__ import annotations

import base64
import re
import stat
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dkim
import pytest

from pki.dkim import DkimSigner, SigningError, header_names, signed_headers
from pki.keystore import DkimKey, DkimKeyStore, KeyStoreError
from pki.settings import DkimSettings
from policy.checks.authentication import DkimResult, verify_dkim
from policy.dns import StaticResolver

DOMAIN = "dongnai.gov.vn"
MESSAGE = (
    b"From: =?UTF-8?B?Tmd1eeG7hW4gVsSDbiBBbg==?= <annv@dongnai.gov.vn>\r\n"
    b"To: citizen@example.org\r\n"
    b"Subject: Thong bao lich hop\r\n"
    b"Date: Mon, 05 Jan 2026 08:00:00 +0700\r\n"
    b"Message-ID: <abc123@dongnai.gov.vn>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Kinh gui anh chi,\r\n"
    b"Lich hop tuan nay.\r\n"
)


def records(store: DkimKeyStore) -> dict[str, bytes]:
    return {k.dns_name + ".": k.txt.encode() for k in store.keys()}


def dnsfunc_for(store: DkimKeyStore):  # noqa: ANN201
    table = records(store)

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        return table.get(name.decode())

    return dnsfunc


def signature_count(message: bytes) -> int:
    return len(re.findall(rb"^DKIM-Signature:", message, re.MULTILINE))


@pytest.fixture
def store(tmp_path: Path) -> DkimKeyStore:
    return DkimKeyStore(tmp_path / "dkim")


def far_future() -> date:
    return date.today() + timedelta(days=30)


# -- keys and records -------------------------------------------------------------------
def test_keygen_rsa_record_and_private_file(store: DkimKeyStore) -> None:
    key = store.generate(DOMAIN, "s2026", "rsa", retire_after=far_future())
    assert key.status == "active"
    assert key.dns_name == "s2026._domainkey.dongnai.gov.vn"
    assert key.txt.startswith("v=DKIM1; k=rsa; p=MIIB")
    # The zone line splits the text into <=255-octet strings that join back.
    assert key.zone_line.startswith('s2026._domainkey.dongnai.gov.vn. IN TXT "v=DKIM1; k=rsa; p=')
    strings = re.findall(r'"([^"]*)"', key.zone_line)
    assert all(len(s) <= 255 for s in strings) and "".join(strings) == key.txt
    # RSA 2048: the DER SubjectPublicKeyInfo is 294 octets.
    assert len(base64.b64decode(key.public)) == 294
    path = store.directory / key.file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN RSA PRIVATE KEY-----")


def test_keygen_ed25519_record(store: DkimKeyStore) -> None:
    key = store.generate(DOMAIN, "e2026", "ed25519", retire_after=far_future())
    assert re.fullmatch(r"v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=", key.txt)
    assert len(base64.b64decode(key.public)) == 32
    assert stat.S_IMODE((store.directory / key.file).stat().st_mode) == 0o600


def test_keygen_refuses_bad_names_and_reused_selector(store: DkimKeyStore) -> None:
    store.generate(DOMAIN, "s1", "rsa", retire_after=far_future())
    with pytest.raises(KeyStoreError, match="already used"):
        store.generate(DOMAIN, "s1", "ed25519", retire_after=far_future())
    with pytest.raises(KeyStoreError, match="selector"):
        store.generate(DOMAIN, "bad selector", "rsa", retire_after=far_future())
    with pytest.raises(KeyStoreError, match="domain"):
        store.generate("not a domain", "s2", "rsa", retire_after=far_future())


def test_index_is_reread_by_a_long_lived_reader(store: DkimKeyStore, tmp_path: Path) -> None:
    reader = DkimKeyStore(tmp_path / "dkim")
    assert reader.active(DOMAIN) == []
    store.generate(DOMAIN, "s1", "rsa", retire_after=far_future())
    assert [k.selector for k in reader.active(DOMAIN)] == ["s1"]


# -- signing ----------------------------------------------------------------------------
def test_rsa_signature_verifies_with_dkimpy(store: DkimKeyStore) -> None:
    store.generate(DOMAIN, "s2026", "rsa", retire_after=far_future())
    signed = DkimSigner(store, DkimSettings()).sign(MESSAGE, DOMAIN)
    assert signed.endswith(MESSAGE)
    assert signature_count(signed) == 1
    tags = dkim.util.parse_tag_value(signed.split(b"\r\nFrom:")[0].split(b":", 1)[1])
    assert tags[b"a"] == b"rsa-sha256"
    assert tags[b"c"] == b"relaxed/relaxed"
    assert tags[b"d"] == DOMAIN.encode() and tags[b"s"] == b"s2026"
    signed_fields = [h.strip() for h in tags[b"h"].split(b":")]
    # Only present fields, plus From oversigned once.
    assert signed_fields.count(b"from") == 2
    assert set(signed_fields) == {
        b"from", b"to", b"subject", b"date", b"message-id", b"mime-version", b"content-type"
    }
    assert dkim.verify(signed, dnsfunc=dnsfunc_for(store))


def test_ed25519_signature_verifies_with_dkimpy(store: DkimKeyStore) -> None:
    store.generate(DOMAIN, "e2026", "ed25519", retire_after=far_future())
    signed = DkimSigner(store, DkimSettings()).sign(MESSAGE, DOMAIN)
    assert b"a=ed25519-sha256;" in signed
    assert dkim.verify(signed, dnsfunc=dnsfunc_for(store))


def test_dual_signature_both_verify(store: DkimKeyStore) -> None:
    store.generate(DOMAIN, "s2026", "rsa", retire_after=far_future())
    store.generate(DOMAIN, "e2026", "ed25519", retire_after=far_future())
    signed = DkimSigner(store, DkimSettings()).sign(MESSAGE, "DongNai.gov.vn")
    assert signature_count(signed) == 2
    d = dkim.DKIM(signed)
    assert d.verify(0, dnsfunc=dnsfunc_for(store))
    assert d.verify(1, dnsfunc=dnsfunc_for(store))
    # RSA on top, where verifiers that know only RSA look first.
    assert signed.startswith(b"DKIM-Signature: v=1; a=rsa-sha256;")
    # And our own verifier reports both.
    resolver = StaticResolver({f"{k.dns_name} TXT": [k.txt] for k in store.keys()})
    outcomes = verify_dkim(resolver, signed)
    assert [(o.result, o.algorithm) for o in outcomes] == [
        (DkimResult.PASS, "rsa-sha256"), (DkimResult.PASS, "ed25519-sha256")
    ]


def test_no_key_returns_message_unchanged(store: DkimKeyStore) -> None:
    store.generate(DOMAIN, "s2026", "rsa", retire_after=far_future())
    signer = DkimSigner(store, DkimSettings())
    assert signer.sign(MESSAGE, "example.org") == MESSAGE
    assert signer.sign(MESSAGE, "not a domain") == MESSAGE


def test_unusable_key_raises_rather_than_sending_unsigned(store: DkimKeyStore) -> None:
    key = store.generate(DOMAIN, "s2026", "rsa", retire_after=far_future())
    (store.directory / key.file).write_bytes(b"not a key")
    with pytest.raises(SigningError):
        DkimSigner(store, DkimSettings()).sign(MESSAGE, DOMAIN)


@pytest.mark.parametrize("algorithm", ["rsa", "ed25519"])
def test_tampered_body_fails(store: DkimKeyStore, algorithm: str) -> None:
    store.generate(DOMAIN, "sel", algorithm, retire_after=far_future())  # type: ignore[arg-type]
    signed = DkimSigner(store, DkimSettings()).sign(MESSAGE, DOMAIN)
    tampered = signed.replace(b"Lich hop tuan nay.", b"Lich hop da huy.")
    assert not dkim.verify(tampered, dnsfunc=dnsfunc_for(store))
    resolver = StaticResolver({f"{k.dns_name} TXT": [k.txt] for k in store.keys()})
    assert verify_dkim(resolver, tampered)[0].result is DkimResult.FAIL


def test_added_from_field_breaks_the_oversigned_signature(store: DkimKeyStore) -> None:
    store.generate(DOMAIN, "s2026", "rsa", retire_after=far_future())
    signed = DkimSigner(store, DkimSettings()).sign(MESSAGE, DOMAIN)
    # A second From inserted below the signature (RFC 6376 section 8.15).
    head, _, rest = signed.partition(b"From:")
    forged = head + b"From: giamdoc@dongnai.gov.vn\r\nFrom:" + rest
    assert not dkim.verify(forged, dnsfunc=dnsfunc_for(store))


def test_relaxed_canonicalisation_survives_refolding(store: DkimKeyStore) -> None:
    store.generate(DOMAIN, "s2026", "rsa", retire_after=far_future())
    store.generate(DOMAIN, "e2026", "ed25519", retire_after=far_future())
    signed = DkimSigner(store, DkimSettings()).sign(MESSAGE, DOMAIN)
    # A relay re-folds Subject, changes whitespace in To and adds trailing
    # whitespace to a body line: relaxed/relaxed (RFC 6376 3.4.2, 3.4.4) ignores it.
    refolded = (
        signed.replace(b"Subject: Thong bao lich hop\r\n", b"Subject: Thong bao\r\n \t lich   hop\r\n")
        .replace(b"To: citizen@example.org", b"To:    citizen@example.org  ")
        .replace(b"Lich hop tuan nay.\r\n", b"Lich hop tuan nay.  \r\n")
    )
    assert refolded != signed
    d = dkim.DKIM(refolded)
    assert d.verify(0, dnsfunc=dnsfunc_for(store))
    assert d.verify(1, dnsfunc=dnsfunc_for(store))


def test_smime_multipart_signed_body_is_untouched(store: DkimKeyStore) -> None:
    body = (
        b'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; '
        b'micalg=sha-256; boundary="b1"\r\n\r\n'
        b"--b1\r\nContent-Type: text/plain\r\n\r\nNoi dung  \r\n--b1\r\n"
        b"Content-Type: application/pkcs7-signature\r\n\r\nMIAGCSqGSIb3DQEHAqCAMIACAQEx\r\n--b1--\r\n"
    )
    head = b"From: annv@dongnai.gov.vn\r\nTo: x@example.org\r\nSubject: ky so\r\nMIME-Version: 1.0\r\n"
    message = head + body
    store.generate(DOMAIN, "s2026", "rsa", retire_after=far_future())
    signed = DkimSigner(store, DkimSettings()).sign(message, DOMAIN)
    assert signed.endswith(message)  # body bytes (S/MIME signature input) unchanged
    assert dkim.verify(signed, dnsfunc=dnsfunc_for(store))


def test_header_helpers() -> None:
    assert header_names(MESSAGE)[:3] == ["from", "to", "subject"]
    present = ["from", "to", "received"]
    assert signed_headers(present, ["From", "To", "Cc"], ["From"]) == ["from", "to", "from"]
    assert signed_headers(["to"], ["To"], []) == ["to", "from"]


# -- rotation ---------------------------------------------------------------------------
def test_rotation_keeps_old_selector_published_until_the_date(store: DkimKeyStore) -> None:
    today = datetime.now(UTC).date()
    old = store.generate(DOMAIN, "s2025", "rsa", retire_after=today)
    ed = store.generate(DOMAIN, "e2025", "ed25519", retire_after=today)
    until = today + timedelta(days=7)
    new = store.generate(DOMAIN, "s2026", "rsa", retire_after=until)

    by_selector: dict[str, DkimKey] = {k.selector: k for k in store.keys(DOMAIN)}
    assert by_selector["s2025"].status == "retiring"
    assert by_selector["s2025"].retire_after == until.isoformat()
    assert by_selector["e2025"].status == "active"  # other algorithm untouched
    assert {k.selector for k in store.active(DOMAIN)} == {"s2026", "e2025"}

    published = {k.selector for k in store.published(DOMAIN, today)}
    assert published == {old.selector, ed.selector, new.selector}
    assert {k.selector for k in store.published(DOMAIN, until)} == published
    assert {k.selector for k in store.published(DOMAIN, until + timedelta(days=1))} == {"e2025", "s2026"}
    assert by_selector["s2025"].state(until + timedelta(days=1)) == "expired"

    # The signer uses only the new RSA key and the Ed25519 one.
    signed = DkimSigner(store, DkimSettings()).sign(MESSAGE, DOMAIN)
    assert b"s=s2026;" in signed and b"s=e2025;" in signed and b"s=s2025;" not in signed

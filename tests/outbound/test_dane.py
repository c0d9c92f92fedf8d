"""DANE for SMTP (RFC 7672) end to end over loopback: TLSA records come from
tests/dnsstub.py acting as the validating resolver (``dns.dnssec_resolver``),
with or without the AD bit; MX and address records from the static map."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mailserver.app import App
from pki.dane import Tlsa, parse_tlsa, verify_chain
from pki.tls import server_context
from policy.dns import DnsSettings
from tests.dnsstub import DnsStub
from tests.outbound.conftest import (
    SENDER,
    eventually,
    message,
    mx_records,
    remote_mx,
    world_config,
)
from tests.tlsca import TestCa

RCPT = "vanthu@example.org"


def spki_sha256(cert: x509.Certificate) -> str:
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


async def _deliver(tmp_path: Path, ca: TestCa, tlsa: list[str], *, secure: bool | str,
                   starttls: bool = True) -> tuple[list[bool], str, list[tuple[str, str]]]:
    """Queue one message to example.org; returns (TLS flag of each message the MX
    got, status of a recipient still queued or "", recorded (policy type, result))."""
    issued = ca.issue("mx.example.org")
    mx = await remote_mx(server_context(issued.cert, issued.key) if starttls else None)
    try:
        answers = {(f"_{mx.port}._tcp.mx.example.org", "TLSA"): tlsa,
                   ("example.org", "MX"): ["10 mx.example.org."]}
        tlsa_name = f"_{mx.port}._tcp.mx.example.org"
        ad = [tlsa_name] if secure == "tlsa-only" else bool(secure)
        with DnsStub(answers, authenticated=ad) as stub:
            dns = DnsSettings(static=mx_records("example.org"), use_servers=False,
                              dnssec_resolver=stub.address, timeout=2.0)
            config = world_config(tmp_path / "data", mx.port, static={}, dns=dns, mta_sts=False)
            async with App(config) as app:
                assert app.outbound is not None
                await app.outbound.enqueue(SENDER, [RCPT], message(RCPT), origin="submission")

                async def done() -> bool:
                    # One read: delivered and gone, or tried and waiting.
                    queued = await app.queue.list()
                    if not queued:
                        return True
                    rcpt = queued[0].recipients[0]
                    return rcpt.state == "queued" and rcpt.attempts >= 1

                await eventually(done, "delivered or attempted")
                queued = await app.queue.list()
                status = queued[0].recipients[0].status if queued else ""
                rows = await app.tlsrpt.unreported(datetime.now(UTC) + timedelta(days=1))
            assert ((tlsa_name, "TLSA") in stub.queries) == (secure is not False and secure != "tlsa-only")
        return [m.tls for m in mx.messages], status, [(r.policy_type, r.result) for r in rows]
    finally:
        await mx.stop()


@pytest.fixture
def ca(tmp_path: Path) -> TestCa:
    return TestCa(tmp_path / "ca")


async def test_dane_ee_match_delivers(tmp_path: Path, ca: TestCa) -> None:
    # The record pins the key of exactly the certificate this MX presents.
    issued = ca.issue("mx.example.org", stem="pinned")
    record = f"3 1 1 {spki_sha256(issued.leaf)}"
    mx = await remote_mx(server_context(issued.cert, issued.key))
    try:
        answers = {(f"_{mx.port}._tcp.mx.example.org", "TLSA"): [record],
                   ("example.org", "MX"): ["10 mx.example.org."]}
        with DnsStub(answers, authenticated=True) as stub:
            dns = DnsSettings(static=mx_records("example.org"), use_servers=False,
                              dnssec_resolver=stub.address, timeout=2.0)
            config = world_config(tmp_path / "data", mx.port, static={}, dns=dns, mta_sts=False)
            async with App(config) as app:
                assert app.outbound is not None
                await app.outbound.enqueue(SENDER, [RCPT], message(RCPT), origin="submission")

                async def empty() -> bool:
                    return not await app.queue.list()

                await eventually(empty, "delivered")
                rows = await app.tlsrpt.unreported(datetime.now(UTC) + timedelta(days=1))
        assert [m.tls for m in mx.messages] == [True]
        assert [(r.policy_type, r.result, r.policy_strings) for r in rows] == [("tlsa", "success", (record,))]
    finally:
        await mx.stop()


async def test_dane_mismatch_defers(tmp_path: Path, ca: TestCa) -> None:
    wrong = "3 1 1 " + "00" * 32
    tls, status, rows = await _deliver(tmp_path, ca, [wrong], secure=True)
    assert tls == [] and status == "4.7.5"
    assert rows == [("tlsa", "validation-failure")]


async def test_dane_without_starttls_defers(tmp_path: Path, ca: TestCa) -> None:
    tls, status, rows = await _deliver(tmp_path, ca, ["3 1 1 " + "00" * 32], secure=True, starttls=False)
    assert tls == [] and status == "4.7.10"
    assert rows == [("tlsa", "starttls-not-supported")]


async def test_dane_ignored_without_ad_bit(tmp_path: Path, ca: TestCa) -> None:
    """An answer the resolver did not validate is not DANE (RFC 7672 section 2.2)."""
    tls, status, rows = await _deliver(tmp_path, ca, ["3 1 1 " + "00" * 32], secure=False)
    assert tls == [True] and status == ""
    assert rows == [("no-policy-found", "success")]


async def test_dane_ignored_when_mx_insecure(tmp_path: Path, ca: TestCa) -> None:
    """A secure TLSA record behind an MX answer that is not secure is not used
    (RFC 7672 section 2.2.1): the MX name itself could be an attacker's."""
    tls, status, rows = await _deliver(tmp_path, ca, ["3 1 1 " + "00" * 32], secure="tlsa-only")
    assert tls == [True] and status == ""
    assert rows == [("no-policy-found", "success")]


async def test_dane_ta_pins_the_issuer(tmp_path: Path, ca: TestCa) -> None:
    record = f"2 1 1 {spki_sha256(ca.cert)}"
    tls, status, rows = await _deliver(tmp_path, ca, [record], secure=True)
    assert tls == [True] and status == ""
    assert rows == [("tlsa", "success")]


async def test_dane_ta_of_another_ca_defers(tmp_path: Path, ca: TestCa) -> None:
    other = TestCa(tmp_path / "other", "Other CA")
    tls, status, rows = await _deliver(tmp_path, ca, [f"2 1 1 {spki_sha256(other.cert)}"], secure=True)
    assert tls == [] and status == "4.7.5"
    assert rows == [("tlsa", "validation-failure")]


# -- matching without sockets ------------------------------------------------------------


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize(("selector", "mtype"), [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)])
def test_dane_ee_selectors_and_matching_types(tmp_path: Path, selector: int, mtype: int) -> None:
    from pki.dane import association

    ca = TestCa(tmp_path / "ca")
    leaf = ca.issue("mx.example.org").leaf
    record = Tlsa(3, selector, mtype, association(leaf, selector, mtype))
    assert parse_tlsa(record.text) == record
    assert verify_chain([_der(leaf)], [record], ["anything.example"]) is None
    other = ca.issue("mx.example.org", stem="other").leaf
    assert verify_chain([_der(other)], [record], ["mx.example.org"]) is not None


def test_dane_ta_checks_name_and_dates(tmp_path: Path) -> None:
    from pki.dane import association

    ca = TestCa(tmp_path / "ca")
    anchor = Tlsa(2, 1, 1, association(ca.cert, 1, 1))
    good = ca.issue("mx.example.org").leaf
    assert verify_chain([_der(good), _der(ca.cert)], [anchor], ["mx.example.org"]) is None
    assert "does not name" in (verify_chain([_der(good), _der(ca.cert)], [anchor], ["mx.other.org"]) or "")
    old = ca.issue("mx.example.org", stem="old", expired=True).leaf
    assert "expired" in (verify_chain([_der(old), _der(ca.cert)], [anchor], ["mx.example.org"]) or "")
    assert verify_chain([_der(good)], [Tlsa(1, 1, 1, b"x")], ["mx.example.org"]) == "no usable TLSA record"
    assert parse_tlsa("3 1 1 zz") is None and parse_tlsa("3 1") is None

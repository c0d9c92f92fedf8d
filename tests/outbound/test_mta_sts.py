"""MTA-STS (RFC 8461) on the sending side, end to end over loopback: the policy
comes from an HTTPS server with a test CA, the MX is an aiosmtpd server with or
without STARTTLS and with a right or wrong certificate, DNS from the static map."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dkim

from mailserver.app import App
from mailserver.smtp.tlsrpt import send_reports
from pki.dkim import key_directory
from pki.keystore import DkimKeyStore
from tests.outbound.conftest import (
    SENDER,
    PolicyServer,
    attempted,
    eventually,
    message,
    mx_records,
    parse,
    policy,
    remote_mx,
    sts_records,
    tls_for,
    world_config,
)
from tests.tlsca import TestCa

RCPT = "vanthu@example.org"


async def _enforce_refuses(tmp_path: Path, ca: TestCa, policy_server: PolicyServer, mx_tls: object,
                           status: str, failure: str) -> None:
    policy_server.policies["mta-sts.example.org"] = policy("enforce", "mx.example.org")
    mx = await remote_mx(mx_tls)  # type: ignore[arg-type]
    try:
        static = mx_records("example.org") | sts_records("example.org")
        config = world_config(tmp_path / "data", mx.port, static=static, ca_file=str(ca.pem),
                              mta_sts_port=policy_server.port)
        async with App(config) as app:
            assert app.outbound is not None
            await app.outbound.enqueue(SENDER, [RCPT], message(RCPT), origin="submission")
            await eventually(lambda: attempted(app), "one attempt made")
            (queued,) = await app.queue.list()
            (rcpt,) = queued.recipients
            assert rcpt.state == "queued" and rcpt.status == status, rcpt
            assert mx.messages == [], "nothing may reach an enforce domain without valid TLS"
            rows = await app.tlsrpt.unreported(until_far())
            assert [(r.policy_type, r.result) for r in rows] == [("sts", failure)]
            assert rows[0].mx_host == "mx.example.org" and "mx: mx.example.org" in rows[0].policy_strings
        assert policy_server.requests == ["mta-sts.example.org"]
    finally:
        await mx.stop()


def until_far() -> datetime:
    return datetime.now(UTC) + timedelta(days=1)


async def test_enforce_without_starttls_waits(
    tmp_path: Path, ca: TestCa, policy_server: PolicyServer
) -> None:
    await _enforce_refuses(tmp_path, ca, policy_server, None, "4.7.10", "starttls-not-supported")


async def test_enforce_wrong_certificate_waits(
    tmp_path: Path, ca: TestCa, policy_server: PolicyServer
) -> None:
    wrong = tls_for(ca, "mx.someone-else.net")
    await _enforce_refuses(tmp_path, ca, policy_server, wrong, "4.7.5", "certificate-host-mismatch")


async def test_enforce_untrusted_certificate_waits(
    tmp_path: Path, ca: TestCa, policy_server: PolicyServer
) -> None:
    other_ca = TestCa(tmp_path / "other-ca", "Not Trusted CA")
    await _enforce_refuses(tmp_path, ca, policy_server, tls_for(other_ca, "mx.example.org"), "4.7.5",
                           "certificate-not-trusted")


async def test_enforce_valid_tls_delivers_and_policy_cache_survives_restart(
    tmp_path: Path, ca: TestCa, policy_server: PolicyServer
) -> None:
    policy_server.policies["mta-sts.example.org"] = policy("enforce", "*.example.org")
    mx = await remote_mx(tls_for(ca, "mx.example.org"))
    try:
        static = mx_records("example.org") | sts_records("example.org")
        config = world_config(tmp_path / "data", mx.port, static=static, ca_file=str(ca.pem),
                              mta_sts_port=policy_server.port)
        async with App(config) as app:
            assert app.outbound is not None
            await app.outbound.enqueue(SENDER, [RCPT], message(RCPT), origin="submission")
            await eventually(lambda: _empty(app), "delivered")
            assert [m.tls for m in mx.messages] == [True]
            rows = await app.tlsrpt.unreported(until_far())
            assert [(r.policy_type, r.result) for r in rows] == [("sts", "success")]
        cached = json.loads((tmp_path / "data" / "mta-sts" / "example.org.json").read_text())
        assert cached["id"] == "20261205" and "mode: enforce" in cached["policy"]
        # The policy host is gone and the MX lost STARTTLS: the cached policy still enforces.
        await policy_server.stop()
        await mx.stop()
        plain = await remote_mx(None)
        try:
            config = world_config(tmp_path / "data", plain.port, static=static, ca_file=str(ca.pem),
                                  mta_sts_port=policy_server.port)
            async with App(config) as app:
                assert app.outbound is not None
                await app.outbound.enqueue(SENDER, [RCPT], message(RCPT, "again"), origin="submission")
                await eventually(lambda: attempted(app), "attempt made")
                (queued,) = await app.queue.list()
                assert queued.recipients[0].status == "4.7.10"
                assert plain.messages == []
        finally:
            await plain.stop()
        assert policy_server.requests == ["mta-sts.example.org"], "same id: fetched once"
    finally:
        await mx.stop()


async def test_enforce_mx_not_in_policy_waits(
    tmp_path: Path, ca: TestCa, policy_server: PolicyServer
) -> None:
    policy_server.policies["mta-sts.example.org"] = policy("enforce", "mx.elsewhere.example")
    mx = await remote_mx(tls_for(ca, "mx.example.org"))
    try:
        static = mx_records("example.org") | sts_records("example.org")
        config = world_config(tmp_path / "data", mx.port, static=static, ca_file=str(ca.pem),
                              mta_sts_port=policy_server.port)
        async with App(config) as app:
            assert app.outbound is not None
            await app.outbound.enqueue(SENDER, [RCPT], message(RCPT), origin="submission")
            await eventually(lambda: attempted(app), "attempt made")
            (queued,) = await app.queue.list()
            assert queued.recipients[0].status == "4.7.5"
            assert mx.messages == []
            rows = await app.tlsrpt.unreported(until_far())
            assert [r.result for r in rows] == ["validation-failure"]
    finally:
        await mx.stop()


async def _empty(app: App) -> bool:
    return not await app.queue.list()


async def test_testing_mode_delivers_and_reports(
    tmp_path: Path, ca: TestCa, policy_server: PolicyServer
) -> None:
    """A ``testing`` domain whose MX shows a wrong certificate gets the mail (over
    unauthenticated TLS), the failure is recorded, and the report that goes to the
    domain's rua follows RFC 8460 (sections 4.4 and 5.3)."""
    domain, rcpt = "testing.example", "ban@testing.example"
    policy_server.policies["mta-sts.testing.example"] = policy("testing", "mx.testing.example")
    mx = await remote_mx(tls_for(ca, "wrong.name.example"))
    try:
        static = mx_records(domain, "mx.testing.example") | sts_records(domain)
        config = world_config(tmp_path / "data", mx.port, static=static, ca_file=str(ca.pem),
                              mta_sts_port=policy_server.port)
        async with App(config) as app:
            assert app.outbound is not None
            await app.outbound.enqueue(SENDER, [rcpt], message(rcpt), origin="submission")
            await eventually(lambda: _empty(app), "delivered despite the failure")
            assert [(m.rcpt_tos, m.tls) for m in mx.messages] == [([rcpt], True)]
            rows = await app.tlsrpt.unreported(until_far())
            assert [(r.policy_domain, r.result) for r in rows] == [(domain, "certificate-host-mismatch")]

            # Section 5.3: the report is DKIM-signed, as all our mail (key as `dkim keygen` makes it).
            keys = DkimKeyStore(key_directory(config.dkim, config.data_dir))
            keys.generate("dongnai.gov.vn", "s2026e", "ed25519",
                          retire_after=date.today() + timedelta(days=7))
            published = {k.dns_name + ".": k.txt.encode() for k in keys.keys()}
            sent = await send_reports(config, app.tlsrpt, app.resolver, app.outbound, until=until_far())
            assert [s.recipients for s in sent] == [(f"tls-reports@{domain}",)]
            await eventually(lambda: _empty(app), "report delivered")
            # Reported rows are not counted again; the report's own delivery is a new outcome.
            later = await app.tlsrpt.unreported(until_far())
            assert rows[0].id not in [r.id for r in later] and len(later) == 1
        assert dkim.DKIM(mx.messages[1].content).verify(
            dnsfunc=lambda name, timeout=5: published.get(name.decode())
        ), "report DKIM-signed"
        report_mail = parse(mx.messages[1].content)
        assert mx.messages[1].rcpt_tos == [f"tls-reports@{domain}"]
        assert report_mail.get_content_type() == "multipart/report"
        assert report_mail.get_param("report-type") == "tlsrpt"
        assert report_mail["TLS-Report-Domain"] == domain
        assert report_mail["TLS-Report-Submitter"] == "dongnai.gov.vn"
        subject = f"Report Domain: {domain} Submitter: dongnai.gov.vn Report-ID: <"
        assert report_mail["Subject"].startswith(subject)
        (attachment,) = [p for p in report_mail.walk() if p.get_content_type() == "application/tlsrpt+gzip"]
        name = attachment.get_filename()
        assert name.startswith(f"dongnai.gov.vn!{domain}!") and name.endswith(".json.gz")
        report = json.loads(gzip.decompress(attachment.get_payload(decode=True)))
        validate_rfc8460(report)
        (entry,) = report["policies"]
        assert entry["policy"]["policy-type"] == "sts" and entry["policy"]["policy-domain"] == domain
        assert entry["policy"]["mx-host"] == ["mx.testing.example"]
        assert entry["summary"] == {"total-successful-session-count": 0, "total-failure-session-count": 1}
        (detail,) = entry["failure-details"]
        assert detail["result-type"] == "certificate-host-mismatch"
        assert detail["receiving-mx-hostname"] == "mx.testing.example" and detail["failed-session-count"] == 1
    finally:
        await mx.stop()


RESULT_TYPES = {
    "starttls-not-supported", "certificate-host-mismatch", "certificate-expired", "certificate-not-trusted",
    "validation-failure", "tlsa-invalid", "dnssec-invalid", "dane-required", "sts-policy-fetch-error",
    "sts-policy-invalid", "sts-webpki-invalid",
}


def validate_rfc8460(report: dict[str, object]) -> None:
    """The required members and types of RFC 8460 section 4.4 (and the result
    types of section 4.3.2)."""
    assert isinstance(report["organization-name"], str) and report["organization-name"]
    assert isinstance(report["contact-info"], str) and isinstance(report["report-id"], str)
    dates = report["date-range"]
    assert isinstance(dates, dict)
    for key in ("start-datetime", "end-datetime"):
        assert isinstance(dates[key], str) and dates[key].endswith("Z")
        datetime.fromisoformat(dates[key].replace("Z", "+00:00"))
    assert dates["start-datetime"] < dates["end-datetime"]
    policies = report["policies"]
    assert isinstance(policies, list) and policies
    for entry in policies:
        assert entry["policy"]["policy-type"] in ("sts", "tlsa", "no-policy-found")
        assert isinstance(entry["policy"]["policy-domain"], str)
        for key in ("total-successful-session-count", "total-failure-session-count"):
            assert isinstance(entry["summary"][key], int)
        for detail in entry.get("failure-details", []):
            assert detail["result-type"] in RESULT_TYPES
            assert isinstance(detail["failed-session-count"], int)


async def test_testing_mode_without_starttls_delivers_and_records(
    tmp_path: Path, ca: TestCa, policy_server: PolicyServer
) -> None:
    domain, rcpt = "testing.example", "ban@testing.example"
    policy_server.policies["mta-sts.testing.example"] = policy("testing", "mx.testing.example")
    mx = await remote_mx(None)
    try:
        static = mx_records(domain, "mx.testing.example") | sts_records(domain)
        config = world_config(tmp_path / "data", mx.port, static=static, ca_file=str(ca.pem),
                              mta_sts_port=policy_server.port)
        async with App(config) as app:
            assert app.outbound is not None
            await app.outbound.enqueue(SENDER, [rcpt], message(rcpt), origin="submission")
            await eventually(lambda: _empty(app), "delivered")
            rows = await app.tlsrpt.unreported(until_far())
        assert [(m.rcpt_tos, m.tls) for m in mx.messages] == [([rcpt], False)]
        assert [(r.policy_type, r.result) for r in rows] == [("sts", "starttls-not-supported")]
    finally:
        await mx.stop()

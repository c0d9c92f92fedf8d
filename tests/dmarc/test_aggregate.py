"""DMARC aggregate reports and ARC without sockets: the report XML against
RFC 7489 appendix C, rua parsing, the section 7.1 destination check, the
parser on a Google-style report and on hostile input, and the ARC chain with
a trusted sealer overriding a DMARC failure (RFC 8617)."""

from __future__ import annotations

import gzip
import io
import zipfile
from datetime import date, timedelta
from pathlib import Path

import dkim
import pytest

from pki.arc import seal_forwarded
from pki.keystore import DkimKeyStore
from policy import codes
from policy.aggregate import (
    AggregateReport,
    Destination,
    DkimAuth,
    Evaluation,
    PolicyPublished,
    ReportFormatError,
    SpfAuth,
    destination_verified,
    evaluation_from,
    evaluation_from_json,
    evaluation_json,
    extract_report,
    parse_report,
    parse_rua,
    report_filename,
    report_subject,
    report_xml,
)
from policy.checks.authentication import (
    ArcResult,
    DmarcResult,
    auth_reply,
    authenticate_sync,
    parse_dmarc_record,
)
from policy.dns import DnsTempError, StaticResolver
from tests.dmarc.samples import GOOGLE_REPORT, report_message, schema_errors

PUBLISHED = PolicyPublished("partner.test", "r", "s", "reject", "quarantine", 100)


def evaluation(ip: str = "192.0.2.10", **changes: object) -> Evaluation:
    base: dict[str, object] = dict(
        policy_domain="partner.test", header_from="partner.test", source_ip=ip, disposition="none",
        dkim="pass", spf="fail",
        dkim_results=(DkimAuth("partner.test", "k1", "pass"),),
        spf_results=(SpfAuth("bounce.example", "mfrom", "softfail"),),
        published=PUBLISHED, rua=("mailto:dmarc@partner.test",), ri=86400,
    )
    base.update(changes)
    return Evaluation(**base)  # type: ignore[arg-type]


def test_report_xml_is_valid_per_appendix_c() -> None:
    rows = (
        (evaluation(), 3),
        (evaluation("2001:db8::25", disposition="reject", dkim="fail", dkim_results=()), 1),
        (evaluation("198.51.100.7", dkim="fail", override="trusted_forwarder",
                    override_comment="arc=pass as.d=lists.example.org"), 2),
        (evaluation("192.0.2.99", spf_results=()), 1),  # no SPF domain: a "none" spf element
    )
    report = AggregateReport("dongnai.gov.vn", "noreply-dmarc@dongnai.gov.vn", "r-1@dongnai.gov.vn",
                             1764892800, 1764979200, PUBLISHED, rows)
    xml = report_xml(report)
    assert schema_errors(xml) == []
    parsed = parse_report(xml)  # our own parser reads our own output back
    assert (parsed.org_name, parsed.report_id, parsed.domain, parsed.policy) == (
        "dongnai.gov.vn", "r-1@dongnai.gov.vn", "partner.test", "reject")
    assert [(r.source_ip, r.count, r.disposition, r.dkim) for r in parsed.rows] == [
        ("192.0.2.10", 3, "none", "pass"), ("2001:db8::25", 1, "reject", "fail"),
        ("198.51.100.7", 2, "none", "fail"), ("192.0.2.99", 1, "none", "pass")]
    assert b"<type>trusted_forwarder</type>" in xml


def test_schema_catches_a_bad_report() -> None:
    """The schema check can fail: a disposition outside the enumeration."""
    report = AggregateReport("o", "e@o", "id", 1, 2, PUBLISHED, ((evaluation(disposition="bounce"), 1),))
    assert schema_errors(report_xml(report))


def test_filename_and_subject_per_section_7_2_1_1() -> None:
    assert report_filename("dongnai.gov.vn", "partner.test", 1764892800, 1764979200) == (
        "dongnai.gov.vn!partner.test!1764892800!1764979200.xml.gz")
    assert report_subject("partner.test", "dongnai.gov.vn", "abc") == (
        "Report Domain: partner.test Submitter: dongnai.gov.vn Report-ID: <abc>")


@pytest.mark.parametrize(
    ("uris", "expected"),
    [
        (["mailto:a@b.example"], [Destination("a@b.example", None)]),
        (["mailto:a@b.example!10m"], [Destination("a@b.example", 10 * 1024 * 1024)]),
        (["MAILTO:a@b.example!50k", " mailto:c@d.example!100 "],
         [Destination("a@b.example", 50 * 1024), Destination("c@d.example", 100)]),
        (["https://b.example/r", "mailto:nobody", "mailto:@x", "mailto:a@b!10q"], []),
    ],
)
def test_parse_rua(uris: list[str], expected: list[Destination]) -> None:
    assert parse_rua(uris) == expected


def test_record_keeps_rua_and_ri() -> None:
    record = parse_dmarc_record("v=DMARC1; p=none; rua=mailto:a@x.example!10m, mailto:b@y.example; ri=3600")
    assert record is not None
    assert record.rua == ("mailto:a@x.example!10m", "mailto:b@y.example") and record.ri == 3600
    clamped = parse_dmarc_record("v=DMARC1; p=none; ri=60")
    assert clamped is not None and clamped.ri == 3600


class _Failing(StaticResolver):
    async def query(self, name: str, rdtype: str) -> list[str]:
        raise DnsTempError(name)


async def test_external_destination_must_agree() -> None:
    resolver = StaticResolver({"partner.test._report._dmarc.reports.example TXT": ["v=DMARC1"],
                               "partner.test._report._dmarc.other.example TXT": ["v=spf1 -all"]})
    assert await destination_verified(resolver, "partner.test", Destination("x@reports.example", None))
    assert not await destination_verified(resolver, "partner.test", Destination("x@other.example", None))
    assert not await destination_verified(resolver, "partner.test", Destination("x@silent.example", None))
    # Inside the organizational domain no record is needed.
    assert await destination_verified(resolver, "mail.partner.test", Destination("x@partner.test", None))
    assert not await destination_verified(_Failing({}), "partner.test", Destination("x@r.example", None))


def test_evaluation_json_round_trip() -> None:
    e = evaluation(override="trusted_forwarder", override_comment="c")
    assert evaluation_from_json(evaluation_json(e)) == e
    assert e.key() == evaluation_from_json(evaluation_json(e)).key()
    assert e.key() != evaluation(ip="192.0.2.11").key()


# -- receiving ---------------------------------------------------------------------


def test_google_style_report_parsed_from_its_message() -> None:
    report = parse_report(extract_report(report_message(GOOGLE_REPORT, "dmarc@dongnai.gov.vn")))
    assert (report.org_name, report.report_id, report.domain, report.policy) == (
        "google.com", "1234567890123456789", "dongnai.gov.vn", "quarantine")
    assert (report.begin, report.end) == (1764892800, 1764979199)
    assert [(r.source_ip, r.count, r.dkim, r.spf, r.disposition) for r in report.rows] == [
        ("203.113.131.5", 42, "pass", "pass", "none"), ("198.51.100.66", 7, "fail", "fail", "quarantine")]


def test_namespaced_and_zipped_reports() -> None:
    namespaced = GOOGLE_REPORT.replace(b"<feedback>", b'<feedback xmlns="http://dmarc.org/dmarc-xml/0.1">')
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("report.xml", namespaced)
    report = parse_report(_unzip_via_message(buf.getvalue()))
    assert report.org_name == "google.com" and len(report.rows) == 2


def _unzip_via_message(data: bytes) -> bytes:
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["Subject"] = "zip"
    msg.set_content("zip")
    msg.add_attachment(data, maintype="application", subtype="zip", filename="r.zip")
    return extract_report(msg.as_bytes())


@pytest.mark.parametrize(
    "xml",
    [
        b"not xml at all",
        b"<html><body>hi</body></html>",
        b"<feedback><version>1</version></feedback>",
        # XXE: defusedxml refuses entities instead of reading the file.
        b'<?xml version="1.0"?><!DOCTYPE f [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b"<feedback><report_metadata><org_name>&x;</org_name></report_metadata></feedback>",
        GOOGLE_REPORT.replace(b"<count>42</count>", b"<count>many</count>"),
    ],
)
def test_bad_reports_are_refused_cleanly(xml: bytes) -> None:
    with pytest.raises(ReportFormatError):
        parse_report(xml)


def test_a_gzip_bomb_stops() -> None:
    bomb = gzip.compress(b"<feedback>" + b" " * (25 * 1024 * 1024))
    with pytest.raises(ReportFormatError):
        extract_report(_gz_message(bomb))


def _gz_message(gz: bytes) -> bytes:
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["Subject"] = "bomb"
    msg.set_content("x")
    msg.add_attachment(gz, maintype="application", subtype="gzip", filename="a.xml.gz")
    return msg.as_bytes()


# -- ARC -----------------------------------------------------------------------------
LIST_HOST = "lists.example.org"


@pytest.fixture
def list_keys(tmp_path: Path) -> DkimKeyStore:
    keys = DkimKeyStore(tmp_path / "list-keys")
    keys.generate(LIST_HOST, "arc1", "rsa", retire_after=date.today() + timedelta(days=30))
    return keys


def _through_list(keys: DkimKeyStore) -> bytes:
    """A partner.test message (p=reject) that a mailing list changed (subject tag)
    and sealed, having seen DMARC pass when it arrived there."""
    original = (b"From: An <an@partner.test>\r\nTo: list@lists.example.org\r\n"
                b"Subject: [list] Hop thu\r\nMessage-ID: <l1@partner.test>\r\n\r\nNoi dung\r\n")
    seen = (b"Authentication-Results: mx.lists.example.org; spf=pass smtp.mailfrom=partner.test;\r\n"
            b" dkim=pass header.d=partner.test; dmarc=pass header.from=partner.test\r\n")
    return seal_forwarded(seen + original, keys=keys, domain=LIST_HOST, authserv_id="mx.lists.example.org")


def _zone(keys: DkimKeyStore) -> dict[str, list[str]]:
    return {
        "_dmarc.partner.test TXT": ["v=DMARC1; p=reject; rua=mailto:dmarc@partner.test"],
        "lists.example.org TXT": ["v=spf1 ip4:192.0.2.50 -all"],
        **{f"{k.dns_name} TXT": [k.txt] for k in keys.keys()},
    }


def test_trusted_sealer_overrides_a_dmarc_failure(list_keys: DkimKeyStore) -> None:
    message = _through_list(list_keys)
    resolver = StaticResolver(_zone(list_keys))
    plain = authenticate_sync(resolver, ip="192.0.2.50", helo="lists.example.org",
                              sender="bounces@lists.example.org", message=message)
    assert plain.dmarc.result is DmarcResult.FAIL and plain.arc.result is ArcResult.PASS
    assert plain.arc.hops[0].sealer == LIST_HOST and plain.arc.hops[0].dmarc_pass
    assert plain.disposition == "reject" and not plain.arc_override
    assert auth_reply(plain, lambda d: False) == codes.S550_DMARC_REJECT

    trusted = authenticate_sync(resolver, ip="192.0.2.50", helo="lists.example.org",
                                sender="bounces@lists.example.org", message=message,
                                trusted_sealers=frozenset({LIST_HOST}))
    assert trusted.arc_override == LIST_HOST and trusted.disposition == "none"
    assert auth_reply(trusted, lambda d: False) is None
    header = trusted.header("mx.dongnai.gov.vn").decode()
    assert "dmarc=fail (p=reject dis=none arc-override=lists.example.org)" in header
    assert "arc=pass" in header and "header.as-d=lists.example.org" in header
    recorded = evaluation_from(trusted)
    assert recorded is not None and recorded.override == "trusted_forwarder"
    assert recorded.disposition == "none" and recorded.source_ip == "192.0.2.50"


def test_a_broken_chain_overrides_nothing(list_keys: DkimKeyStore) -> None:
    message = _through_list(list_keys).replace(b"Noi dung", b"Noi dung sua")  # body changed after sealing
    results = authenticate_sync(StaticResolver(_zone(list_keys)), ip="192.0.2.50", helo="lists.example.org",
                                sender="bounces@lists.example.org", message=message,
                                trusted_sealers=frozenset({LIST_HOST}))
    assert results.arc.result is ArcResult.FAIL and not results.arc_override
    assert results.disposition == "reject"
    assert "arc=fail" in results.header("mx").decode()


def test_our_seal_verifies_and_continues_a_chain(list_keys: DkimKeyStore, tmp_path: Path) -> None:
    ours = DkimKeyStore(tmp_path / "ours")
    ours.generate("dongnai.gov.vn", "s1", "rsa", retire_after=date.today() + timedelta(days=30))
    zone = {**_zone(list_keys), **{f"{k.dns_name} TXT": [k.txt] for k in ours.keys()}}
    arrived = _through_list(list_keys)
    results = authenticate_sync(StaticResolver(zone), ip="192.0.2.50", helo="lists.example.org",
                                sender="bounces@lists.example.org", message=arrived,
                                trusted_sealers=frozenset({LIST_HOST}))
    forwarded = seal_forwarded(results.header("mx.dongnai.gov.vn") + arrived, keys=ours,
                               domain="dongnai.gov.vn", authserv_id="mx.dongnai.gov.vn")
    assert forwarded.startswith(b"ARC-Seal: i=2; cv=pass;")

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        found = zone.get(f"{name.decode().rstrip('.')} TXT")
        return found[0].encode() if found else None

    cv, sets, reason = dkim.arc_verify(forwarded, dnsfunc=dnsfunc)
    assert cv == dkim.CV_Pass, reason
    assert [s["as-domain"] for s in sets] == [b"dongnai.gov.vn", LIST_HOST.encode()]


def test_no_key_no_seal(tmp_path: Path) -> None:
    message = b"From: a@x.example\r\nSubject: s\r\n\r\nb\r\n"
    assert seal_forwarded(message, keys=DkimKeyStore(tmp_path / "none"), domain="dongnai.gov.vn",
                          authserv_id="mx") == message


def test_a_record_names_at_most_ten_destinations() -> None:
    """Whoever sends us mail writes its From domain's record: a rua of a thousand
    addresses must not make us check and report to a thousand."""
    from policy.aggregate import MAX_DESTINATIONS

    uris = [f"mailto:r{n}@reports.example" for n in range(1000)]
    found = parse_rua(uris)
    assert len(found) == MAX_DESTINATIONS == 10
    assert [d.address for d in found] == [f"r{n}@reports.example" for n in range(10)]

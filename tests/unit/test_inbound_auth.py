"""Inbound sender authentication (policy/checks/authentication.py): SPF, DKIM
and DMARC evaluated against static DNS answers, and the MX decision."""

from __future__ import annotations

from collections.abc import Mapping

import dkim
import pytest

from pki.keystore import generate_private_key
from policy import codes
from policy.checks.authentication import (
    AuthResults,
    DkimOutcome,
    DkimResult,
    DmarcResult,
    SpfOutcome,
    SpfResult,
    aligned,
    auth_reply,
    authenticate,
    authenticate_sync,
    check_spf,
    evaluate_dmarc,
    from_domains,
    lookup_dmarc,
    organizational_domain,
    parse_dmarc_record,
    remove_own_results,
    verify_dkim,
)
from policy.dns import DnsTempError, StaticResolver


class FlakyResolver(StaticResolver):
    """Static answers, but names in ``failing`` raise DnsTempError (SERVFAIL)."""

    def __init__(self, records: Mapping[str, list[str]], failing: set[str]) -> None:
        super().__init__(records)
        self.failing = failing

    def query_sync(self, name: str, rdtype: str) -> list[str]:
        if name.lower().rstrip(".") in self.failing:
            raise DnsTempError(f"{name} {rdtype}: SERVFAIL")
        return super().query_sync(name, rdtype)

    async def query(self, name: str, rdtype: str) -> list[str]:
        return self.query_sync(name, rdtype)


def is_local(domain: str) -> bool:
    return domain == "dongnai.gov.vn"


def message(from_addr: str = "news@example.org", body: bytes = b"Xin chao.\r\n") -> bytes:
    return (
        f"From: Ban tin <{from_addr}>\r\nTo: annv@dongnai.gov.vn\r\nSubject: test\r\n"
        "Message-ID: <1@example.org>\r\n\r\n"
    ).encode() + body


def sign(
    msg: bytes, domain: str, selector: str, algorithm: str = "rsa"
) -> tuple[bytes, dict[str, list[str]]]:
    """Sign with a fresh key; return the signed message and its DNS record."""
    private, public = generate_private_key(algorithm)  # type: ignore[arg-type]
    sig = dkim.sign(
        msg, selector.encode(), domain.encode(), private,
        canonicalize=(b"relaxed", b"relaxed"),
        signature_algorithm=b"ed25519-sha256" if algorithm == "ed25519" else b"rsa-sha256",
        include_headers=[b"from", b"to", b"subject", b"message-id"],
    )
    return sig + msg, {f"{selector}._domainkey.{domain} TXT": [f"v=DKIM1; k={algorithm}; p={public}"]}


# -- SPF ------------------------------------------------------------------------------
SPF_ZONE = {
    "example.org TXT": ["v=spf1 ip4:192.0.2.0/24 a:mail.example.org -all"],
    "mail.example.org A": ["198.51.100.7"],
    "soft.example TXT": ["v=spf1 ip4:192.0.2.1 ~all"],
    "neutral.example TXT": ["v=spf1 ?all"],
    "nospf.example TXT": ["google-site-verification=abc"],
    "broken.example TXT": ["v=spf1 ip4:192.0.2.x -all"],
    "include.example TXT": ["v=spf1 include:example.org -all"],
    "helo.example TXT": ["v=spf1 ip4:203.0.113.5 -all"],
}


@pytest.mark.parametrize(
    ("ip", "sender", "expected"),
    [
        ("192.0.2.10", "a@example.org", SpfResult.PASS),
        ("198.51.100.7", "a@example.org", SpfResult.PASS),  # a: mechanism
        ("::ffff:192.0.2.10", "a@example.org", SpfResult.PASS),  # IPv4-mapped client
        ("203.0.113.9", "a@example.org", SpfResult.FAIL),
        ("203.0.113.9", "a@soft.example", SpfResult.SOFTFAIL),
        ("203.0.113.9", "a@neutral.example", SpfResult.NEUTRAL),
        ("203.0.113.9", "a@nospf.example", SpfResult.NONE),
        ("203.0.113.9", "a@unknown.example", SpfResult.NONE),
        ("192.0.2.1", "a@broken.example", SpfResult.PERMERROR),
        ("192.0.2.10", "a@include.example", SpfResult.PASS),
        ("203.0.113.9", "a@include.example", SpfResult.FAIL),
    ],
)
def test_spf_results(ip: str, sender: str, expected: SpfResult) -> None:
    outcome = check_spf(StaticResolver(SPF_ZONE), ip=ip, sender=sender, helo="client.example")
    assert outcome.result is expected, outcome
    assert outcome.scope == "mailfrom"
    assert outcome.domain == sender.partition("@")[2]


def test_spf_temperror_when_dns_fails() -> None:
    resolver = FlakyResolver(SPF_ZONE, failing={"example.org"})
    outcome = check_spf(resolver, ip="192.0.2.10", sender="a@example.org", helo="client.example")
    assert outcome.result is SpfResult.TEMPERROR


def test_spf_temperror_inside_include() -> None:
    resolver = FlakyResolver(SPF_ZONE, failing={"example.org"})
    outcome = check_spf(resolver, ip="192.0.2.10", sender="a@include.example", helo="c.example")
    assert outcome.result is SpfResult.TEMPERROR


def test_spf_null_sender_checks_helo() -> None:
    resolver = StaticResolver(SPF_ZONE)
    good = check_spf(resolver, ip="203.0.113.5", sender="", helo="helo.example")
    assert (good.result, good.scope, good.domain) == (SpfResult.PASS, "helo", "helo.example")
    bad = check_spf(resolver, ip="203.0.113.6", sender="", helo="helo.example")
    assert bad.result is SpfResult.FAIL
    literal = check_spf(resolver, ip="203.0.113.6", sender="", helo="[203.0.113.6]")
    assert literal.result is SpfResult.NONE


# -- DKIM -----------------------------------------------------------------------------
@pytest.mark.parametrize("algorithm", ["rsa", "ed25519"])
def test_dkim_pass_and_fail(algorithm: str) -> None:
    signed, zone = sign(message(), "example.org", "sel1", algorithm)
    resolver = StaticResolver(zone)
    (outcome,) = verify_dkim(resolver, signed)
    assert outcome == DkimOutcome(
        DkimResult.PASS, "example.org", "sel1", f"{'ed25519' if algorithm == 'ed25519' else 'rsa'}-sha256"
    )
    tampered = signed.replace(b"Xin chao.", b"Xin chao!")
    assert verify_dkim(resolver, tampered)[0].result is DkimResult.FAIL
    resigned_header = signed.replace(b"Subject: test", b"Subject: changed")
    assert verify_dkim(resolver, resigned_header)[0].result is DkimResult.FAIL


def test_dkim_none_missing_key_and_temperror() -> None:
    assert verify_dkim(StaticResolver({}), message()) == ()
    signed, zone = sign(message(), "example.org", "sel1")
    assert verify_dkim(StaticResolver({}), signed)[0].result is DkimResult.PERMERROR
    flaky = FlakyResolver(zone, failing={"sel1._domainkey.example.org"})
    assert verify_dkim(flaky, signed)[0].result is DkimResult.TEMPERROR


def test_dkim_malformed_signature_is_permerror() -> None:
    bad = b"DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=x\r\n" + message()
    (outcome,) = verify_dkim(StaticResolver({}), bad)
    assert outcome.result is DkimResult.PERMERROR and outcome.domain == "example.org"


def test_dkim_every_signature_is_verified() -> None:
    signed, zone1 = sign(message(), "example.org", "a")
    twice, zone2 = sign(signed, "esp.example", "b")
    outcomes = verify_dkim(StaticResolver({**zone1, **zone2}), twice)
    assert [(o.domain, o.result) for o in outcomes] == [
        ("esp.example", DkimResult.PASS), ("example.org", DkimResult.PASS)
    ]


# -- DMARC ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("domain", "org"),
    [
        ("example.org", "example.org"),
        ("mail.example.org", "example.org"),
        ("a.b.example.org", "example.org"),
        ("dongnai.gov.vn", "dongnai.gov.vn"),
        ("sotttt.dongnai.gov.vn", "dongnai.gov.vn"),
        ("gov.vn", "gov.vn"),
        ("news.bbc.co.uk", "bbc.co.uk"),
        ("Example.COM.", "example.com"),
    ],
)
def test_organizational_domain(domain: str, org: str) -> None:
    assert organizational_domain(domain) == org


@pytest.mark.parametrize(
    ("identifier", "from_domain", "relaxed", "strict"),
    [
        ("example.org", "example.org", True, True),
        ("EXAMPLE.org", "example.org", True, True),
        ("mail.example.org", "example.org", True, False),
        ("example.org", "news.example.org", True, False),
        ("a.example.org", "b.example.org", True, False),
        ("example.net", "example.org", False, False),
        ("evil-example.org", "example.org", False, False),
        ("hanoi.gov.vn", "dongnai.gov.vn", False, False),  # siblings under a public suffix
        ("mail.dongnai.gov.vn", "dongnai.gov.vn", True, False),
    ],
)
def test_alignment_matrix(identifier: str, from_domain: str, relaxed: bool, strict: bool) -> None:
    assert aligned(identifier, from_domain, "r") is relaxed
    assert aligned(identifier, from_domain, "s") is strict


def test_parse_dmarc_record() -> None:
    record = parse_dmarc_record("v=DMARC1; p=quarantine; sp=reject; adkim=s; aspf=r; pct=50; rua=mailto:x@y")
    assert record is not None
    assert (record.policy, record.subdomain_policy, record.adkim, record.aspf, record.pct) == (
        "quarantine", "reject", "s", "r", 50
    )
    defaults = parse_dmarc_record("v=DMARC1;p=reject")
    assert defaults is not None and defaults.subdomain_policy == "reject" and defaults.adkim == "r"
    assert parse_dmarc_record("v=DMARC1; p=bogus") is None
    assert parse_dmarc_record("v=spf1 -all") is None
    assert parse_dmarc_record("p=reject; v=DMARC1") is None  # v= must come first (section 6.4)


def test_dmarc_org_domain_fallback_uses_sp() -> None:
    resolver = StaticResolver({"_dmarc.example.org TXT": ["v=DMARC1; p=none; sp=reject"]})
    record, where = lookup_dmarc(resolver, "news.example.org")
    assert where == "example.org" and record is not None
    spf_fail = SpfOutcome(SpfResult.FAIL, "other.example", "mailfrom")
    outcome = evaluate_dmarc(("news.example.org",), record, where, spf_fail, ())
    assert outcome.result is DmarcResult.FAIL and outcome.policy == "reject"
    # The organizational domain itself gets p.
    outcome = evaluate_dmarc(("example.org",), record, "example.org", spf_fail, ())
    assert outcome.policy == "none"


def test_dmarc_own_record_wins_over_org_and_multiple_records_are_none() -> None:
    resolver = StaticResolver({
        "_dmarc.example.org TXT": ["v=DMARC1; p=reject"],
        "_dmarc.news.example.org TXT": ["v=DMARC1; p=none"],
        "_dmarc.two.example TXT": ["v=DMARC1; p=reject", "v=DMARC1; p=none"],
    })
    record, where = lookup_dmarc(resolver, "news.example.org")
    assert where == "news.example.org" and record is not None and record.policy == "none"
    assert lookup_dmarc(resolver, "two.example") == (None, None)


@pytest.mark.parametrize(
    ("record", "spf_domain", "dkim_domain", "expected", "spf_al", "dkim_al"),
    [
        ("v=DMARC1; p=reject", "example.org", None, DmarcResult.PASS, True, False),
        ("v=DMARC1; p=reject", "bounce.example.org", None, DmarcResult.PASS, True, False),
        ("v=DMARC1; p=reject; aspf=s", "bounce.example.org", None, DmarcResult.FAIL, False, False),
        ("v=DMARC1; p=reject; aspf=s", "bounce.example.org", "example.org", DmarcResult.PASS, False, True),
        ("v=DMARC1; p=reject; adkim=s", "other.example", "mail.example.org", DmarcResult.FAIL, False, False),
        ("v=DMARC1; p=reject", "other.example", "mail.example.org", DmarcResult.PASS, False, True),
        ("v=DMARC1; p=reject", "other.example", "esp.example", DmarcResult.FAIL, False, False),
    ],
)
def test_dmarc_alignment_evaluation(
    record: str, spf_domain: str, dkim_domain: str | None, expected: DmarcResult, spf_al: bool, dkim_al: bool
) -> None:
    parsed = parse_dmarc_record(record)
    spf_outcome = SpfOutcome(SpfResult.PASS, spf_domain, "mailfrom")
    dkim_outcomes = (DkimOutcome(DkimResult.PASS, dkim_domain, "s", "rsa-sha256"),) if dkim_domain else ()
    outcome = evaluate_dmarc(("example.org",), parsed, "example.org", spf_outcome, dkim_outcomes)
    assert (outcome.result, outcome.spf_aligned, outcome.dkim_aligned) == (expected, spf_al, dkim_al)


def test_dmarc_failing_checks_do_not_align() -> None:
    parsed = parse_dmarc_record("v=DMARC1; p=reject")
    spf_fail = SpfOutcome(SpfResult.SOFTFAIL, "example.org", "mailfrom")
    dkim_fail = (DkimOutcome(DkimResult.FAIL, "example.org", "s", "rsa-sha256"),)
    outcome = evaluate_dmarc(("example.org",), parsed, "example.org", spf_fail, dkim_fail)
    assert outcome.result is DmarcResult.FAIL
    temp = (DkimOutcome(DkimResult.TEMPERROR, "example.org", "s", "rsa-sha256"),)
    outcome = evaluate_dmarc(("example.org",), parsed, "example.org", spf_fail, temp)
    assert outcome.result is DmarcResult.TEMPERROR


def test_dmarc_from_field_edge_cases() -> None:
    spf_pass = SpfOutcome(SpfResult.PASS, "example.org", "mailfrom")
    assert evaluate_dmarc((), None, None, spf_pass, ()).result is DmarcResult.PERMERROR
    two = evaluate_dmarc(("example.org", "dongnai.gov.vn"), None, None, spf_pass, ())
    assert two.result is DmarcResult.PERMERROR
    two_addresses = b"From: a@Example.ORG, b@dongnai.gov.vn\r\n\r\nx"
    assert from_domains(two_addresses) == ("example.org", "dongnai.gov.vn")
    assert from_domains(b"From: \"X\" <x@example.org>\r\nFrom: y@b.example\r\n\r\n") == (
        "example.org", "b.example"
    )
    assert from_domains(b"Subject: none\r\n\r\n") == ()


# -- all together: results and the MX decision ----------------------------------------
ZONE = {
    "example.org TXT": ["v=spf1 ip4:192.0.2.0/24 -all"],
    "_dmarc.example.org TXT": ["v=DMARC1; p=reject; rua=mailto:dmarc@example.org"],
    "quarantine.example TXT": ["v=spf1 -all"],
    "_dmarc.quarantine.example TXT": ["v=DMARC1; p=quarantine"],
    "relaxed.example TXT": ["v=spf1 +all"],
    "_dmarc.relaxed.example TXT": ["v=DMARC1; p=none"],
}


def run(ip: str, sender: str, msg: bytes, zone: Mapping[str, list[str]] = ZONE) -> AuthResults:
    return authenticate_sync(StaticResolver(zone), ip=ip, helo="client.example", sender=sender, message=msg)


def test_spf_aligned_pass_accepts() -> None:
    results = run("192.0.2.1", "bounce@example.org", message("news@example.org"))
    assert results.dmarc.result is DmarcResult.PASS and results.aligned
    assert auth_reply(results, is_local) is None
    assert results.as_mapping()["dmarc"].startswith("pass")


def test_dmarc_reject_refuses() -> None:
    results = run("203.0.113.9", "bounce@example.org", message("news@example.org"))
    assert results.reject and not results.aligned
    assert auth_reply(results, is_local) == codes.S550_DMARC_REJECT
    assert str(codes.S550_DMARC_REJECT).startswith("550 5.7.1 ")


def test_dmarc_reject_with_dkim_pass_from_other_path_accepts() -> None:
    signed, zone = sign(message("news@example.org"), "example.org", "k1")
    results = run("203.0.113.9", "list@lists.example", signed, {**ZONE, **zone})
    assert results.dkim_aligned and results.dmarc.result is DmarcResult.PASS
    assert auth_reply(results, is_local) is None


def test_dmarc_quarantine_accepts_and_marks() -> None:
    results = run("203.0.113.9", "a@quarantine.example", message("a@quarantine.example"))
    assert results.quarantine
    assert auth_reply(results, is_local) is None
    header = results.header("mx.dongnai.gov.vn").decode()
    assert "dmarc=fail (p=quarantine dis=quarantine) header.from=quarantine.example" in header


def test_dmarc_reject_temperror_defers() -> None:
    resolver = FlakyResolver(ZONE, failing={"example.org"})
    results = authenticate_sync(
        resolver, ip="203.0.113.9", helo="c.example", sender="a@example.org", message=message()
    )
    assert results.spf.result is SpfResult.TEMPERROR and results.dmarc.result is DmarcResult.TEMPERROR
    assert auth_reply(results, is_local) == codes.S451_AUTH_TEMPFAIL


def test_dmarc_policy_lookup_temperror() -> None:
    resolver = FlakyResolver(ZONE, failing={"_dmarc.example.org"})
    results = authenticate_sync(
        resolver, ip="192.0.2.1", helo="c.example", sender="a@example.org", message=message()
    )
    assert results.dmarc.result is DmarcResult.TEMPERROR
    assert auth_reply(results, is_local) is None  # no policy known: accept, marked temperror


def test_local_from_spoof_refused_even_with_foreign_spf_pass() -> None:
    results = run("192.0.2.1", "a@example.org", message("giamdoc@dongnai.gov.vn"))
    assert results.spf.result is SpfResult.PASS and not results.aligned
    assert auth_reply(results, is_local) == codes.S550_LOCAL_SENDER_UNAUTHENTICATED
    # A subdomain of ours is ours too.
    sub = run("192.0.2.1", "a@example.org", message("x@so.dongnai.gov.vn"))
    assert auth_reply(sub, is_local) == codes.S550_LOCAL_SENDER_UNAUTHENTICATED
    # Two From addresses, one of them ours: refused.
    both = run("192.0.2.1", "a@example.org", message("a@example.org>, <b@dongnai.gov.vn"))
    assert both.from_domains == ("example.org", "dongnai.gov.vn")
    assert auth_reply(both, is_local) == codes.S550_LOCAL_SENDER_UNAUTHENTICATED


def test_local_from_with_our_dkim_signature_accepted() -> None:
    signed, zone = sign(message("giamdoc@dongnai.gov.vn"), "dongnai.gov.vn", "s2026")
    results = run("203.0.113.9", "bounce@example.org", signed, zone)
    assert results.dkim_aligned
    assert auth_reply(results, is_local) is None


def test_local_from_temperror_defers() -> None:
    signed, zone = sign(message("giamdoc@dongnai.gov.vn"), "dongnai.gov.vn", "s2026")
    resolver = FlakyResolver(zone, failing={"s2026._domainkey.dongnai.gov.vn"})
    results = authenticate_sync(
        resolver, ip="203.0.113.9", helo="c.example", sender="a@x.example", message=signed
    )
    assert results.dkim[0].result is DkimResult.TEMPERROR
    assert auth_reply(results, is_local) == codes.S451_AUTH_TEMPFAIL


async def test_authenticate_runs_in_a_thread() -> None:
    results = await authenticate(
        StaticResolver(ZONE), ip="192.0.2.1", helo="c.example", sender="a@example.org", message=message()
    )
    assert results.spf.result is SpfResult.PASS


def test_header_format() -> None:
    signed, zone = sign(message(), "example.org", "k1")
    results = run("192.0.2.1", "bounce@example.org", signed, {**ZONE, **zone})
    header = results.header("mx.dongnai.gov.vn")
    assert header == (
        b"Authentication-Results: mx.dongnai.gov.vn;\r\n"
        b"\tspf=pass smtp.mailfrom=example.org;\r\n"
        b"\tdkim=pass header.d=example.org header.a=rsa-sha256 header.s=k1;\r\n"
        b"\tdmarc=pass (p=reject) header.from=example.org;\r\n"
        b"\tarc=none smtp.remote-ip=192.0.2.1\r\n"
    )
    null = run("203.0.113.9", "", message("x@nowhere.example"), {})
    assert null.header("mx").decode() == (
        "Authentication-Results: mx;\r\n\tspf=none smtp.helo=client.example;\r\n"
        "\tdkim=none;\r\n\tdmarc=none header.from=nowhere.example;\r\n"
        "\tarc=none smtp.remote-ip=203.0.113.9\r\n"
    )


def test_header_drops_unsafe_values() -> None:
    results = run("203.0.113.9", "a@example.org", message("x@bad;domain=pass"), {})
    assert b"bad;domain" not in results.header("mx")


def test_remove_own_results() -> None:
    forged = (
        b"Authentication-Results: MX.dongnai.gov.vn; dkim=pass header.d=dongnai.gov.vn\r\n"
        b"Received: from x\r\n"
        b"Authentication-Results: (comment) mx.dongnai.gov.vn 1;\r\n\tspf=pass\r\n"
        b"Authentication-Results: mx.example.org; spf=fail\r\n"
        b"Subject: hi\r\n\r\n"
        b"Authentication-Results: mx.dongnai.gov.vn; in the body stays\r\n"
    )
    cleaned = remove_own_results(forged, "mx.dongnai.gov.vn")
    assert cleaned == (
        b"Received: from x\r\n"
        b"Authentication-Results: mx.example.org; spf=fail\r\n"
        b"Subject: hi\r\n\r\n"
        b"Authentication-Results: mx.dongnai.gov.vn; in the body stays\r\n"
    )
    untouched = message()
    assert remove_own_results(untouched, "mx.dongnai.gov.vn") is untouched

"""Fast paths of sender authentication at DATA: ``verify_dkim`` skips dkimpy's
parse when the header section has no DKIM-Signature and would parse, and
``_plain_ip`` is cached. The results must be the general path's, for odd
header sections too (dkimpy raises on some: a PERMERROR outcome, not ())."""

from __future__ import annotations

import dkim
import pytest

from policy.checks import authentication
from policy.checks.authentication import _unsigned, header_end, verify_dkim
from policy.dns import StaticResolver

BODY = b"Hello.\r\n"

HEADS = [
    b"From: a@example.org\r\nTo: b@example.net\r\nSubject: hi\r\n\r\n",
    b"From: a@example.org\r\nSubject: folded\r\n\tcontinued\r\n \there\r\n\r\n",
    b"\r\n",
    b" From: a@example.org\r\n\r\n",  # first line a continuation: dkimpy raises
    b"From a@example.org Mon Jan  1 00:00:00 2024\r\nFrom: a@example.org\r\n\r\n",  # mbox line
    b"From a@example.org\r\n\tcontinued\r\nX: y\r\n\r\n",  # mbox line, then a continuation
    b"From : a@example.org\r\n\r\n",  # blank before the colon: dkimpy raises
    b"no colon here\r\nFrom: a@example.org\r\n\r\n",
    b"From: a@example.org\rX: lone CR\r\n\r\n",
    b"From: a@example.org\nTo: bare LF\r\n\r\n",
    b"From: a@example.org\r\nDKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=s; b=AAAA; bh=AAAA\r\n\r\n",
    b"From: a@example.org\r\ndkim-signature: garbage\r\n\r\n",
    b"From: a@example.org\r\nX-Note: mentions DKIM-Signature: in a value\r\n\r\n",
    b"\xc3\xa9: 8-bit name\r\n\r\n",
    b"From: a@example.org\r\nX-8bit: caf\xc3\xa9\r\n\r\n",
]


def general_dkim(message: bytes) -> tuple[object, ...]:
    """``verify_dkim`` with the fast path turned off."""
    saved = authentication._unsigned
    authentication._unsigned = lambda head: False
    try:
        return verify_dkim(StaticResolver({}), message)
    finally:
        authentication._unsigned = saved


@pytest.mark.parametrize("head", HEADS)
def test_verify_dkim_fast_path_matches_general(head: bytes) -> None:
    for message in (head + BODY, head):
        assert verify_dkim(StaticResolver({}), message) == general_dkim(message)


@pytest.mark.parametrize("head", HEADS)
def test_unsigned_only_when_dkimpy_finds_nothing_and_raises_nothing(head: bytes) -> None:
    message = head + BODY
    part = message[: header_end(message)]
    if not _unsigned(part):
        return
    verifier = dkim.DKIM(part)  # must not raise
    assert not [n for n, _v in verifier.headers if n.lower() == b"dkim-signature"]


def test_unsigned_is_taken_for_plain_mail() -> None:
    # The fast path must actually be used for ordinary mail (else it gains nothing).
    assert _unsigned(HEADS[0])
    assert _unsigned(HEADS[1])
    assert not _unsigned(HEADS[3])
    assert not _unsigned(HEADS[10])


@pytest.mark.parametrize(
    "ip", ["192.0.2.1", "::ffff:192.0.2.1", "2001:db8::1", "2001:DB8:0::1", "not an ip", "", "[192.0.2.1]"]
)
def test_plain_ip_cache_matches_uncached(ip: str) -> None:
    uncached = authentication._plain_ip.__wrapped__  # type: ignore[attr-defined]
    assert authentication._plain_ip(ip) == uncached(ip)
    assert authentication._plain_ip(ip) == uncached(ip)


def general_remove_own_results(message: bytes, authserv_id: str) -> bytes:
    """``remove_own_results`` with its substring pre-check defeated: a message
    that names the field in upper case in its body only takes the walk."""
    marker = b"X-Pad: authentication-results Authentication-Results AUTHENTICATION-RESULTS\r\n"
    walked = authentication.remove_own_results(marker + message, authserv_id)
    assert walked.startswith(marker)
    return walked[len(marker) :]


@pytest.mark.parametrize(
    "head",
    [
        *HEADS,
        b"Authentication-Results: mx.example.org; spf=pass\r\nFrom: a@example.org\r\n\r\n",
        b"authentication-results: MX.example.org.; dkim=pass\r\n\tfolded\r\nFrom: a@example.org\r\n\r\n",
        b"Authentication-Results: other.example; spf=pass\r\nFrom: a@example.org\r\n\r\n",
        b"Authentication-Results : (c) mx.example.org; none\r\n\r\n",
    ],
)
def test_remove_own_results_fast_path_matches_walk(head: bytes) -> None:
    for message in (head + BODY + b"Authentication-Results: mx.example.org; in the body\r\n", head):
        assert authentication.remove_own_results(message, "mx.example.org") == general_remove_own_results(
            message, "mx.example.org"
        )


def test_remove_own_results_removes_ours() -> None:
    own = b"Authentication-Results: mx.example.org; spf=pass\r\n"
    rest = b"From: a@example.org\r\n\r\n" + BODY
    assert authentication.remove_own_results(own + rest, "mx.example.org") == rest
    assert authentication.remove_own_results(own.upper() + rest, "mx.example.org") == rest


def _results_variants() -> list[authentication.AuthResults]:
    a = authentication
    spfs = [
        a.SpfOutcome(a.SpfResult.PASS, "example.org", "mailfrom"),
        a.SpfOutcome(a.SpfResult.FAIL, "bad domain!", "helo", "why"),
    ]
    dkims: list[tuple[authentication.DkimOutcome, ...]] = [
        (),
        (a.DkimOutcome(a.DkimResult.PASS, "example.org", "s1", "rsa-sha256"),),
        (
            a.DkimOutcome(a.DkimResult.FAIL, "example.net", "s2", "ed25519-sha256", "bad"),
            a.DkimOutcome(a.DkimResult.PERMERROR, "", "", "", "unparsable"),
        ),
    ]
    record = a.DmarcRecord("reject", "reject")
    dmarcs = [
        a.DmarcOutcome(a.DmarcResult.NONE, None),
        a.DmarcOutcome(a.DmarcResult.PASS, "example.org", "none", "example.org", True),
        a.DmarcOutcome(a.DmarcResult.FAIL, "example.org", "reject", "example.org", record=record),
    ]
    arcs = [a.ArcOutcome(), a.ArcOutcome(a.ArcResult.PASS, (a.ArcHop(1, "sealer.example", "s", True),), 0)]
    return [
        a.AuthResults(spf, dkim, dmarc, ("example.org",), arc, override, ip)
        for spf in spfs
        for dkim in dkims
        for dmarc in dmarcs
        for arc in arcs
        for override in ("", "sealer.example")
        for ip in ("192.0.2.1", "2001:db8::1")
    ]


def test_results_header_cache_matches_format_header() -> None:
    variants = _results_variants()
    texts = set()
    for _ in range(2):  # the second round answers from the cache
        for results in variants:
            for authserv_id in ("mx.example.org", "other.example", "bad id"):
                text = results.header(authserv_id)
                assert text == results.format_header(authserv_id)
                texts.add(text)
    assert len(texts) > len(variants)  # the variants do differ in the field


@pytest.mark.parametrize(
    "domain",
    ["Example.ORG.", " example.org ", "bücher.example", "xn--bcher-kva.example", "a" * 70 + ".example", ""],
)
def test_normalise_domain_cache_matches_uncached(domain: str) -> None:
    uncached = authentication.normalise_domain.__wrapped__  # type: ignore[attr-defined]
    assert authentication.normalise_domain(domain) == uncached(domain)
    assert authentication.normalise_domain(domain) == uncached(domain)

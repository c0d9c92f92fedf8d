"""MTA-STS policy discovery without an SMTP server: record and policy parsing
(RFC 8461 sections 3.1, 3.2, 4.1), the HTTPS fetch and its failures (section
3.3, reported with the RFC 8460 section 4.3.2.3 result types), and the cache."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web

from mailserver.smtp.mtasts import MtaSts, StsPolicyError, mx_matches, parse_policy, parse_txt
from policy.dns import StaticResolver
from tests.outbound.conftest import PolicyServer, policy, sts_records, tls_for
from tests.tlsca import TestCa


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        ([], None),
        (["v=spf1 -all"], None),
        (["v=STSv1; id=20160831085700Z;"], "20160831085700Z"),
        (["v=STSv1;id=abc"], "abc"),
        (["v=STSv1; id=bad-id"], StsPolicyError),
        (["v=STSv1;"], StsPolicyError),
        (["v=STSv1; id=a", "v=STSv1; id=b"], StsPolicyError),
    ],
)
def test_txt_record(records: list[str], expected: object) -> None:
    if expected is StsPolicyError:
        with pytest.raises(StsPolicyError):
            parse_txt(records)
    else:
        assert parse_txt(records) == expected


def test_policy_parsing_rfc_example() -> None:
    # RFC 8461 section 3.2, the example policy.
    text = ("version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\n"
            "mx: backupmx.example.com\nmax_age: 604800\n")
    parsed = parse_policy(text)
    assert parsed.mode == "enforce" and parsed.max_age == 604800
    assert parsed.mx == ("mail.example.com", "*.example.net", "backupmx.example.com")
    assert parsed.matches("mx1.example.net") and not parsed.matches("a.b.example.net")
    assert not parsed.matches("example.net") and parsed.matches("MAIL.example.com.")
    assert parse_policy(text.replace("604800", "9999999999")).max_age == 31_557_600  # capped at a year
    with pytest.raises(StsPolicyError):
        parse_policy(text.replace("604800", "99999999999"))  # 1*10DIGIT


@pytest.mark.parametrize(
    "text",
    [
        "mode: enforce\nmx: a.example\nmax_age: 1\n",  # no version
        "version: STSv1\nmode: strict\nmx: a.example\nmax_age: 1\n",
        "version: STSv1\nmode: enforce\nmax_age: 1\n",  # no mx
        "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1\n",
        "<html>not a policy</html>",
    ],
)
def test_bad_policies(text: str) -> None:
    with pytest.raises(StsPolicyError):
        parse_policy(text)


def test_mx_patterns() -> None:
    assert mx_matches("*.example.org", "mx.example.org")
    assert not mx_matches("*.example.org", "a.mx.example.org")
    assert not mx_matches("*.example.org", "example.org")
    assert mx_matches("mx.example.org", "MX.Example.Org.")


class _Server(PolicyServer):
    """A policy server whose answer the test scripts."""

    def __init__(self, context: object, handler: object) -> None:
        super().__init__(context)  # type: ignore[arg-type]
        self.handler = handler

    async def _serve(self, request: web.Request) -> web.Response:
        self.requests.append(request.host)
        return self.handler(request)  # type: ignore[operator, no-any-return]


async def _lookup(tmp_path: Path, ca: TestCa, handler: object, *, trusted: bool = True) -> tuple[object, str]:
    issuer = ca if trusted else TestCa(tmp_path / "untrusted", "Untrusted")
    server = _Server(tls_for(issuer, "mta-sts.example.org"), handler)
    await server.start()
    try:
        sts = MtaSts(StaticResolver(sts_records("example.org")), tmp_path / "cache", ca_file=str(ca.pem),
                     port=server.port, timeout=5.0)
        found = await sts.lookup("example.org")
        return found.policy, found.failure
    finally:
        await server.stop()


@pytest.fixture
def ca(tmp_path: Path) -> TestCa:
    return TestCa(tmp_path / "ca")


async def test_fetch_failures_are_reported(tmp_path: Path, ca: TestCa) -> None:
    good = policy("enforce", "mx.example.org")
    cases = [
        (lambda r: web.Response(text=good, content_type="text/plain"), True, ""),
        (lambda r: web.Response(status=404), True, "sts-policy-fetch-error"),
        (lambda r: web.HTTPFound("https://elsewhere.example/policy"), True, "sts-policy-fetch-error"),
        (lambda r: web.Response(text=good, content_type="text/html"), True, "sts-policy-invalid"),
        (lambda r: web.Response(text="version: STSv2\n", content_type="text/plain"), True,
         "sts-policy-invalid"),
        (lambda r: web.Response(text=good + "x: " + "y" * 70_000 + "\n", content_type="text/plain"), True,
         "sts-policy-invalid"),
        (lambda r: web.Response(text=good, content_type="text/plain"), False, "sts-webpki-invalid"),
    ]
    for index, (handler, trusted, failure) in enumerate(cases):
        found, got = await _lookup(tmp_path / str(index), ca, handler, trusted=trusted)
        assert got == failure, (index, got)
        assert (found is not None) == (failure == ""), index


async def test_cache_used_until_id_changes_or_expiry(tmp_path: Path, ca: TestCa) -> None:
    answers = [policy("enforce", "mx.example.org", max_age=3600), policy("testing", "mx.example.org")]
    server = PolicyServer(tls_for(ca, "mta-sts.example.org"))
    await server.start()
    try:
        records = sts_records("example.org")

        def make(ident: str) -> MtaSts:
            records["_mta-sts.example.org TXT"] = [f"v=STSv1; id={ident}"]
            return MtaSts(StaticResolver(dict(records)), tmp_path / "cache", ca_file=str(ca.pem),
                          port=server.port)

        server.policies["mta-sts.example.org"] = answers[0]
        assert (await make("one").lookup("example.org")).policy.mode == "enforce"  # type: ignore[union-attr]
        server.policies["mta-sts.example.org"] = answers[1]
        # Same id, new process: the cached file answers, no fetch.
        assert (await make("one").lookup("example.org")).policy.mode == "enforce"  # type: ignore[union-attr]
        assert len(server.requests) == 1
        # The record disappears (an attacker hides it): the cached policy still holds.
        del records["_mta-sts.example.org TXT"]
        hidden = MtaSts(StaticResolver(dict(records)), tmp_path / "cache", ca_file=str(ca.pem),
                        port=server.port)
        assert (await hidden.lookup("example.org")).policy.mode == "enforce"  # type: ignore[union-attr]
        later = datetime.now(UTC) + timedelta(hours=2)
        assert (await hidden.lookup("example.org", now=later)).policy is None, "expired after max_age"
        # A new id: fetched again.
        assert (await make("two").lookup("example.org")).policy.mode == "testing"  # type: ignore[union-attr]
        assert len(server.requests) == 2
    finally:
        await server.stop()


async def test_concurrent_deliveries_share_one_policy_fetch(tmp_path: Path, ca: TestCa) -> None:
    """Twenty deliveries to a domain whose policy is not cached yet: one HTTPS fetch."""
    server = PolicyServer(tls_for(ca, "mta-sts.example.org"))
    await server.start()
    try:
        server.policies["mta-sts.example.org"] = policy("enforce", "mx.example.org")
        sts = MtaSts(StaticResolver(sts_records("example.org")), tmp_path / "cache", ca_file=str(ca.pem),
                     port=server.port)
        found = await asyncio.gather(*(sts.lookup("example.org") for _ in range(20)))
        assert {f.policy.mode for f in found if f.policy is not None} == {"enforce"} and len(found) == 20
        assert all(f.policy is not None for f in found)
        assert len(server.requests) == 1
    finally:
        await server.stop()


@pytest.mark.parametrize(
    ("section", "text", "message"),
    [
        ("mta_sts", 'mode = "strict"', "mta_sts.mode"),
        ("mta_sts", "max_age = 40000000", "mta_sts.max_age"),
        ("tlsrpt", "send_hour = 24", "tlsrpt.send_hour"),
        ("tlsrpt", 'rua = "https://x.example/"', "tlsrpt.rua"),
    ],
)
def test_config_errors_name_the_key(tmp_path: Path, section: str, text: str, message: str) -> None:
    from mailserver.config import ConfigError, load

    path = tmp_path / "bad.toml"
    path.write_text(f'[server]\ndomains = ["dongnai.gov.vn"]\n[{section}]\n{text}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load(path)

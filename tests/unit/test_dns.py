"""policy/dns.py against the local DNS stub (tests/dnsstub.py): never the network."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from policy.dns import (
    DnsResolver,
    DnsSettings,
    DnsTempError,
    StaticResolver,
    build_resolver,
    lookup_addresses,
    lookup_mx,
    lookup_ptr,
)
from tests.dnsstub import DnsStub

RECORDS = {
    ("example.net", "MX"): ["20 mx2.example.net.", "10 mx1.example.net."],
    ("mx1.example.net", "A"): ["127.0.0.1"],
    ("mx2.example.net", "A"): ["127.0.0.2"],
    ("mx2.example.net", "AAAA"): ["::1"],
    ("example.net", "TXT"): ['"v=spf1 " "-all"'],
    ("1.0.0.127.in-addr.arpa", "PTR"): ["localhost.example.net."],
    ("nomx.example.net", "A"): ["127.0.0.3"],
}


@pytest.fixture
def stub() -> Iterator[DnsStub]:
    with DnsStub(RECORDS, servfail=["broken.example.net"], silent=["slow.example.net"]) as server:
        yield server


def settings(stub: DnsStub, **kw: object) -> DnsSettings:
    return DnsSettings(nameservers=[stub.address], timeout=kw.pop("timeout", 2.0), **kw)  # type: ignore[arg-type]


async def test_dns_resolver_answers_from_stub(stub: DnsStub) -> None:
    resolver = DnsResolver(settings(stub))
    assert sorted(await resolver.query("example.net", "MX")) == ["10 mx1.example.net.", "20 mx2.example.net."]
    assert await resolver.query("mx1.example.net", "A") == ["127.0.0.1"]
    assert await resolver.query("example.net", "TXT") == ["v=spf1 -all"]
    assert await resolver.query("nothing.example.net", "A") == []  # NXDOMAIN
    assert await resolver.query("mx1.example.net", "AAAA") == []  # NOERROR, no data
    assert ("example.net", "MX") in stub.queries


def test_dns_resolver_sync(stub: DnsStub) -> None:
    resolver = DnsResolver(settings(stub))
    assert resolver.query_sync("mx2.example.net", "AAAA") == ["::1"]
    assert resolver.query_sync("nothing.example.net", "MX") == []


async def test_servfail_and_timeout_are_temporary(stub: DnsStub) -> None:
    resolver = DnsResolver(settings(stub, timeout=0.5))
    with pytest.raises(DnsTempError):
        await resolver.query("broken.example.net", "MX")
    with pytest.raises(DnsTempError):
        await resolver.query("slow.example.net", "A")
    with pytest.raises(DnsTempError):
        resolver.query_sync("slow.example.net", "A")


async def test_lookup_helpers(stub: DnsStub) -> None:
    resolver = DnsResolver(settings(stub))
    assert await lookup_mx(resolver, "example.net") == [(10, "mx1.example.net"), (20, "mx2.example.net")]
    assert await lookup_mx(resolver, "nomx.example.net") == []
    assert await lookup_addresses(resolver, "mx2.example.net") == ["127.0.0.2", "::1"]
    assert await lookup_addresses(resolver, "[192.0.2.9]") == ["192.0.2.9"]
    assert await lookup_ptr(resolver, "127.0.0.1") == "localhost.example.net"
    assert await lookup_ptr(resolver, "not an ip") is None


async def test_static_resolver_shadows_and_falls_through(stub: DnsStub) -> None:
    static = StaticResolver(
        {"example.net MX": ["5 static.example.net."], "static.example.net A": ["192.0.2.1"]},
        DnsResolver(settings(stub)),
    )
    assert await static.query("EXAMPLE.NET.", "MX") == ["5 static.example.net."]
    # A name listed with any type is answered only from the map.
    assert await static.query("example.net", "TXT") == []
    assert await static.query("mx1.example.net", "A") == ["127.0.0.1"]  # fell through to the stub
    assert static.query_sync("static.example.net", "A") == ["192.0.2.1"]
    with pytest.raises(ValueError, match="NAME TYPE"):
        StaticResolver({"example.net BOGUS": []})


async def test_build_resolver(stub: DnsStub) -> None:
    only_static = build_resolver(DnsSettings(static={"a.test A": ["192.0.2.5"]}, use_servers=False))
    assert await only_static.query("a.test", "A") == ["192.0.2.5"]
    assert await only_static.query("example.net", "MX") == []
    both = build_resolver(settings(stub, static={"a.test A": ["192.0.2.5"]}))
    assert await both.query("a.test", "A") == ["192.0.2.5"]
    assert await both.query("mx1.example.net", "A") == ["127.0.0.1"]
    servers_only = build_resolver(settings(stub))
    assert isinstance(servers_only, DnsResolver)


async def test_query_authenticated_reports_the_ad_bit() -> None:
    """dns.dnssec_resolver (DANE): the AD bit of the answer is returned with the records."""
    from policy.dns import build_dnssec_resolver

    assert build_dnssec_resolver(DnsSettings()) is None
    tlsa = {("_25._tcp.mx.example.org", "TLSA"): ["3 1 1 " + "ab" * 32]}
    for secure in (True, False):
        with DnsStub(tlsa, authenticated=secure) as stub:
            resolver = build_dnssec_resolver(DnsSettings(dnssec_resolver=stub.address, timeout=2.0))
            assert resolver is not None
            records, ad = await resolver.query_authenticated("_25._tcp.mx.example.org", "TLSA")
            assert records == ["3 1 1 " + "ab" * 32] and ad is secure
            assert await resolver.query_authenticated("nothing.example.org", "TLSA") == ([], secure)

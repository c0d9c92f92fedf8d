"""Mail client autoconfiguration over HTTP: Thunderbird's config-v1.1.xml, Outlook's
Autodiscover (POX), the Apple profile (signed with our CA once it exists) and the
/setup page with its QR codes. Documents are checked against schemas transcribed from
the published formats (tests/web/schemas), the profile with plistlib and openssl,
the QR codes by decoding them with zbarimg."""

from __future__ import annotations

import asyncio
import plistlib
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from lxml import etree

from mailserver.app import App
from mailserver.config import Config, ServerSettings
from mailserver.web.server import build_application
from pki.ca import CertificateAuthority, pki_directory
from pki.settings import PkiSettings
from tests.web.helpers import portal_config

SCHEMAS = Path(__file__).parent / "schemas"
ADDRESS = "nguyenvana.stttt@dongnai.gov.vn"
PASSPHRASE = "setup-test-passphrase"
TB_PATHS = ("/.well-known/autoconfig/mail/config-v1.1.xml", "/mail/config-v1.1.xml")
AD_REQUEST = (
    '<?xml version="1.0" encoding="utf-8"?>\n'
    '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">'
    "<Request><EMailAddress>{address}</EMailAddress>"
    "<AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
    "</AcceptableResponseSchema></Request></Autodiscover>"
)
PROFILE_URL = "https://thu.dongnai.gov.vn/setup/apple.mobileconfig?emailaddress=nguyenvana.stttt%40dongnai.gov.vn"
AD = "{http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a}"


@dataclass
class Running:
    config: Config
    client: TestClient  # type: ignore[type-arg]

    def url(self, path: str) -> str:
        return str(self.client.make_url(path))


def _config(data: Path, **server: object) -> Config:
    config = portal_config(data, public_url="https://thu.dongnai.gov.vn")
    settings = replace(config.server, **server) if server else config.server
    return replace(config, server=settings)


async def _run(config: Config) -> AsyncIterator[Running]:
    async with App(config) as app:
        async with TestClient(TestServer(build_application(app.portal_dependencies()))) as client:
            yield Running(config, client)


@pytest.fixture
async def portal(tmp_path: Path) -> AsyncIterator[Running]:
    async for running in _run(_config(tmp_path / "data")):
        yield running


@pytest.fixture
async def signing_portal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Running]:
    monkeypatch.delenv("MAILSERVER_PKI_PASSPHRASE", raising=False)
    secret = tmp_path / "pki-pass"
    secret.write_text(PASSPHRASE)
    config = replace(_config(tmp_path / "data"), pki=PkiSettings(passphrase_file=str(secret)))
    CertificateAuthority.open(config.pki, config.data_dir).init()
    async for running in _run(config):
        yield running


async def _curl(*args: str) -> tuple[int, bytes]:
    """curl, the HTTP status on its last line."""
    proc = await asyncio.create_subprocess_exec(
        "curl", "-sS", "-w", "\n%{http_code}", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err
    body, _, status = out.rpartition(b"\n")
    return int(status), body


def _schema(name: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMAS / name)))


# -- Thunderbird -------------------------------------------------------------------------
@pytest.mark.parametrize("path", TB_PATHS)
async def test_thunderbird_autoconfig_is_a_valid_config_v11(portal: Running, path: str) -> None:
    status, body = await _curl(portal.url(f"{path}?emailaddress={ADDRESS}"))
    assert status == 200
    doc = etree.fromstring(body)
    schema = _schema("thunderbird-config-v1.1.xsd")
    assert schema.validate(doc), schema.error_log
    provider = doc.find("emailProvider")
    assert provider is not None and provider.get("id") == "dongnai.gov.vn"
    assert provider.findtext("domain") == "dongnai.gov.vn"
    (incoming,) = provider.findall("incomingServer")
    assert incoming.get("type") == "imap"
    fields = ("hostname", "port", "socketType", "username", "authentication")
    assert [incoming.findtext(t) for t in fields] == [
        "mx.test.dongnai.gov.vn", "993", "SSL", "%EMAILADDRESS%", "password-cleartext"]
    outgoing = [(o.get("type"), o.findtext("port"), o.findtext("socketType"))
                for o in provider.findall("outgoingServer")]
    assert outgoing == [("smtp", "465", "SSL"), ("smtp", "587", "STARTTLS")]


async def test_public_host_and_ports_come_from_config(tmp_path: Path) -> None:
    config = _config(tmp_path / "data", public_imap="imap.dongnai.gov.vn:10993",
                     public_submissions="smtp.dongnai.gov.vn:10465",
                     public_submission="smtp.dongnai.gov.vn:10587")
    async for running in _run(config):
        resp = await running.client.get(TB_PATHS[1], params={"emailaddress": ADDRESS})
        doc = etree.fromstring(await resp.read())
        servers = [(s.findtext("hostname"), s.findtext("port"))
                   for s in doc.iter("incomingServer", "outgoingServer")]
        assert servers == [("imap.dongnai.gov.vn", "10993"), ("smtp.dongnai.gov.vn", "10465"),
                           ("smtp.dongnai.gov.vn", "10587")]
        resp = await running.client.post("/autodiscover/autodiscover.xml",
                                         data=AD_REQUEST.format(address=ADDRESS))
        doc = etree.fromstring(await resp.read())
        assert [(p.findtext(f"{AD}Server"), p.findtext(f"{AD}Port")) for p in doc.iter(f"{AD}Protocol")] == [
            ("imap.dongnai.gov.vn", "10993"), ("smtp.dongnai.gov.vn", "10465")]


@pytest.mark.parametrize("query,fragment", [
    ("", "missing"), ("?emailaddress=", "missing"), ("?emailaddress=not-an-address", "not a valid"),
    ("?emailaddress=someone@gmail.com", "not served here"),
])
async def test_thunderbird_bad_address_is_a_clear_400(portal: Running, query: str, fragment: str) -> None:
    for path in TB_PATHS:
        resp = await portal.client.get(path + query)
        text = await resp.text()
        assert resp.status == 400 and fragment in text and "Traceback" not in text


# -- Outlook Autodiscover -----------------------------------------------------------------
@pytest.mark.parametrize("path", ["/autodiscover/autodiscover.xml", "/Autodiscover/Autodiscover.xml"])
async def test_outlook_autodiscover_pox(portal: Running, path: str) -> None:
    # As Outlook sends it: POST, text/xml, no cookie and no CSRF token of ours.
    status, body = await _curl("-X", "POST", "-H", "Content-Type: text/xml",
                               "--data-binary", AD_REQUEST.format(address=ADDRESS), portal.url(path))
    assert status == 200, body
    doc = etree.fromstring(body)
    schema = _schema("autodiscover-response-2006.xsd")
    assert schema.validate(doc), schema.error_log
    account = doc.find(f"{AD}Response/{AD}Account")
    assert account is not None
    protocols = {p.findtext(f"{AD}Type"): p for p in account.findall(f"{AD}Protocol")}
    assert set(protocols) == {"IMAP", "SMTP"}
    imap, smtp = protocols["IMAP"], protocols["SMTP"]
    assert [imap.findtext(f"{AD}{t}") for t in ("Server", "Port", "SSL", "LoginName")] == [
        "mx.test.dongnai.gov.vn", "993", "on", ADDRESS]
    assert [smtp.findtext(f"{AD}{t}") for t in ("Server", "Port", "SSL", "LoginName", "AuthRequired")] == [
        "mx.test.dongnai.gov.vn", "465", "on", ADDRESS, "on"]


XXE = (
    '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">'
    "<Request><EMailAddress>&xxe;</EMailAddress></Request></Autodiscover>"
)
LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><Autodiscover><Request><EMailAddress>&c;</EMailAddress>'
    "</Request></Autodiscover>"
)


@pytest.mark.parametrize("body,fragment", [
    ("", "empty"), ("<Autodiscover><Request>", "malformed"), ("not xml at all", "malformed"),
    (XXE, "DTD"), (LAUGHS, "DTD"), ("<Autodiscover><Request/></Autodiscover>", "EMailAddress"),
    ("<Other><Request><EMailAddress>a@dongnai.gov.vn</EMailAddress></Request></Other>", "EMailAddress"),
    (AD_REQUEST.format(address="x@example.org"), "not served here"),
])
async def test_autodiscover_bad_requests_get_400(portal: Running, body: str, fragment: str) -> None:
    resp = await portal.client.post("/autodiscover/autodiscover.xml", data=body.encode(),
                                    headers={"Content-Type": "text/xml"})
    text = await resp.text()
    assert resp.status == 400, text
    assert fragment in text and "root:" not in text and "Traceback" not in text
    doc = etree.fromstring(text.encode())
    assert doc.findtext(".//{*}ErrorCode") == "600"


async def test_other_posts_still_need_the_csrf_token(portal: Running) -> None:
    resp = await portal.client.post("/password", data={"address": ADDRESS})
    assert resp.status == 403


# -- Apple profile ---------------------------------------------------------------------------
def _mail_payload(profile: dict[str, object]) -> dict[str, object]:
    assert profile["PayloadType"] == "Configuration" and profile["PayloadVersion"] == 1
    content = profile["PayloadContent"]
    assert isinstance(content, list) and len(content) == 1
    payload = content[0]
    assert isinstance(payload, dict) and payload["PayloadType"] == "com.apple.mail.managed"
    return payload


async def test_apple_profile_unsigned_without_ca(portal: Running) -> None:
    resp = await portal.client.get("/setup/apple.mobileconfig", params={"emailaddress": ADDRESS})
    assert resp.status == 200 and resp.content_type == "application/x-apple-aspen-config"
    mail = _mail_payload(plistlib.loads(await resp.read()))
    assert mail["EmailAccountType"] == "EmailTypeIMAP"
    host = "mx.test.dongnai.gov.vn"
    assert (mail["IncomingMailServerHostName"], mail["IncomingMailServerPortNumber"]) == (host, 993)
    assert (mail["OutgoingMailServerHostName"], mail["OutgoingMailServerPortNumber"]) == (host, 465)
    assert mail["IncomingMailServerUseSSL"] is True and mail["OutgoingMailServerUseSSL"] is True
    assert mail["EmailAddress"] == mail["IncomingMailServerUsername"] == ADDRESS
    # Without an address the device asks for it; with a bad one the answer is a 400.
    plain = await portal.client.get("/setup/apple.mobileconfig")
    anonymous = _mail_payload(plistlib.loads(await plain.read()))
    assert "EmailAddress" not in anonymous and "IncomingMailServerUsername" not in anonymous
    bad = await portal.client.get("/setup/apple.mobileconfig", params={"emailaddress": "a@gmail.com"})
    assert bad.status == 400


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
async def test_apple_profile_signed_by_our_ca(signing_portal: Running, tmp_path: Path) -> None:
    status, body = await _curl(signing_portal.url(f"/setup/apple.mobileconfig?emailaddress={ADDRESS}"))
    assert status == 200
    with pytest.raises(plistlib.InvalidFileException):
        plistlib.loads(body)  # CMS, not a bare plist
    signed = tmp_path / "p.mobileconfig"
    signed.write_bytes(body)
    root = signing_portal.config.data_dir / "pki" / "root.pem"
    assert root.exists()
    verify = subprocess.run(
        ["openssl", "cms", "-verify", "-inform", "DER", "-in", str(signed), "-CAfile", str(root),
         "-purpose", "any"],
        capture_output=True, check=False,
    )
    assert verify.returncode == 0, verify.stderr
    mail = _mail_payload(plistlib.loads(verify.stdout))
    assert mail["EmailAddress"] == ADDRESS
    assert "ca.pem" in await (await signing_portal.client.get("/setup")).text()  # the "signed" note
    # A profile signed by another CA does not verify against ours.
    other = CertificateAuthority(tmp_path / "other", passphrase=b"x")
    other.init()
    refused = subprocess.run(
        ["openssl", "cms", "-verify", "-inform", "DER", "-in", str(signed), "-CAfile",
         str(tmp_path / "other" / "root.pem"), "-purpose", "any"],
        capture_output=True, check=False,
    )
    assert refused.returncode != 0


# -- /setup ------------------------------------------------------------------------------------
async def test_setup_page_steps_and_settings(portal: Running) -> None:
    resp = await portal.client.get("/setup", params={"address": ADDRESS})
    html = await resp.text()
    assert resp.status == 200
    for section in ("setup-thunderbird", "setup-outlook", "setup-iphone", "setup-android"):
        assert f'id="{section}"' in html
    assert "Cài đặt thư" in html and "Thunderbird" in html and "Gmail" in html
    assert "mx.test.dongnai.gov.vn" in html and ">993<" in html and ">465<" in html and ">587<" in html
    assert PROFILE_URL in html
    english = await (await portal.client.get("/setup", params={"lang": "en"})).text()
    assert "Set up mail" in english and "Gmail app" in english
    bad = await portal.client.get("/setup", params={"address": "x@gmail.com"})
    assert bad.status == 400 and 'id="setup-bad-address"' in await bad.text()


@pytest.mark.parametrize("target,expected", [
    ("iphone", PROFILE_URL),
    ("phone", "https://thu.dongnai.gov.vn/setup?address=nguyenvana.stttt%40dongnai.gov.vn"),
])
@pytest.mark.skipif(shutil.which("zbarimg") is None, reason="zbarimg (zbar-tools) not installed")
async def test_setup_qr_codes_decode_to_the_links(portal: Running, tmp_path: Path, target: str,
                                                  expected: str) -> None:
    resp = await portal.client.get(f"/setup/qr/{target}.png", params={"address": ADDRESS})
    assert resp.status == 200 and resp.content_type == "image/png"
    image = tmp_path / "qr.png"
    image.write_bytes(await resp.read())
    decoded = subprocess.run(["zbarimg", "--raw", "-q", str(image)], capture_output=True, check=True)
    assert decoded.stdout.decode().strip() == expected
    svg = await portal.client.get(f"/setup/qr/{target}.svg")
    assert svg.status == 200 and svg.content_type == "image/svg+xml" and b"<svg" in await svg.read()
    assert (await portal.client.get("/setup/qr/other.png")).status == 404


def test_default_public_endpoints() -> None:
    from mailserver.clientsetup import public_endpoints

    config = Config(server=ServerSettings(hostname="mail.dongnai.gov.vn"))
    ends = public_endpoints(config)
    assert [(e.host, e.port) for e in (ends.imap, ends.submissions, ends.submission)] == [
        ("mail.dongnai.gov.vn", 993), ("mail.dongnai.gov.vn", 465), ("mail.dongnai.gov.vn", 587)]


def test_public_endpoint_keys_must_be_host_port() -> None:
    from mailserver.config import ConfigError, from_mapping

    with pytest.raises(ConfigError, match="server.public_imap"):
        from_mapping({"server": {"public_imap": "imap.dongnai.gov.vn"}}, "test.toml")


async def test_autodiscover_oversized_request_refused(portal: Running) -> None:
    body = AD_REQUEST.format(address=ADDRESS).replace("<Request>", "<Request>" + " " * 100_000)
    resp = await portal.client.post("/autodiscover/autodiscover.xml", data=body.encode(),
                                    headers={"Content-Type": "text/xml"})
    assert resp.status == 413 and "Traceback" not in await resp.text()


async def test_apple_profile_unsigned_when_the_ca_key_is_locked(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # The CA exists, but this server was not given its passphrase: the profile is served unsigned.
    monkeypatch.delenv("MAILSERVER_PKI_PASSPHRASE", raising=False)
    config = _config(tmp_path / "data")
    CertificateAuthority(pki_directory(config.pki, config.data_dir), config.pki,
                         passphrase=PASSPHRASE.encode()).init()
    async for running in _run(config):
        resp = await running.client.get("/setup/apple.mobileconfig", params={"emailaddress": ADDRESS})
        assert resp.status == 200
        assert _mail_payload(plistlib.loads(await resp.read()))["EmailAddress"] == ADDRESS
        page = await (await running.client.get("/setup")).text()
        assert "ca.pem" not in page  # no "signed" note when it is not

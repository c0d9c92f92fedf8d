"""Mail client autoconfiguration: the documents that set up Thunderbird, Outlook and
Apple devices by themselves, from the public host names and ports in the config.

* ``public_endpoints(config)``: where users' clients reach IMAP over implicit TLS
  and submission (``server.public_imap``, ``server.public_submissions``,
  ``server.public_submission``; by default ``server.hostname`` on 993, 465 and 587,
  RFC 8314 section 7 and RFC 6409). The same values go into the RFC 6186 SRV
  records ``mailserver dns records`` prints.
* ``thunderbird_config``: Thunderbird's ``config-v1.1.xml`` (the "clientConfig"
  format of Mozilla's ISPDB, wiki.mozilla.org/Thunderbird:Autoconfiguration).
* ``autodiscover_address`` / ``autodiscover_response``: Outlook's Autodiscover
  "POX" protocol ([MS-OXDSCLI] sections 2.2.3 and 2.2.4): a request naming the
  ``EMailAddress``, parsed with defusedxml so entity expansion and external
  entities (XXE) are refused, and a response with one ``Protocol`` per service.
* ``apple_profile``: an Apple configuration profile (a property list of type
  ``Configuration`` holding one ``com.apple.mail.managed`` payload), and
  ``sign_profile`` wraps it in CMS SignedData (RFC 5652) so the device shows it
  as verified when our CA is trusted.

Nothing here touches sockets; the portal (``mailserver/web/setup.py``) serves these.
"""

from __future__ import annotations

import plistlib
import re
import uuid
from dataclasses import dataclass
from typing import Final
from xml.etree.ElementTree import Element, SubElement, tostring

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeXml

from mailserver.config import Config, parse_hostport

AUTODISCOVER_REQUEST_NS: Final = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
AUTODISCOVER_NS: Final = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
AUTODISCOVER_OUTLOOK_NS: Final = (
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
)
MOBILECONFIG_TYPE: Final = "application/x-apple-aspen-config"
_ADDRESS: Final = re.compile(r"^[^@\s<>\"]{1,64}@[A-Za-z0-9.-]{1,253}$")


class SetupError(ValueError):
    """A request the documents cannot be made for; the text is for the client (4xx)."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class Endpoints:
    imap: Endpoint
    """IMAP over implicit TLS (RFC 8314 section 3.3)."""
    submissions: Endpoint
    """Submission over implicit TLS (RFC 8314 section 3.3)."""
    submission: Endpoint
    """Submission with STARTTLS (RFC 6409)."""


def _endpoint(value: str, hostname: str, port: int) -> Endpoint:
    if not value:
        return Endpoint(hostname, port)
    host, number = parse_hostport(value)
    return Endpoint(host, number)


def public_endpoints(config: Config) -> Endpoints:
    """The host names and ports users' clients are told to use."""
    server = config.server
    return Endpoints(
        imap=_endpoint(server.public_imap, server.hostname, 993),
        submissions=_endpoint(server.public_submissions, server.hostname, 465),
        submission=_endpoint(server.public_submission, server.hostname, 587),
    )


def check_address(config: Config, address: str | None) -> str:
    """A syntactically plain address of one of our domains, lower-cased; else SetupError."""
    value = (address or "").strip().lower()
    if not value:
        raise SetupError("Thiếu địa chỉ thư (emailaddress) / the email address is missing")
    if not _ADDRESS.match(value):
        raise SetupError("Địa chỉ thư không hợp lệ / not a valid email address")
    domain = value.rpartition("@")[2]
    if not config.is_local_domain(domain):
        raise SetupError(f"{domain} không phải tên miền của máy chủ này / {domain} is not served here")
    return value


def _organisation(config: Config) -> str:
    return config.pki.organization or config.server.domains[0]


# -- Thunderbird -------------------------------------------------------------------
def thunderbird_config(config: Config, address: str) -> bytes:
    """``config-v1.1.xml`` for ``address``'s domain: IMAP over TLS, then submission over
    TLS and with STARTTLS; the user name is the full address (``%EMAILADDRESS%``)."""
    ends = public_endpoints(config)
    domain = address.rpartition("@")[2]
    root = Element("clientConfig", version="1.1")
    provider = SubElement(root, "emailProvider", id=domain)
    SubElement(provider, "domain").text = domain
    SubElement(provider, "displayName").text = _organisation(config)
    SubElement(provider, "displayShortName").text = domain

    def server(tag: str, kind: str, end: Endpoint, socket_type: str) -> None:
        node = SubElement(provider, tag, type=kind)
        SubElement(node, "hostname").text = end.host
        SubElement(node, "port").text = str(end.port)
        SubElement(node, "socketType").text = socket_type
        SubElement(node, "authentication").text = "password-cleartext"
        SubElement(node, "username").text = "%EMAILADDRESS%"

    server("incomingServer", "imap", ends.imap, "SSL")
    server("outgoingServer", "smtp", ends.submissions, "SSL")
    server("outgoingServer", "smtp", ends.submission, "STARTTLS")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + tostring(root, encoding="unicode").encode()


# -- Outlook Autodiscover (POX) ----------------------------------------------------
def autodiscover_address(body: bytes) -> str:
    """The ``Request/EMailAddress`` of an Autodiscover POX request ([MS-OXDSCLI]
    2.2.3). DTDs, entities and external references are refused (defusedxml)."""
    if not body.strip():
        raise SetupError("Yêu cầu rỗng / empty request")
    try:
        root = SafeXml.fromstring(body, forbid_dtd=True)
    except DefusedXmlException:
        raise SetupError("XML có DTD hoặc thực thể bị cấm / DTDs and entities are not allowed") from None
    except SafeXml.ParseError:
        raise SetupError("XML không hợp lệ / malformed XML") from None
    ns = f"{{{AUTODISCOVER_REQUEST_NS}}}"
    found = root.find(f"{ns}Request/{ns}EMailAddress")
    if found is None:  # some clients send the elements without the namespace
        found = root.find("Request/EMailAddress")
    text = (found.text or "").strip() if found is not None else ""
    if root.tag not in (f"{ns}Autodiscover", "Autodiscover") or not text:
        raise SetupError("Thiếu Request/EMailAddress / Request/EMailAddress is missing")
    return text


def autodiscover_response(config: Config, address: str) -> bytes:
    """An ``Autodiscover/Response/Account`` with one ``Protocol`` for IMAP (TLS) and one
    for SMTP (submission over TLS), [MS-OXDSCLI] 2.2.4.1.1.2."""
    ends = public_endpoints(config)
    root = Element("Autodiscover", xmlns=AUTODISCOVER_NS)
    response = SubElement(root, "Response", xmlns=AUTODISCOVER_OUTLOOK_NS)
    account = SubElement(response, "Account")
    SubElement(account, "AccountType").text = "email"
    SubElement(account, "Action").text = "settings"

    def protocol(kind: str, end: Endpoint) -> None:
        node = SubElement(account, "Protocol")
        for tag, text in (
            ("Type", kind), ("Server", end.host), ("Port", str(end.port)), ("DomainRequired", "off"),
            ("LoginName", address), ("SPA", "off"), ("SSL", "on"), ("AuthRequired", "on"),
        ):
            SubElement(node, tag).text = text

    protocol("IMAP", ends.imap)
    protocol("SMTP", ends.submissions)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + tostring(root, encoding="unicode").encode()


def autodiscover_error(message: str) -> bytes:
    """The Autodiscover error document ([MS-OXDSCLI] 2.2.4.1.1.1), code 600 "Invalid Request"."""
    root = Element("Autodiscover", xmlns=AUTODISCOVER_NS)
    response = SubElement(root, "Response")
    error = SubElement(response, "Error", Time="00:00:00", Id="0")
    SubElement(error, "ErrorCode").text = "600"
    SubElement(error, "Message").text = message
    SubElement(error, "DebugData")
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + tostring(root, encoding="unicode").encode()


# -- Apple configuration profile -----------------------------------------------------
def apple_profile(config: Config, address: str | None) -> bytes:
    """A ``.mobileconfig`` property list. Without an address the device asks for it;
    the UUIDs are derived from the address and host, so installing it again
    replaces the earlier profile instead of adding a second account."""
    ends = public_endpoints(config)
    domain = address.rpartition("@")[2] if address else config.server.domains[0]
    reverse = ".".join(reversed(config.server.hostname.split(".")))
    seed = f"{address or domain}/{config.server.hostname}"
    mail: dict[str, object] = {
        "PayloadType": "com.apple.mail.managed",
        "PayloadVersion": 1,
        "PayloadIdentifier": f"{reverse}.mail.account",
        "PayloadUUID": str(uuid.uuid5(uuid.NAMESPACE_URL, f"mail:{seed}")).upper(),
        "PayloadDisplayName": f"Thư {domain} / {domain} mail",
        "EmailAccountDescription": f"Thư {domain}",
        "EmailAccountType": "EmailTypeIMAP",
        "IncomingMailServerHostName": ends.imap.host,
        "IncomingMailServerPortNumber": ends.imap.port,
        "IncomingMailServerUseSSL": True,
        "IncomingMailServerAuthentication": "EmailAuthPassword",
        "OutgoingMailServerHostName": ends.submissions.host,
        "OutgoingMailServerPortNumber": ends.submissions.port,
        "OutgoingMailServerUseSSL": True,
        "OutgoingMailServerAuthentication": "EmailAuthPassword",
        "OutgoingPasswordSameAsIncomingPassword": True,
    }
    if address:
        mail.update(EmailAddress=address, IncomingMailServerUsername=address,
                    OutgoingMailServerUsername=address)
    profile: dict[str, object] = {
        "PayloadType": "Configuration",
        "PayloadVersion": 1,
        "PayloadIdentifier": f"{reverse}.mail",
        "PayloadUUID": str(uuid.uuid5(uuid.NAMESPACE_URL, f"profile:{seed}")).upper(),
        "PayloadDisplayName": f"Thư điện tử {domain} / {domain} mail",
        "PayloadDescription": "Cài đặt hộp thư (IMAP, SMTP) / sets up the mail account (IMAP, SMTP)",
        "PayloadOrganization": _organisation(config),
        "PayloadRemovalDisallowed": False,
        "PayloadContent": [mail],
    }
    return plistlib.dumps(profile, fmt=plistlib.FMT_XML)


def sign_profile(
    data: bytes, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
    chain: list[x509.Certificate],
) -> bytes:
    """CMS SignedData (RFC 5652) over ``data``, the profile inside, DER: what
    iOS and macOS install as a signed profile."""
    builder = pkcs7.PKCS7SignatureBuilder().set_data(data).add_signer(cert, key, hashes.SHA256())
    for extra in chain:
        builder = builder.add_certificate(extra)
    return builder.sign(Encoding.DER, [pkcs7.PKCS7Options.Binary])


__all__ = [
    "MOBILECONFIG_TYPE", "Endpoint", "Endpoints", "SetupError", "apple_profile", "autodiscover_address",
    "autodiscover_error", "autodiscover_response", "check_address", "public_endpoints", "sign_profile",
    "thunderbird_config",
]

"""The DNS records a local domain publishes, as ``mailserver dns records`` prints them.

Per domain:

* ``MX`` to ``server.hostname`` (RFC 5321 section 5.1);
* SPF ``v=spf1 mx -all``: only the MX hosts send for the domain (RFC 7208);
* DKIM: every published key of the key store (active and retiring, RFC 6376
  section 3.6.2; ``mailserver dkim keygen`` makes them), or a note to make one;
* DMARC ``_dmarc`` with ``p=quarantine`` and aggregate reports to ``dmarc.rua``
  (default postmaster@ the domain; RFC 7489 section 6.3); when that mailbox is
  in another organizational domain, the ``_report._dmarc`` record by which it
  agrees to receive them (section 7.1);
* RFC 6186 SRV records from the public endpoints the autoconfiguration names
  (``server.public_imap``, ``public_submissions``, ``public_submission``); the
  services clients should not use (POP3, which is not offered, and IMAP with
  STARTTLS, RFC 8314 section 5.1 preferring implicit TLS) are published with
  target "." (RFC 6186 section 4, RFC 2782): "not available here";
* ``autoconfig`` and ``autodiscover`` CNAMEs and ``_autodiscover._tcp`` SRV to the
  portal's host (``web.public_url``), where Thunderbird and Outlook look first.

* MTA-STS (RFC 8461 section 3.1): ``_mta-sts`` TXT whose ``id`` is a hash of the
  policy the portal serves (``mta_sts.*``), so it changes exactly when the policy
  does, and ``mta-sts`` CNAME to the portal's host (which must hold a certificate
  for that name); skipped when ``mta_sts.mode`` is "none";
* TLS-RPT (RFC 8460 section 3): ``_smtp._tls`` TXT with ``rua`` = ``tlsrpt.rua``;
* DANE (RFC 7672, RFC 7671 section 5.1): ``_25._tcp.<server.hostname>`` TLSA
  ``3 1 1`` of our certificate's key (publish only in a DNSSEC-signed zone; keep
  the key across certificate renewals, or publish the next key's record first).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any, Final
from urllib.parse import urlsplit

from mailserver.clientsetup import public_endpoints
from mailserver.config import Config
from mailserver.ops.dmarc import report_rua
from mailserver.smtp.mtasts import policy_text
from mailserver.smtp.outbound_settings import tlsrpt_address
from mailserver.web.settings import portal_url
from pki.dane import own_tlsa
from pki.dkim import key_directory
from pki.keystore import DkimKeyStore
from policy.checks.authentication import organizational_domain

TTL: Final = 3600


@dataclass(frozen=True, slots=True)
class Record:
    name: str
    """Owner name, absolute, with the final dot."""
    type: str
    value: str
    """RDATA in zone-file presentation format (TXT already quoted)."""
    purpose: str
    ttl: int = TTL

    @property
    def zone_line(self) -> str:
        return f"{self.name} {self.ttl} IN {self.type} {self.value}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fqdn(name: str) -> str:
    return name.rstrip(".") + "."


def _txt(text: str) -> str:
    """Presentation form of a TXT string: quoted, split into 255-octet strings (RFC 1035 3.3.14)."""
    chunks = [text[i : i + 255] for i in range(0, len(text), 255)] or [""]
    return " ".join('"' + c.replace("\\", "\\\\").replace('"', '\\"') + '"' for c in chunks)


def _srv(service: str, domain: str, host: str | None, port: int, purpose: str) -> Record:
    value = f"0 1 {port} {_fqdn(host)}" if host else "0 0 0 ."
    return Record(f"{service}._tcp.{_fqdn(domain)}", "SRV", value, purpose)


def records(config: Config, domain: str, today: date) -> list[Record]:
    """Every record to publish for ``domain`` (a local domain)."""
    d = domain.lower().rstrip(".")
    host = config.server.hostname
    ends = public_endpoints(config)
    portal_host = urlsplit(portal_url(config.web, host)).hostname or host
    out = [
        Record(_fqdn(d), "MX", f"10 {_fqdn(host)}", "MX: thư đến / inbound mail (RFC 5321)"),
        Record(_fqdn(d), "TXT", _txt("v=spf1 mx -all"),
               "SPF: chỉ máy chủ MX gửi thư / only the MX sends (RFC 7208)"),
    ]
    store = DkimKeyStore(key_directory(config.dkim, config.data_dir))
    for key in store.published(d, today):
        out.append(Record(_fqdn(key.dns_name), "TXT", _txt(key.txt),
                          f"DKIM {key.selector} ({key.algorithm}, {key.state(today)}) (RFC 6376)"))
    rua = report_rua(config, d)
    rua_domain = rua.rpartition("@")[2].lower()
    out.append(Record(f"_dmarc.{_fqdn(d)}", "TXT", _txt(f"v=DMARC1; p=quarantine; rua=mailto:{rua}"),
                      "DMARC (RFC 7489)"))
    if organizational_domain(rua_domain) != organizational_domain(d):
        out.append(Record(f"{d}._report._dmarc.{_fqdn(rua_domain)}", "TXT", _txt("v=DMARC1"),
                          "Nhận báo cáo DMARC cho tên miền khác / accepts its DMARC reports (RFC 7489 7.1)"))
    out += [
        _srv("_imaps", d, ends.imap.host, ends.imap.port,
             "IMAP qua TLS / IMAP over TLS (RFC 6186, RFC 8314)"),
        _srv("_submissions", d, ends.submissions.host, ends.submissions.port,
             "Gửi thư qua TLS / submission over TLS (RFC 8314)"),
        _srv("_submission", d, ends.submission.host, ends.submission.port,
             "Gửi thư STARTTLS / submission with STARTTLS (RFC 6186)"),
        _srv("_imap", d, None, 0,
             "IMAP STARTTLS không quảng bá, dùng _imaps / not advertised: _imaps preferred (RFC 8314 5.1)"),
        _srv("_pop3", d, None, 0, "POP3: không cung cấp / not offered"),
        _srv("_pop3s", d, None, 0, "POP3S: không cung cấp / not offered"),
        Record(f"autoconfig.{_fqdn(d)}", "CNAME", _fqdn(portal_host), "Thunderbird autoconfig"),
        Record(f"autodiscover.{_fqdn(d)}", "CNAME", _fqdn(portal_host), "Outlook Autodiscover"),
        _srv("_autodiscover", d, portal_host, 443, "Outlook Autodiscover (SRV)"),
    ]
    return out + transport_security(config, d, portal_host)


def mta_sts_id(config: Config) -> str:
    """The ``id`` of our ``_mta-sts`` record: the policy's hash (RFC 8461 section 3.1)."""
    sts = config.mta_sts
    text = policy_text(sts.mode, list(sts.mx) or [config.server.hostname], sts.max_age)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def transport_security(config: Config, d: str, portal_host: str) -> list[Record]:
    """MTA-STS, TLS-RPT and DANE records (module docstring)."""
    out: list[Record] = []
    if config.mta_sts.mode != "none":
        out += [
            Record(f"_mta-sts.{_fqdn(d)}", "TXT", _txt(f"v=STSv1; id={mta_sts_id(config)}"),
                   f"MTA-STS ({config.mta_sts.mode}) (RFC 8461)"),
            Record(f"mta-sts.{_fqdn(d)}", "CNAME", _fqdn(portal_host),
                   "MTA-STS: máy chủ chính sách / policy host, HTTPS (RFC 8461 3.3)"),
        ]
    rua = tlsrpt_address(config.tlsrpt, list(config.server.domains))
    if rua:
        out.append(Record(f"_smtp._tls.{_fqdn(d)}", "TXT", _txt(f"v=TLSRPTv1; rua=mailto:{rua}"),
                          "TLS-RPT: báo cáo TLS / TLS reports (RFC 8460)"))
    try:
        tlsa = own_tlsa(config.tls_cert.read_bytes())
    except (OSError, ValueError):
        return out
    out.append(Record(f"_25._tcp.{_fqdn(config.server.hostname)}", "TLSA", tlsa,
                      "DANE-EE 3 1 1 (RFC 7672): chỉ trong vùng có DNSSEC / only in a DNSSEC-signed zone"))
    return out


def has_dkim(config: Config, domain: str, today: date) -> bool:
    store = DkimKeyStore(key_directory(config.dkim, config.data_dir))
    return bool(store.published(domain.lower().rstrip("."), today))


def zone_text(config: Config, domains: list[str], today: date) -> str:
    """The records of ``domains`` in zone-file format, a comment above each."""
    lines: list[str] = []
    seen: set[str] = set()
    for domain in domains:
        lines.append(f"; --- {domain} ---")
        if not has_dkim(config, domain, today):
            lines.append(f"; chưa có khóa DKIM / no DKIM key: mailserver dkim keygen --domain {domain}")
        for record in records(config, domain, today):
            if record.zone_line in seen:
                continue  # the MX host's TLSA record is shared by every domain
            seen.add(record.zone_line)
            lines.append(f"; {record.purpose}")
            lines.append(record.zone_line)
        lines.append("")
    return "\n".join(lines)


__all__ = ["Record", "has_dkim", "mta_sts_id", "records", "zone_text"]

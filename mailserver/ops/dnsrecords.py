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

MTA-STS (RFC 8461) and TLS-RPT (RFC 8460) are not configurable yet, so they are
not printed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Any, Final
from urllib.parse import urlsplit

from mailserver.clientsetup import public_endpoints
from mailserver.config import Config
from mailserver.ops.dmarc import report_rua
from mailserver.web.settings import portal_url
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
    return out


def has_dkim(config: Config, domain: str, today: date) -> bool:
    store = DkimKeyStore(key_directory(config.dkim, config.data_dir))
    return bool(store.published(domain.lower().rstrip("."), today))


def zone_text(config: Config, domains: list[str], today: date) -> str:
    """The records of ``domains`` in zone-file format, a comment above each."""
    lines: list[str] = []
    for domain in domains:
        lines.append(f"; --- {domain} ---")
        if not has_dkim(config, domain, today):
            lines.append(f"; chưa có khóa DKIM / no DKIM key: mailserver dkim keygen --domain {domain}")
        for record in records(config, domain, today):
            lines.append(f"; {record.purpose}")
            lines.append(record.zone_line)
        lines.append("")
    return "\n".join(lines)


__all__ = ["Record", "has_dkim", "records", "zone_text"]

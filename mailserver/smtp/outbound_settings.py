"""Settings of outbound delivery (the ``[outbound]`` config section).

Kept apart from ``mailserver/config.py`` (which composes it) and free of
imports from it, so the config module can import this one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def _help(text: str, default: Any) -> Any:
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata={"help": text})
    return field(default=default, metadata={"help": text})


@dataclass(frozen=True, slots=True)
class OutboundSettings:
    spool_dir: str = _help("Directory of queued message files; empty: <data_dir>/queue.", "")
    port: int = _help("TCP port of remote mail exchangers (25; tests use another).", 25)
    static_routes: dict[str, str] = _help(
        'Next hop per recipient domain, overriding MX lookup, e.g. { "example.org" = "10.0.0.5:25" }.',
        {},
    )
    relay_host: str = _help(
        "Smarthost as host:port: when set, all remote mail goes there instead of to MX hosts.", ""
    )
    relay_username: str = _help("User name for AUTH at the smarthost; empty: no AUTH.", "")
    relay_password_file: str = _help(
        "File whose first line is the smarthost password (kept out of this file).", ""
    )
    require_tls: list[str] = _help(
        "Recipient domains that must never get mail over an unencrypted connection\n"
        "(STARTTLS is tried with every host anyway; certificates are not verified, RFC 7435,\n"
        "unless the domain publishes MTA-STS or DANE).",
        [],
    )
    ca_file: str = _help(
        "PEM file of the certificate authorities trusted for MTA-STS (RFC 8461): the policy\n"
        "host's HTTPS certificate and the MX hosts' certificates (and https TLS-RPT destinations);\n"
        "empty: the system's trust store.",
        "",
    )
    mta_sts: bool = _help(
        "Apply the MTA-STS policies of recipient domains (RFC 8461): look up _mta-sts TXT,\n"
        "fetch and cache the policy, and in enforce mode deliver only over valid TLS to listed MX hosts.",
        True,
    )
    mta_sts_port: int = _help(
        "TCP port of https://mta-sts.<domain>/ (443; tests point it at a loopback server).", 443
    )
    mta_sts_timeout: float = _help(
        "Seconds fetching one MTA-STS policy may take in all (at most 64 KiB are read).", 10.0
    )
    timeout: float = _help("Seconds one SMTP command to a remote host may take.", 60.0)
    max_concurrent: int = _help("Most messages delivered at the same time.", 20)
    retry_base: float = _help(
        "Seconds before the first retry after a temporary failure; doubled on every further one.", 300.0
    )
    retry_cap: float = _help("Longest wait between two tries, in seconds.", 3600.0)
    poll_interval: float = _help(
        "Longest time, in seconds, the worker sleeps before looking at the queue again\n"
        "(it also picks up `mailserver queue` changes then).",
        30.0,
    )
    lease: float = _help(
        "Seconds a node's claim on a queued message lasts while it delivers it (renewed every\n"
        "poll_interval at most, so keep it several times larger): with several nodes on one\n"
        "database, a message whose node died is taken over by another once the lease ends.",
        600.0,
    )
    max_queue_days: float = _help(
        "Days a message may wait for a temporary failure to clear before it is returned to the sender.",
        5.0,
    )
    delay_warning_hours: float = _help(
        "Hours after which the sender gets one delay notice (RFC 3464 action=delayed); 0: never.", 4.0
    )
    max_messages_per_hour: int = _help(
        "Messages one authenticated user may submit per hour (450 4.7.1 beyond); 0: unlimited.", 200
    )
    max_recipients_per_hour: int = _help(
        "Recipients one authenticated user may address per hour (450 4.7.1 beyond); 0: unlimited.", 2000
    )


def spool_path(settings: OutboundSettings, data_dir: Path) -> Path:
    """Where queued message files live."""
    return Path(settings.spool_dir) if settings.spool_dir else data_dir / "queue"


@dataclass(frozen=True, slots=True)
class MtaStsSettings:
    """Our own MTA-STS policy (RFC 8461), served by the portal for every local domain."""

    mode: str = _help(
        'Policy mode published at https://mta-sts.<domain>/.well-known/mta-sts.txt: "enforce",\n'
        '"testing" or "none" (RFC 8461 section 5); the portal must answer for mta-sts.<domain>\n'
        "with a certificate valid for that name.",
        "testing",
    )
    max_age: int = _help(
        "Seconds senders may cache the policy (RFC 8461 section 3.2; at most a year).", 604800
    )
    mx: list[str] = _help(
        'MX host patterns of the policy ("*.example.org" allowed); empty: server.hostname.', []
    )

    def __post_init__(self) -> None:
        if self.mode not in ("enforce", "testing", "none"):
            raise ValueError(f'mta_sts.mode must be "enforce", "testing" or "none", got {self.mode!r}')
        if not 0 <= self.max_age <= 31_557_600:
            raise ValueError("mta_sts.max_age must be between 0 and 31557600")


@dataclass(frozen=True, slots=True)
class TlsRptSettings:
    """SMTP TLS reporting (RFC 8460): reports we send and reports we receive."""

    send_reports: bool = _help(
        "Send a daily report of outbound TLS results to the rua (mailto: or https:) of each recipient\n"
        "domain's _smtp._tls TXT record (RFC 8460 section 3); `mailserver report tlsrpt --send-now`\n"
        "sends at once.",
        True,
    )
    rua: str = _help(
        "Our address for reports from others, published in _smtp._tls (mailto:); mail to it is\n"
        "parsed and listed in /admin/tlsrpt and `mailserver report tlsrpt --received`; it needs no\n"
        "mailbox. Empty: tlsrpt@<first server.domains>.",
        "",
    )
    organization: str = _help(
        'organization-name of the reports we send (RFC 8460 section 4.4); empty: the first domain.', ""
    )
    contact: str = _help("contact-info of the reports we send; empty: postmaster@<first domain>.", "")
    send_hour: int = _help("UTC hour after which the previous UTC day's reports are sent.", 1)

    def __post_init__(self) -> None:
        if not 0 <= self.send_hour <= 23:
            raise ValueError("tlsrpt.send_hour must be between 0 and 23")
        if self.rua and "@" not in self.rua:
            raise ValueError(f"tlsrpt.rua must be a mail address (mailto:), got {self.rua!r}")


def tlsrpt_address(settings: TlsRptSettings, domains: list[str]) -> str:
    """Where reports to us go (``tlsrpt.rua``, default ``tlsrpt@<first domain>``)."""
    if settings.rua:
        return settings.rua.removeprefix("mailto:").strip().lower()
    return f"tlsrpt@{domains[0].lower()}" if domains else ""

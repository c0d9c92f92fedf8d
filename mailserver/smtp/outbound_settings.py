"""Settings of outbound delivery (the ``[outbound]`` config section).

Kept apart from ``mailserver/config.py`` (which composes it) and free of
imports from it, so the config module can import this one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from storage.settings import setting


@dataclass(frozen=True, slots=True)
class OutboundSettings:
    spool_dir: str = setting("Directory of queued message files; empty: <data_dir>/queue.", "")
    port: int = setting("TCP port of remote mail exchangers (25; tests use another).", 25)
    static_routes: dict[str, str] = setting(
        'Next hop per recipient domain, overriding MX lookup, e.g. { "example.org" = "10.0.0.5:25" }.',
        {},
    )
    relay_host: str = setting(
        "Smarthost as host:port: when set, all remote mail goes there instead of to MX hosts.", ""
    )
    relay_username: str = setting("User name for AUTH at the smarthost; empty: no AUTH.", "")
    relay_password_file: str = setting(
        "File whose first line is the smarthost password (kept out of this file).", ""
    )
    require_tls: list[str] = setting(
        "Recipient domains that must never get mail over an unencrypted connection\n"
        "(STARTTLS is tried with every host anyway; certificates are not verified, RFC 7435,\n"
        "unless the domain publishes MTA-STS or DANE).",
        [],
    )
    ca_file: str = setting(
        "PEM file of the certificate authorities trusted for MTA-STS (RFC 8461): the policy\n"
        "host's HTTPS certificate and the MX hosts' certificates (and https TLS-RPT destinations);\n"
        "empty: the system's trust store.",
        "",
    )
    mta_sts: bool = setting(
        "Apply the MTA-STS policies of recipient domains (RFC 8461): look up _mta-sts TXT,\n"
        "fetch and cache the policy, and in enforce mode deliver only over valid TLS to listed MX hosts.",
        True,
    )
    mta_sts_port: int = setting(
        "TCP port of https://mta-sts.<domain>/ (443; tests point it at a loopback server).", 443
    )
    mta_sts_timeout: float = setting(
        "Seconds fetching one MTA-STS policy may take in all (at most 64 KiB are read).", 10.0
    )
    timeout: float = setting("Seconds one SMTP command to a remote host may take.", 60.0)
    max_concurrent: int = setting("Most messages delivered at the same time.", 20)
    retry_base: float = setting(
        "Seconds before the first retry after a temporary failure; doubled on every further one.", 300.0
    )
    retry_cap: float = setting("Longest wait between two tries, in seconds.", 3600.0)
    poll_interval: float = setting(
        "Longest time, in seconds, the worker sleeps before looking at the queue again\n"
        "(it also picks up `mailserver queue` changes then).",
        30.0,
    )
    lease: float = setting(
        "Seconds a node's claim on a queued message lasts while it delivers it (renewed every\n"
        "poll_interval at most, so keep it several times larger): with several nodes on one\n"
        "database, a message whose node died is taken over by another once the lease ends.",
        600.0,
    )
    max_queue_days: float = setting(
        "Days a message may wait for a temporary failure to clear before it is returned to the sender.",
        5.0,
    )
    delay_warning_hours: float = setting(
        "Hours after which the sender gets one delay notice (RFC 3464 action=delayed); 0: never.", 4.0
    )
    max_messages_per_hour: int = setting(
        "Messages one authenticated user may submit per hour (450 4.7.1 beyond); 0: unlimited.", 200
    )
    max_recipients_per_hour: int = setting(
        "Recipients one authenticated user may address per hour (450 4.7.1 beyond); 0: unlimited.", 2000
    )


def spool_path(settings: OutboundSettings, data_dir: Path) -> Path:
    """Where queued message files live."""
    return Path(settings.spool_dir) if settings.spool_dir else data_dir / "queue"


@dataclass(frozen=True, slots=True)
class MtaStsSettings:
    """Our own MTA-STS policy (RFC 8461), served by the portal for every local domain."""

    mode: str = setting(
        'Policy mode published at https://mta-sts.<domain>/.well-known/mta-sts.txt: "enforce",\n'
        '"testing" or "none" (RFC 8461 section 5); the portal must answer for mta-sts.<domain>\n'
        "with a certificate valid for that name.",
        "testing",
    )
    max_age: int = setting(
        "Seconds senders may cache the policy (RFC 8461 section 3.2; at most a year).", 604800
    )
    mx: list[str] = setting(
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

    send_reports: bool = setting(
        "Send a daily report of outbound TLS results to the rua (mailto: or https:) of each recipient\n"
        "domain's _smtp._tls TXT record (RFC 8460 section 3); `mailserver report tlsrpt --send-now`\n"
        "sends at once.",
        True,
    )
    rua: str = setting(
        "Our address for reports from others, published in _smtp._tls (mailto:); mail to it is\n"
        "parsed and listed in /admin/tlsrpt and `mailserver report tlsrpt --received`; it needs no\n"
        "mailbox. Empty: tlsrpt@<first server.domains>.",
        "",
    )
    organization: str = setting(
        'organization-name of the reports we send (RFC 8460 section 4.4); empty: the first domain.', ""
    )
    contact: str = setting("contact-info of the reports we send; empty: postmaster@<first domain>.", "")
    send_hour: int = setting("UTC hour after which the previous UTC day's reports are sent.", 1)

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

"""Settings of the operations features: ``[backup]``, ``[metrics]``, ``[report]`` and ``[dmarc]``."""

from __future__ import annotations

from dataclasses import dataclass

from storage.settings import setting


@dataclass(frozen=True, slots=True)
class BackupSettings:
    dir: str = setting(
        "Where scheduled backups are written, one sub-directory per run. Empty: <data_dir>/backups.", ""
    )
    schedule: str = setting(
        'When the server backs itself up: "daily HH:MM" (server local time) or "" for never\n'
        "(Decision 70/2009 Điều 7 khoản 1: periodic backups of the system's data).",
        "",
    )
    keep: int = setting("How many scheduled backups to keep; older ones are deleted after a new one.", 7)
    incremental: bool = setting(
        "Scheduled backups hard-link message files unchanged since the previous backup.", True
    )
    passphrase_file: str = setting(
        "File holding the passphrase that encrypts private keys (CA, DKIM, TLS) inside backups;\n"
        "the MAILSERVER_BACKUP_PASSPHRASE environment variable also works. Empty: keys are stored\n"
        "unencrypted (mode 0600).",
        "",
    )


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    listen: str = setting(
        'host:port of the Prometheus metrics endpoint (GET /metrics). Empty: no endpoint.', ""
    )


@dataclass(frozen=True, slots=True)
class ReportSettings:
    utc_offset: str = setting(
        "Offset of the province's local time, used to cut days for reports and checks.", "+07:00"
    )
    min_checks: int = setting(
        "Times an agency mailbox must be opened per working day (Decision 70/2009 Điều 6 khoản 6).", 2
    )
    check_notice: bool = setting(
        "Mail the agency head a notice when the agency mailbox was not checked often enough.", False
    )
    check_notice_time: str = setting(
        "Local time (HH:MM) after which the day's check notice is sent, on working days.", "17:30"
    )


@dataclass(frozen=True, slots=True)
class DmarcSettings:
    send_reports: bool = setting(
        "Send DMARC aggregate reports (RFC 7489 section 7.2) to the rua of the domains\n"
        "that ask for them, once per their reporting interval (ri, at most daily).",
        True,
    )
    report_org: str = setting(
        "org_name in the reports we send and Submitter in their subject; empty: the first\n"
        "of server.domains.",
        "",
    )
    report_from: str = setting(
        "From and envelope sender of the reports we send (also the report's email);\n"
        "empty: noreply-dmarc@<first of server.domains>.",
        "",
    )
    rua: str = setting(
        "Our own mailbox (not an alias) for aggregate reports about our domains: the\n"
        "rua that `dns records` prints; reports delivered to it are parsed and shown\n"
        "on /admin/dmarc. Empty: postmaster@ each domain in DNS, nothing parsed.",
        "",
    )
    check_interval: float = setting("Seconds between checks for reports that are due.", 3600.0)
    flush_interval: float = setting(
        "Seconds evaluations are counted in memory before they are written in one batch.",
        10.0,
    )

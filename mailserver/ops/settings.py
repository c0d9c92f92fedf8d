"""Settings of the operations features: ``[backup]``, ``[metrics]`` and ``[report]``."""

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

"""Settings of the directory and of account passwords (``[directory]``, ``[accounts]``)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class DirectorySettings:
    domain: str = field(
        default="",
        metadata={
            "help": "Domain of the addresses the directory issues. Empty: the first of server.domains."
        },
    )
    offboard_grace_days: int = field(
        default=90,
        metadata={
            "help": "Days the mail of an offboarded person is kept (login disabled) before\n"
            "`mailserver directory purge` deletes the mailbox; the address stays retired forever."
        },
    )
    archive_dir: str = field(
        default="",
        metadata={
            "help": "Where offboarding writes the mail archive for the agency. Empty: <data_dir>/archives."
        },
    )
    reserved_local_parts: list[str] = field(
        default_factory=list,
        metadata={"help": "Local parts never issued to a person, in addition to the built-in role names."},
    )


@dataclass(frozen=True, slots=True)
class AccountsSettings:
    max_password_age_days: int = field(
        default=180,
        metadata={
            "help": "Days after which a password has expired and must be changed before login\n"
            "(Decision 70/2009 Điều 9 khoản 1: change passwords regularly). 0: never."
        },
    )
    password_warning_days: int = field(
        default=14, metadata={"help": "Days before expiry that a warning is delivered to the INBOX."}
    )
    password_history: int = field(
        default=5, metadata={"help": "A new password may not be one of this many previous ones."}
    )
    min_password_length: int = field(default=10, metadata={"help": "Shortest password accepted."})
    warning_interval: int = field(
        default=3600, metadata={"help": "Seconds between two runs of the expiry-warning task of `serve`."}
    )
    require_app_passwords: bool = field(
        default=False,
        metadata={
            "help": "IMAP and SMTP accept app passwords only (`mailserver account app-password add`);\n"
            "the main password then signs in to the web portal only."
        },
    )

"""Settings of the directory and of account passwords (``[directory]``, ``[accounts]``)."""

from __future__ import annotations

from dataclasses import dataclass

from storage.settings import setting


@dataclass(frozen=True, slots=True)
class DirectorySettings:
    domain: str = setting(
        "Domain of the addresses the directory issues. Empty: the first of server.domains.",
        "",
    )
    offboard_grace_days: int = setting(
        "Days the mail of an offboarded person is kept (login disabled) before\n"
        "`mailserver directory purge` deletes the mailbox; the address stays retired forever.",
        90,
    )
    archive_dir: str = setting(
        "Where offboarding writes the mail archive for the agency. Empty: <data_dir>/archives.",
        "",
    )
    reserved_local_parts: list[str] = setting(
        "Local parts never issued to a person, in addition to the built-in role names.",
        [],
    )


@dataclass(frozen=True, slots=True)
class AccountsSettings:
    max_password_age_days: int = setting(
        "Days after which a password has expired and must be changed before login\n"
        "(Decision 70/2009 Điều 9 khoản 1: change passwords regularly). 0: never.",
        180,
    )
    password_warning_days: int = setting("Days before expiry that a warning is delivered to the INBOX.", 14)
    password_history: int = setting("A new password may not be one of this many previous ones.", 5)
    min_password_length: int = setting("Shortest password accepted.", 10)
    warning_interval: int = setting("Seconds between two runs of the expiry-warning task of `serve`.", 3600)
    require_app_passwords: bool = setting(
        "IMAP and SMTP accept app passwords only (`mailserver account app-password add`);\n"
        "the main password then signs in to the web portal only.",
        False,
    )

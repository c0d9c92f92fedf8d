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
        "(STARTTLS is tried with every host anyway; certificates are not verified, RFC 7435).",
        [],
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

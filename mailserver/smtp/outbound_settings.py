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
        "(STARTTLS is tried with every host anyway; certificates are not verified, RFC 7435).",
        [],
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

"""Logging set-up: text or JSON lines, a per-session id, and no secrets.

``server.log_format = "json"`` writes one JSON object per line (``ts``,
``level``, ``logger``, ``msg``, ``session``). The session id is the one the
protocol front ends already put at the head of their messages (``smtp <sid>:``,
``imap <id>:``, ``policy <sid>:``), or what a caller set in ``SESSION``; SMTP
and policy lines of one transaction therefore share an id.

Never a password or a message body: aiosmtpd's wire-level debug logging (every
command line, AUTH exchanges and DATA lines included) is switched off whatever
the level, and a filter on the handler masks anything that still looks like
credentials (``AUTH PLAIN <b64>``, IMAP ``LOGIN user password``).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Final, TextIO

from mailserver.config import Config, ConfigError

SESSION: Final[contextvars.ContextVar[str | None]] = contextvars.ContextVar("mail_session", default=None)
"""Session id for log lines written outside the front ends' own prefixes."""

_PREFIX: Final = re.compile(r"^(?:smtp|imap|policy|submission|web|queue) ([\w.-]+):")
_SECRETS: Final = (
    (re.compile(r"(?i)(\bAUTH\s+(?:PLAIN|LOGIN|XOAUTH2|CRAM-MD5)\s+)\S+"), r"\1***"),
    (re.compile(r"(?i)(\bLOGIN\s+(?:\"[^\"]*\"|\S+)\s+)(?:\"(?:[^\"\\]|\\.)*\"|\{\d+\+?\}|\S+)"), r"\1***"),
    (re.compile(r"(?i)(password[\"']?\s*[:=]\s*)\S+"), r"\1***"),
)
_WIRE_LOGGERS: Final = ("mail.log",)


def redact(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class RedactFilter(logging.Filter):
    """Formats the message once, masked, so no handler sees the raw arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        return True


def session_of(record: logging.LogRecord) -> str | None:
    explicit = getattr(record, "session", None) or SESSION.get()
    if explicit:
        return str(explicit)
    match = _PREFIX.match(record.getMessage())
    return match.group(1) if match else None


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        session = session_of(record)
        if session:
            data["session"] = session
        if record.exc_info:
            data["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(data, ensure_ascii=False)


def configure_logging(config: Config, stream: TextIO | None = None) -> None:
    settings = config.server
    fmt = settings.log_format.lower()
    if fmt not in ("text", "json"):
        raise ConfigError(f'{config.source}: server.log_format must be "text" or "json", got {fmt!r}')
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RedactFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, settings.log_level.upper(), logging.INFO))
    for name in _WIRE_LOGGERS:
        # aiosmtpd logs raw command lines (AUTH credentials) and DATA lines (bodies) at DEBUG.
        logging.getLogger(name).setLevel(logging.INFO)


def use_uvloop() -> bool:
    """Run the event loop on uvloop when it is installed (``mailserver serve``)."""
    try:
        import uvloop  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return False
    uvloop.install()
    return True

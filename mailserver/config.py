"""Configuration: TOML file -> frozen settings dataclasses.

Every section is a frozen dataclass whose fields carry their help text in
``metadata["help"]``; ``conf/mailserver.toml`` is generated from them
(``python -m mailserver.config > conf/mailserver.toml``) and a test fails if the
committed file drifts. Unknown keys and wrong types are ``ConfigError``s naming
the key and the file, so start-up never ends in a traceback.

Paths left empty default to places under ``server.data_dir``, so a config that
sets only ``data_dir`` is complete.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from mailserver.directory.settings import AccountsSettings, DirectorySettings
from mailserver.managesieve.settings import ManageSieveSettings
from mailserver.ops.settings import BackupSettings, DmarcSettings, MetricsSettings, ReportSettings
from mailserver.search.settings import SearchSettings
from mailserver.sieve.settings import SieveSettings
from mailserver.smtp.outbound_settings import MtaStsSettings, OutboundSettings, TlsRptSettings
from mailserver.web.settings import WebSettings
from pki.settings import ArcSettings, DkimSettings, PkiSettings
from policy.settings import DnsSettings, PolicySettings
from storage.settings import RetentionSettings, StorageSettings, setting

ENV_CONFIG: Final = "MAILSERVER_CONFIG"
ENV_STORAGE_URL: Final = "MAILSERVER_STORAGE_URL"
"""Overrides ``storage.url`` (containers pass the PostgreSQL URL, password included, this way)."""


class ConfigError(Exception):
    """A configuration problem, phrased for the operator (file and key named)."""




@dataclass(frozen=True, slots=True)
class ServerSettings:
    hostname: str = setting(
        "Name this server gives in greetings and Received headers.", "mail.dongnai.gov.vn"
    )
    domains: list[str] = setting("Local mail domains: mail for these is delivered here.", ["dongnai.gov.vn"])
    data_dir: str = setting(
        "Directory holding the database, Maildir, keys and certificates unless set below.", "./var"
    )
    log_level: str = setting("Logging level: DEBUG, INFO, WARNING or ERROR.", "INFO")
    log_format: str = setting(
        'Log line format: "text", or "json" (one JSON object per line with a per-session id).', "text"
    )
    postmaster: list[str] = setting(
        "Where mail to postmaster@ and abuse@ of every local domain goes (RFC 5321 section 4.5.1,\n"
        "RFC 2142), unless an account of that name exists. Empty: the web.operators addresses;\n"
        "without operators, the first account created.",
        [],
    )
    public_imap: str = setting(
        "host:port users' mail clients reach IMAP over implicit TLS at (RFC 8314), as published by\n"
        "autoconfiguration (/setup, Thunderbird, Outlook, Apple) and `mailserver dns records`.\n"
        "Empty: <hostname>:993.",
        "",
    )
    public_submissions: str = setting(
        "host:port of submission over implicit TLS as clients reach it (RFC 8314). Empty: <hostname>:465.",
        "",
    )
    public_submission: str = setting(
        "host:port of submission with STARTTLS as clients reach it (RFC 6409). Empty: <hostname>:587.",
        "",
    )
    trusted_proxies: list[str] = setting(
        "Networks (CIDR) of load balancers allowed to send PROXY protocol headers on listeners with\n"
        "proxy_protocol = true; the address they name drives throttling, relay decisions, logs and\n"
        "Received. Empty: nobody (a proxy_protocol listener then refuses every connection).",
        [],
    )


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    listen: str = setting("host:port of the inbound MX listener (SMTP, RFC 5321).", "127.0.0.1:2525")
    max_message_size: int = setting("Largest message accepted, in octets (SIZE, RFC 1870).", 33554432)
    max_recipients: int = setting("Most RCPT TO commands accepted in one transaction.", 100)
    max_hops: int = setting(
        "Most Received fields a message may carry before it is refused as a routing loop "
        "(554 5.4.6, RFC 5321 section 6.3). 0: no limit.",
        100,
    )
    relay_networks: list[str] = setting(
        "Client networks (CIDR) allowed to relay without authentication. Empty: none, loopback included.",
        [],
    )
    proxy_protocol: bool = setting(
        "Every connection to the MX listener starts with a PROXY protocol header (HAProxy v1\n"
        "or v2) from a load balancer in server.trusted_proxies, naming the real client; others are refused.",
        False,
    )
    timeout: int = setting("Seconds of client silence before the session is closed.", 300)
    max_connections: int = setting(
        "Sessions open at once on the MX listener, and again on the submission listeners together;\n"
        "one more is answered 421 4.7.0 and closed. 0: no limit.",
        1000,
    )
    max_connections_per_ip: int = setting(
        "Sessions open at once from one client address on each of those services (Postfix anvil's\n"
        "default); relay_networks clients are exempt. 0: no limit. Counted across the SMTP worker\n"
        "processes (smtp.processes) together.",
        50,
    )
    soft_error_limit: int = setting(
        "Refused recipients in one session after which every reply is delayed (1 s more per\n"
        "refusal, at most 10 s), against address harvesting (Postfix smtpd_soft_error_limit). 0: never.",
        10,
    )
    hard_error_limit: int = setting(
        "Refused recipients in one session at which the client gets 421 4.7.0 and is disconnected\n"
        "(Postfix smtpd_hard_error_limit). 0: never.",
        20,
    )
    processes: int = setting(
        "Processes serving the MX listener (the main one and workers binding the same address with\n"
        "SO_REUSEPORT; deliveries committed by the main process on SQLite). 0: the CPU count, the\n"
        "workers started while the main process has 8 sessions at once, stopped after 60 s without.\n"
        "max_connections and max_data_in_memory are shared out among them.",
        0,
    )
    max_data_in_memory: int = setting(
        "Octets of received messages larger than 256 KiB that the sessions of a listener may hold in\n"
        "memory at once to check and store them; others wait, spooled on disk. DATA itself is always\n"
        "spooled to <data_dir>/tmp as it arrives. A message larger than this is taken alone.",
        67108864,
    )


@dataclass(frozen=True, slots=True)
class SubmissionSettings:
    listen: str = setting("host:port of message submission with STARTTLS (RFC 6409).", "127.0.0.1:2587")
    tls_listen: str = setting("host:port of submission over implicit TLS (RFC 8314).", "127.0.0.1:2465")
    allow_plaintext_auth: bool = setting(
        "Allow AUTH without TLS, but only for clients on loopback (tests, local scripts).", False
    )
    proxy_protocol: bool = setting(
        "Every connection to the submission listeners starts with a PROXY protocol header (HAProxy v1\n"
        "or v2) from a load balancer in server.trusted_proxies, naming the real client; others are refused.",
        False,
    )


@dataclass(frozen=True, slots=True)
class ImapSettings:
    listen: str = setting("host:port of IMAP with STARTTLS (RFC 9051).", "127.0.0.1:2143")
    tls_listen: str = setting("host:port of IMAP over implicit TLS (RFC 8314).", "127.0.0.1:2993")
    allow_plaintext_login: bool = setting(
        "Allow LOGIN/AUTHENTICATE without TLS from non-loopback clients (LOGINDISABLED otherwise).", False
    )
    proxy_protocol: bool = setting(
        "Every connection to the IMAP listeners starts with a PROXY protocol header (HAProxy v1\n"
        "or v2) from a load balancer in server.trusted_proxies, naming the real client; others are refused.",
        False,
    )
    max_literal: int = setting("Largest literal a client may send, in octets (APPEND size limit).", 67108864)
    max_line: int = setting("Longest command line outside literals, in octets.", 65536)
    idle_timeout: int = setting(
        "Seconds an IDLE may last before the server ends it (RFC 9051: >= 30 min).", 1800
    )
    timeout: int = setting("Seconds of silence before an unauthenticated session is closed.", 60)
    autologout: int = setting("Seconds of silence before an authenticated session is closed.", 1800)
    access_cache: float = setting(
        "Seconds an IMAP session reuses its account state and shared-mailbox rights before asking "
        "the directory again (how soon an offboarding or revoked delegation reaches open sessions).",
        2.0,
    )
    max_preauth_literal: int = setting(
        "Largest literal accepted before login, in octets (Dovecot's login process allows 8 KiB): a\n"
        "larger synchronising literal gets BAD [TOOBIG], a larger LITERAL+ one BAD [TOOBIG] and * BYE.",
        8192,
    )
    login_timeout: int = setting(
        "Seconds from connect to a successful login, whatever the client sends meanwhile; then * BYE.", 60
    )
    command_timeout: int = setting(
        "Seconds a client has to send a whole command once its first octet arrived, plus the time its\n"
        "literals take at min_literal_rate; then * BYE (a command dripped byte by byte is cut).",
        60,
    )
    min_literal_rate: int = setting(
        "Octets per second a client sends a literal at, at least: an APPEND of n octets may take\n"
        "command_timeout + n / min_literal_rate seconds.",
        16384,
    )
    max_connections: int = setting("IMAP connections open at once; more get * BYE at connect.", 5000)
    max_connections_per_ip: int = setting(
        "IMAP connections open at once from one client address; more get * BYE at connect. Raise it\n"
        "for an office whose staff reach the server through one NAT address (a mail client opens up to 5).",
        200,
    )
    max_connections_per_user: int = setting(
        "Logged-in IMAP connections of one account at once (Dovecot's mail_max_userip_connections is\n"
        "10 per address); one more LOGIN/AUTHENTICATE gets NO [LIMIT].",
        20,
    )
    max_search_keys: int = setting(
        "Search keys one SEARCH may hold (OR, NOT and parentheses included); more: NO [LIMIT].", 200
    )
    search_time_budget: float = setting(
        "Seconds one SEARCH may spend reading messages (BODY, TEXT, header keys SQL cannot answer);\n"
        "beyond: NO [LIMIT], so that one search cannot hold a core for long.",
        30.0,
    )


@dataclass(frozen=True, slots=True)
class TlsSettings:
    cert: str = setting(
        "PEM certificate chain for every TLS listener; empty: <data_dir>/tls/cert.pem, "
        "self-signed on first start.",
        "",
    )
    key: str = setting("PEM private key; empty: <data_dir>/tls/key.pem.", "")


@dataclass(frozen=True, slots=True)
class AuthSettings:
    failure_delay: float = setting(
        "Seconds to wait before answering a failed or refused login (also a wrong portal TOTP code).", 1.0
    )
    max_failures: int = setting(
        "Login attempts for one account from one client address in failure_window, counted before the\n"
        "password is checked (concurrent attempts included), before that pair must wait `lockout`.\n"
        "Attempts beyond, while some are still under way, wait for one to end rather than being refused.\n"
        "The account itself is never locked for other addresses.",
        10,
    )
    max_failures_per_ip: int = setting(
        "Failed logins from one client address, whatever the accounts, in failure_window before the\n"
        "address must wait `lockout` (password spraying); a successful login does not reset it.",
        50,
    )
    failure_window: int = setting("Seconds over which failed logins are counted.", 600)
    lockout: int = setting(
        "Seconds a throttled pair or address waits; doubled at each further lockout (exponential back-off).",
        300,
    )
    max_lockout: int = setting("Longest wait the back-off reaches, in seconds.", 86400)
    max_concurrent_per_ip: int = setting(
        "Password checks (Argon2) running at once for one client address.", 2
    )
    max_queued_per_ip: int = setting(
        "Password checks of one client address waiting their turn; beyond, a login is refused at once\n"
        "(try again later). Waiting checks are served round-robin over client addresses.",
        16,
    )
    max_concurrent_per_account: int = setting(
        "Password checks running at once for one account (concurrent logins with the same password\n"
        "share one check).",
        1,
    )
    cache_ttl: int = setting(
        "Seconds a successfully verified password is remembered (a keyed hash, never the password),\n"
        "so the account's next login with the same password skips Argon2; a changed password\n"
        "never matches. 0: verify every login.",
        3600,
    )


@dataclass(frozen=True, slots=True)
class Config:
    server: ServerSettings = field(default_factory=ServerSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    submission: SubmissionSettings = field(default_factory=SubmissionSettings)
    imap: ImapSettings = field(default_factory=ImapSettings)
    managesieve: ManageSieveSettings = field(default_factory=ManageSieveSettings)
    sieve: SieveSettings = field(default_factory=SieveSettings)
    tls: TlsSettings = field(default_factory=TlsSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    dns: DnsSettings = field(default_factory=DnsSettings)
    dkim: DkimSettings = field(default_factory=DkimSettings)
    outbound: OutboundSettings = field(default_factory=OutboundSettings)
    mta_sts: MtaStsSettings = field(default_factory=MtaStsSettings)
    tlsrpt: TlsRptSettings = field(default_factory=TlsRptSettings)
    directory: DirectorySettings = field(default_factory=DirectorySettings)
    accounts: AccountsSettings = field(default_factory=AccountsSettings)
    policy: PolicySettings = field(default_factory=PolicySettings)
    pki: PkiSettings = field(default_factory=PkiSettings)
    web: WebSettings = field(default_factory=WebSettings)
    backup: BackupSettings = field(default_factory=BackupSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    report: ReportSettings = field(default_factory=ReportSettings)
    dmarc: DmarcSettings = field(default_factory=DmarcSettings)
    arc: ArcSettings = field(default_factory=ArcSettings)
    search: SearchSettings = field(default_factory=SearchSettings)
    source: str = field(default="(built-in defaults)", metadata={"internal": True})

    # -- derived paths: empty settings default to places under data_dir ---------
    @property
    def data_dir(self) -> Path:
        return Path(self.server.data_dir)

    @property
    def storage_url(self) -> str:
        if self.storage.url:
            return self.storage.url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'mailserver.db').resolve()}"

    @property
    def maildir(self) -> Path:
        return Path(self.storage.maildir) if self.storage.maildir else self.data_dir / "maildir"

    @property
    def tls_cert(self) -> Path:
        return Path(self.tls.cert) if self.tls.cert else self.data_dir / "tls" / "cert.pem"

    @property
    def tls_key(self) -> Path:
        return Path(self.tls.key) if self.tls.key else self.data_dir / "tls" / "key.pem"

    def is_local_domain(self, domain: str) -> bool:
        return domain.lower().rstrip(".") in {d.lower() for d in self.server.domains}


def parse_hostport(value: str) -> tuple[str, int]:
    """Split ``host:port`` (``[v6]:port`` too); raises ValueError."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected host:port, got {value!r}")
    return host.strip("[]"), int(port)


SECTIONS: Final[dict[str, type[Any]]] = {
    f.name: typing.get_type_hints(Config)[f.name]
    for f in dataclasses.fields(Config)
    if not f.metadata.get("internal")
}

_HOSTPORT_KEYS: Final = {
    "listen", "tls_listen", "public_imap", "public_submissions", "public_submission",
}


def _type_ok(expected: Any, value: Any) -> bool:
    origin = typing.get_origin(expected)
    if origin in (types.UnionType, typing.Union):
        return any(_type_ok(arg, value) for arg in typing.get_args(expected))
    if expected is type(None):
        return value is None
    if origin is list:
        (item,) = typing.get_args(expected)
        return isinstance(value, list) and all(_type_ok(item, v) for v in value)
    if origin is dict:
        key_t, val_t = typing.get_args(expected)
        return isinstance(value, dict) and all(
            _type_ok(key_t, k) and _type_ok(val_t, v) for k, v in value.items()
        )
    if expected is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


def _type_name(expected: Any) -> str:
    return str(expected).replace("typing.", "") if typing.get_origin(expected) else expected.__name__


def from_mapping(data: dict[str, Any], source: str) -> Config:
    """Validate a parsed TOML document and build the Config."""
    sections: dict[str, Any] = {}
    for name, value in data.items():
        cls = SECTIONS.get(name)
        if cls is None:
            raise ConfigError(f"{source}: unknown section [{name}] (known: {', '.join(SECTIONS)})")
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: [{name}] must be a table")
        hints = typing.get_type_hints(cls)
        kwargs: dict[str, Any] = {}
        for key, item in value.items():
            if key not in hints:
                raise ConfigError(f"{source}: unknown key {name}.{key}")
            if not _type_ok(hints[key], item):
                raise ConfigError(
                    f"{source}: {name}.{key} must be {_type_name(hints[key])}, got {type(item).__name__}"
                )
            if key in _HOSTPORT_KEYS and item:
                try:
                    parse_hostport(item)
                except ValueError as exc:
                    raise ConfigError(f"{source}: {name}.{key}: {exc}") from None
            kwargs[key] = float(item) if hints[key] is float else item
        try:
            sections[name] = cls(**kwargs)
        except ValueError as exc:  # a section's own validation (e.g. [policy] options)
            raise ConfigError(f"{source}: {exc}") from None
    config = Config(**sections, source=source)
    if not config.server.domains:
        raise ConfigError(f"{source}: server.domains must name at least one domain")
    return config


def load(path: str | os.PathLike[str] | None = None) -> Config:
    """Load ``path``, else ``$MAILSERVER_CONFIG``, else the built-in defaults."""
    chosen = path if path is not None else os.environ.get(ENV_CONFIG) or None
    if chosen is None:
        return _storage_env(Config(), "(built-in defaults)")
    source = str(chosen)
    try:
        with open(chosen, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{source}: no such configuration file") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    return _storage_env(from_mapping(data, source), source)


def _storage_env(config: Config, source: str) -> Config:
    """``$MAILSERVER_STORAGE_URL`` replaces ``storage.url``; otherwise ``${NAME}`` in
    ``storage.url`` is replaced by that environment variable (an unset one is an error)."""
    override = os.environ.get(ENV_STORAGE_URL)
    url = override if override else config.storage.url

    def expand(match: re.Match[str]) -> str:
        value = os.environ.get(match.group(1))
        if value is None:
            raise ConfigError(f"{source}: storage.url uses ${{{match.group(1)}}}, which is not set")
        return value

    if not override:
        url = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", expand, url)
    if url == config.storage.url:
        return config
    return dataclasses.replace(config, storage=dataclasses.replace(config.storage, url=url))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(type(value))


def render_example() -> str:
    """The documented example config: every key with its help and default."""
    lines = [
        "# Example configuration of the Dong Nai mail server, generated from mailserver/config.py",
        "# (python -m mailserver.config > conf/mailserver.toml). Every key is shown with its default.",
        "# Select a file with `mailserver --config FILE` or the MAILSERVER_CONFIG environment variable.",
    ]
    for name, cls in SECTIONS.items():
        lines += ["", f"[{name}]"]
        defaults = cls()
        for f in dataclasses.fields(cls):
            default = getattr(defaults, f.name)
            for help_line in f.metadata["help"].split("\n"):
                lines.append(f"# {help_line}")
            lines.append(f"{f.name} = {_toml_value(default)}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_example(), end="")

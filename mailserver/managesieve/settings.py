"""Settings of the ManageSieve service (``[managesieve]``, RFC 5804)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ManageSieveSettings:
    enabled: bool = field(
        default=True, metadata={"help": "Serve ManageSieve (RFC 5804): users upload their Sieve scripts."}
    )
    listen: str = field(
        default="127.0.0.1:4190",
        metadata={"help": "host:port of ManageSieve with STARTTLS (RFC 5804; the standard port is 4190)."},
    )
    proxy_protocol: bool = field(
        default=False,
        metadata={
            "help": "Every connection starts with a PROXY protocol header (HAProxy v1 or v2) from a load\n"
            "balancer in server.trusted_proxies, naming the real client; others are refused."
        },
    )
    allow_plaintext_auth: bool = field(
        default=False,
        metadata={
            "help": "Allow AUTHENTICATE without TLS from non-loopback clients (as\n"
            "imap.allow_plaintext_login; loopback clients may always)."
        },
    )
    max_line: int = field(
        default=8192, metadata={"help": "Longest command line outside literals, in octets; longer: BYE."}
    )
    max_literal: int = field(
        default=1048576,
        metadata={
            "help": "Largest literal accepted after login, in octets (beyond: BYE). Scripts are limited\n"
            "further by sieve.max_script_size (NO (QUOTA/MAXSIZE))."
        },
    )
    max_preauth_literal: int = field(
        default=8192, metadata={"help": "Largest literal accepted before login (SASL data), in octets."}
    )
    timeout: int = field(
        default=60, metadata={"help": "Seconds of silence before an unauthenticated session is closed."}
    )
    login_timeout: int = field(
        default=120,
        metadata={"help": "Seconds from connect to a successful login, whatever is sent; then BYE."},
    )
    command_timeout: int = field(
        default=120,
        metadata={
            "help": "Seconds a client has to send a whole command (its literals included) once its first\n"
            "octet arrived; then BYE (a command dripped byte by byte is cut)."
        },
    )
    max_connections: int = field(
        default=500, metadata={"help": "ManageSieve connections open at once; more get BYE at connect."}
    )
    autologout: int = field(
        default=1800, metadata={"help": "Seconds of silence before an authenticated session is closed."}
    )

"""Settings of the ManageSieve service (``[managesieve]``, RFC 5804)."""

from __future__ import annotations

from dataclasses import dataclass

from storage.settings import setting


@dataclass(frozen=True, slots=True)
class ManageSieveSettings:
    enabled: bool = setting("Serve ManageSieve (RFC 5804): users upload their Sieve scripts.", True)
    listen: str = setting(
        "host:port of ManageSieve with STARTTLS (RFC 5804; the standard port is 4190).", "127.0.0.1:4190"
    )
    proxy_protocol: bool = setting(
        "Every connection starts with a PROXY protocol header (HAProxy v1 or v2) from a load\n"
        "balancer in server.trusted_proxies, naming the real client; others are refused.",
        False,
    )
    allow_plaintext_auth: bool = setting(
        "Allow AUTHENTICATE without TLS from non-loopback clients (as\n"
        "imap.allow_plaintext_login; loopback clients may always).",
        False,
    )
    max_line: int = setting("Longest command line outside literals, in octets; longer: BYE.", 8192)
    max_literal: int = setting(
        "Largest literal accepted after login, in octets (beyond: BYE). Scripts are limited\n"
        "further by sieve.max_script_size (NO (QUOTA/MAXSIZE)).",
        1048576,
    )
    max_preauth_literal: int = setting("Largest literal accepted before login (SASL data), in octets.", 8192)
    timeout: int = setting("Seconds of silence before an unauthenticated session is closed.", 60)
    login_timeout: int = setting(
        "Seconds from connect to a successful login, whatever is sent; then BYE.", 120
    )
    command_timeout: int = setting(
        "Seconds a client has to send a whole command (its literals included) once its first\n"
        "octet arrived; then BYE (a command dripped byte by byte is cut).",
        120,
    )
    max_connections: int = setting("ManageSieve connections open at once; more get BYE at connect.", 500)
    autologout: int = setting("Seconds of silence before an authenticated session is closed.", 1800)

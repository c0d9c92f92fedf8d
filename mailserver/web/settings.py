"""Settings of the web portal (``[web]``)."""

from __future__ import annotations

from dataclasses import dataclass

from storage.settings import setting


@dataclass(frozen=True, slots=True)
class WebSettings:
    enabled: bool = setting("Serve the web portal (/password, /directory, /admin).", True)
    listen: str = setting("host:port of the web portal (HTTP/1.1).", "127.0.0.1:8080")
    proxy_protocol: bool = setting(
        "Every connection to the portal starts with a PROXY protocol header (HAProxy v1 or v2)\n"
        "from a load balancer in server.trusted_proxies, naming the real client; others are refused.",
        False,
    )
    tls: bool = setting(
        "Serve HTTPS with the server certificate ([tls]); session cookies are then Secure.\n"
        "Without it, put the portal behind a TLS-terminating proxy before exposing it.",
        False,
    )
    publish_persons: bool = setting(
        "Also publish personal addresses in /directory (Decision 70/2009 Điều 5 khoản 5:\n"
        "agencies publish their address and those of their competent officials). Default: agencies only.",
        False,
    )
    publish_heads: bool = setting(
        "Publish each agency's competent officials in /directory, listed with their agency:\n"
        "the head (agency set-head) and the deputies (position beginning \"Phó\"), Decision 70/2009\n"
        "Điều 5 khoản 5. publish_persons = true publishes everyone instead.",
        True,
    )
    public_url: str = setting(
        "The portal's address as users reach it (e.g. https://mail.dongnai.gov.vn), named in\n"
        "the texts that send a user to change a password (<public_url>/password). Empty:\n"
        "https://<server.hostname>.",
        "",
    )
    operators: list[str] = setting(
        "Mail accounts allowed into /admin (they sign in with their mail password).",
        [],
    )
    totp_secrets: dict[str, str] = setting(
        "Operator address -> base32 TOTP secret (RFC 6238, 30 s, 6 digits). An operator listed\n"
        "here must also give the current code from an authenticator app.",
        {},
    )
    totp_max_failures: int = setting(
        "Wrong TOTP codes for one operator in auth.failure_window before /admin sign-in waits\n"
        "auth.lockout (doubled at each further lockout); counted apart from wrong passwords and\n"
        "never reset by a right password, only by a right code.",
        5,
    )
    require_totp_operators: bool = setting(
        "Operators must sign in to /admin with a TOTP code: a secret in totp_secrets or\n"
        "one they enrolled at /account/totp (refused until they have one).",
        False,
    )
    session_secret: str = setting(
        "Key signing the session cookies. Empty: a random key kept in <data_dir>/web/session.key.",
        "",
    )
    session_minutes: int = setting("Minutes an operator session lasts.", 30)


def portal_url(web: WebSettings, hostname: str) -> str:
    """The portal's public base URL, without a trailing slash (``web.public_url``, by default
    ``https://<server.hostname>``)."""
    return (web.public_url or f"https://{hostname}").rstrip("/")

"""The ManageSieve session without sockets, over a real SQLite store: what a
client that is not on loopback meets before TLS (RFC 5804 section 2.1:
ENCRYPT-NEEDED, an empty SASL capability), and after the handshake."""

from __future__ import annotations

import base64

from mailserver.auth import Authenticator, hash_password
from mailserver.config import AuthSettings
from mailserver.managesieve.parser import Atom, Line
from mailserver.managesieve.session import ManageSieveDeps, Session
from mailserver.managesieve.settings import ManageSieveSettings
from mailserver.ops.sieve import SieveLimits
from storage.api import MailStore
from storage.sieve import sieve_scripts_for

USER = "annv@dongnai.gov.vn"
PASSWORD = "S3cret-pass-word"


def wire(responses: list) -> bytes:  # type: ignore[type-arg]
    return b"".join(r.to_bytes() for r in responses)


async def test_no_plaintext_auth_from_afar(store: MailStore) -> None:
    await store.create_account(USER, "An", hash_password(PASSWORD), must_change_password=False)
    deps = ManageSieveDeps(
        scripts=sieve_scripts_for(store),
        authenticator=Authenticator(store, AuthSettings(failure_delay=0.0)),
        directory=None,
        settings=ManageSieveSettings(),
        limits=SieveLimits(),
    )
    session = Session(deps, remote_ip="192.0.2.7", secure=False, starttls_available=True)
    greeting = wire(session.greeting())
    assert b'"SASL" ""\r\n' in greeting and b'"STARTTLS"' in greeting
    token = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
    refused = await session.handle(Line((Atom("AUTHENTICATE"), "PLAIN", token)))
    assert wire(refused).startswith(b"NO (ENCRYPT-NEEDED)") and session.state == "nonauth"

    assert wire(await session.handle(Line((Atom("STARTTLS"),)))).startswith(b"OK")
    assert session.start_tls
    after = wire(session.tls_started())
    assert b'"SASL" "PLAIN LOGIN"' in after and b'"STARTTLS"' not in after and after.endswith(b'"\r\n')
    assert wire(await session.handle(Line((Atom("STARTTLS"),)))).startswith(b"NO")  # not twice
    ok = await session.handle(Line((Atom("AUTHENTICATE"), "PLAIN", token)))
    assert wire(ok).startswith(b"OK") and session.owner == USER

    # With managesieve.allow_plaintext_auth the same client may sign in without TLS.
    relaxed = ManageSieveDeps(
        scripts=deps.scripts,
        authenticator=deps.authenticator,
        directory=None,
        settings=ManageSieveSettings(allow_plaintext_auth=True),
        limits=SieveLimits(),
    )
    plain = Session(relaxed, remote_ip="192.0.2.7", secure=False, starttls_available=True)
    assert wire(await plain.handle(Line((Atom("AUTHENTICATE"), "PLAIN", token)))).startswith(b"OK")

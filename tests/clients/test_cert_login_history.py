"""Certificate logins in the login history (issue 23): an accepted EXTERNAL login and
one refused (account not opted in) both appear, with the protocol and result."""

from __future__ import annotations

import asyncio
import imaplib

from storage.credentials import credentials_for
from tests.clients.test_cert_login import (  # noqa: F401 - fixtures
    ANNV,
    BINH,
    Setup,
    external,
    imaps,
    passphrase,
    setup,
)


async def test_certificate_logins_are_in_the_history(setup: Setup) -> None:  # noqa: F811
    def run() -> str:
        with imaps(setup, setup.certs[ANNV]) as imap:
            assert imap.authenticate("EXTERNAL", external())[0] == "OK"
        with imaps(setup, setup.certs[BINH]) as imap:
            try:
                imap.authenticate("EXTERNAL", external())
            except imaplib.IMAP4.error as exc:
                return str(exc)
        return "OK"

    assert "AUTHENTICATIONFAILED" in await asyncio.to_thread(run)
    app = setup.server.app
    assert app.authenticator.history is not None
    await app.authenticator.history.flush()
    credentials = credentials_for(app.store)
    for address, expected in ((ANNV, (True, "certificate")), (BINH, (False, "certificate-failed"))):
        account = await app.store.get_account(address)
        assert account is not None
        seen = [(e.protocol, e.success, e.detail) for e in await credentials.logins(account.id)]
        assert ("imap", *expected) in seen, seen

"""Wiring: config -> store, TLS, authenticator, protocol services; process life.

``App`` owns every long-lived object. ``serve()`` runs it until SIGTERM/SIGINT.
Tests use ``App`` directly with listeners on port 0 and read the bound
addresses from ``App.addresses``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
from typing import Protocol

from mailserver.auth import Authenticator
from mailserver.config import Config
from pki.tls import ensure_certificate, server_context
from storage import open_store
from storage.api import MailStore

log = logging.getLogger(__name__)


class Service(Protocol):
    """A protocol front end: binds its listeners in ``start`` and reports them."""

    async def start(self) -> dict[str, tuple[str, int]]:
        """Bind and serve; return listener name -> (host, port) actually bound."""
        ...

    async def stop(self) -> None:
        """Stop accepting, end sessions, release sockets."""
        ...


class App:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.store: MailStore = open_store(
            config.storage_url, config.maildir, quota_bytes=config.storage.quota or None
        )
        self.authenticator = Authenticator(self.store, config.auth)
        self.ssl_context: ssl.SSLContext | None = None
        self.services: list[Service] = []
        self.addresses: dict[str, tuple[str, int]] = {}

    async def start(self) -> None:
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        await self.store.start()
        await asyncio.to_thread(
            ensure_certificate, self.config.tls_cert, self.config.tls_key, self.config.server.hostname
        )
        self.ssl_context = server_context(self.config.tls_cert, self.config.tls_key)
        # Imported here so a broken optional front end cannot stop the CLI's
        # account commands, which need only the store.
        from mailserver.imap.server import ImapService
        from mailserver.smtp.server import SmtpService

        self.services = [
            SmtpService(self.config, self.store, self.authenticator, self.ssl_context),
            ImapService(self.config, self.store, self.authenticator, self.ssl_context),
        ]
        for service in self.services:
            self.addresses.update(await service.start())
        for name, (host, port) in sorted(self.addresses.items()):
            log.info("listening: %s on %s:%d", name, host, port)

    async def stop(self) -> None:
        for service in reversed(self.services):
            try:
                await service.stop()
            except Exception:
                log.exception("error while stopping %s", type(service).__name__)
        self.services = []
        await self.store.close()

    async def __aenter__(self) -> App:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def serve(config: Config) -> None:
    """Run until SIGTERM or SIGINT."""
    app = App(config)
    await app.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(
        "mailserver ready: "
        + ", ".join(f"{name} {host}:{port}" for name, (host, port) in sorted(app.addresses.items())),
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        await app.stop()

"""Wiring: config -> store, TLS, authenticator, protocol services; process life.

``App`` owns every long-lived object. ``serve()`` runs it until SIGTERM/SIGINT.
Tests use ``App`` directly with listeners on port 0 and read the bound
addresses from ``App.addresses``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import ssl
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from mailserver.auth import Authenticator
from mailserver.cluster import Cluster
from mailserver.config import Config
from mailserver.directory.routing import Router
from mailserver.directory.sender import DirectorySenderPolicy
from mailserver.dispatch import pdfcheck
from mailserver.loginlog import LoginRecorder
from mailserver.smtp.hooks import SenderPolicy
from mailserver.smtp.outbound_settings import spool_path
from pki.arc import ArcSealer
from pki.dkim import DkimSigner, key_directory
from pki.keystore import DkimKeyStore
from pki.tls import ensure_certificate, server_context
from policy.dns import Resolver, build_resolver
from policy.pipeline import Pipeline, limits_of
from storage import Storage, open_storage
from storage.api import MailStore
from storage.jobs import JobLedger
from storage.quarantine import FileQuarantine
from storage.queue import OutboundQueue
from storage.reconcile import Reconciler
from storage.tlsrpt import TlsRptStore

if TYPE_CHECKING:
    from mailserver.certlogin import CertLogin
    from mailserver.ops.dmarc import DmarcReports
    from mailserver.search.indexer import Indexer
    from mailserver.smtp.queue import Outbound, QueueRunner
    from mailserver.smtp.workers import SmtpWorkers
    from mailserver.web.deps import PortalDependencies

log = logging.getLogger(__name__)


class Service(Protocol):
    """A protocol front end: binds its listeners in ``start`` and reports them."""

    async def start(self) -> dict[str, tuple[str, int]]:
        """Bind and serve; return listener name -> (host, port) actually bound."""
        ...

    async def stop(self) -> None:
        """Stop accepting, end sessions, release sockets."""
        ...


@runtime_checkable
class CountsConnections(Protocol):
    """A front end that can say how many sessions it has open."""

    def connection_count(self) -> int: ...


def arc_sealer(config: Config, keys: DkimKeyStore) -> ArcSealer | None:
    """The ARC sealer of ``config`` (``arc.*``), or None when sealing is off."""
    if not config.arc.seal:
        return None
    return ArcSealer(keys, config.arc.domain or config.server.domains[0], config.server.hostname)


class App:
    def __init__(self, config: Config, *, smtp_workers: bool = False) -> None:
        self.config = config
        self._smtp_processes = 1
        if smtp_workers:
            from mailserver.smtp.workers import worker_count

            self._smtp_processes = worker_count(config) + 1
        """Processes serving the MX listener: ``serve`` starts ``smtp.processes``
        (mailserver/smtp/workers.py); tests building an App directly, one."""
        self.smtp_workers: SmtpWorkers | None = None
        self.storage: Storage = open_storage(
            config.storage_url, config.maildir, quota_bytes=config.storage.quota or None,
            spool_dir=spool_path(config.outbound, config.data_dir),
        )
        """Every store on the one database (``storage.sql.Database``), built once here."""
        self.store: MailStore = self.storage.mail
        self.queue: OutboundQueue = self.storage.outbound_queue()
        self.authenticator = Authenticator(
            self.store, config.auth, max_password_age_days=config.accounts.max_password_age_days,
            require_app_passwords=config.accounts.require_app_passwords,
            history=LoginRecorder(self.storage.credentials), credentials=self.storage.credentials,
        )
        self.resolver: Resolver = build_resolver(config.dns)
        """The one DNS interface (policy/dns.py): SPF, DKIM, DMARC, MX lookups."""
        self.signer = DkimSigner(DkimKeyStore(key_directory(config.dkim, config.data_dir)), config.dkim)
        """DKIM signer of outgoing mail (the OutboundSigner hook)."""
        self.sealer: ArcSealer | None = arc_sealer(config, self.signer.store)
        """ARC sealing of forwarded and expanded mail (pki/arc.py); None when ``arc.seal`` is off."""
        self.sender_policy: SenderPolicy = DirectorySenderPolicy(
            self.storage.directory, Router(config.server.domains, self.store)
        )
        """Whom a submission user may send as (the directory plugs in its rules)."""
        self.pipeline = Pipeline.from_settings(
            config.policy, resolver=self.resolver, data_dir=config.data_dir,
            local_domains=config.server.domains,
        )
        """The content policy of every SMTP path; IMAP trains its spam filter (``learn``)."""
        self.quarantine = FileQuarantine(config.data_dir / "quarantine")
        """Mail the pipeline held back (``mailserver quarantine``)."""
        self.tlsrpt: TlsRptStore = self.storage.tlsrpt
        """TLS-RPT results of outbound delivery and reports others sent us (RFC 8460)."""
        self.reconciler = Reconciler(
            self.store, config.maildir, config.data_dir / "lost+found", min_age=config.storage.orphan_min_age
        )
        """Crash leftovers: the Maildir checked against the index at every start."""
        self.outbound: Outbound | None = None
        self.queue_runner: QueueRunner | None = None
        self.dmarc: DmarcReports | None = None
        """DMARC aggregate reports (mailserver/ops/dmarc.py), built at start."""
        self.ssl_context: ssl.SSLContext | None = None
        self.cert_login: CertLogin | None = None
        """SASL EXTERNAL with TLS client certificates (mailserver/certlogin.py)."""
        self.cluster = Cluster(self.store if isinstance(self.store, JobLedger) else None)
        """This node among several on one database: scheduled jobs run once per period."""
        self.services: list[Service] = []
        self.indexer: Indexer | None = None
        """The full-text indexer (``search.index``), once started."""
        self.background: list[asyncio.Task[None]] = []
        self.addresses: dict[str, tuple[str, int]] = {}

    async def start(self) -> None:
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        await self.storage.start()
        # Before any listener opens (nothing of ours is in flight), within the
        # budget; the rest runs in the background below (storage/reconcile.py).
        reconciled = await self.reconciler.startup(self.config.storage.reconcile_budget)
        await asyncio.to_thread(
            ensure_certificate, self.config.tls_cert, self.config.tls_key, self.config.server.hostname
        )
        self.ssl_context = server_context(self.config.tls_cert, self.config.tls_key)
        from mailserver import certlogin

        self.cert_login = await asyncio.to_thread(
            certlogin.enable, self.config, self.store, self.authenticator
        )
        login_context = self.cert_login.context if self.cert_login is not None else self.ssl_context
        # Imported here so a broken optional front end cannot stop the CLI's
        # account commands, which need only the store.
        from mailserver.imap.server import ImapService
        from mailserver.smtp.queue import Outbound, QueueRunner
        from mailserver.smtp.server import SmtpService
        from mailserver.smtp.service import SmtpDeps
        from mailserver.smtp.submission import SubmissionService

        # Signing happens once, at enqueue time (mailserver/smtp/hooks.py).
        self.outbound = Outbound(self.queue, self.signer)
        self.queue_runner = QueueRunner(self.config, self.queue, self.store, self.resolver, self.outbound,
                                        tlsrpt=self.tlsrpt)
        from mailserver.ops.dmarc import DmarcReports

        self.dmarc = DmarcReports(self.config, self.storage.dmarc, self.resolver, self.outbound)
        smtp = SmtpDeps(self.config, self.store, self.ssl_context, outbound=self.outbound,
                        pipeline=self.pipeline, quarantine=self.quarantine, dns=self.resolver,
                        sealer=self.sealer, reports=self.dmarc)
        self.services = [
            SmtpService(smtp, processes=self._smtp_processes),
            SubmissionService(replace(smtp, ssl_context=login_context), self.authenticator,
                              sender_policy=self.sender_policy, cert_login=self.cert_login),
            ImapService(self.config, self.store, self.authenticator, login_context,
                        learner=self.pipeline, cert_login=self.cert_login),
        ]
        if self.config.managesieve.enabled:
            self.services.append(self._managesieve(login_context))
        if self.config.web.enabled:
            from mailserver.web.server import WebService

            self.services.append(WebService(self.portal_dependencies(), self.ssl_context))
        for service in self.services:
            self.addresses.update(await service.start())
        if self._smtp_processes > 1:
            from mailserver.smtp.workers import SmtpWorkers

            # smtp.processes = 0: as many as CPUs, started when the main process is busy.
            mx = next(service for service in self.services if isinstance(service, SmtpService))
            self.smtp_workers = SmtpWorkers(self.config, self.store, self.addresses["smtp"],
                                            self._smtp_processes - 1,
                                            on_demand=self.config.smtp.processes == 0,
                                            address_counts=mx.address_counts)
            await self.smtp_workers.start()
            for service in self.services:
                if isinstance(service, SmtpService):
                    service.on_session = self.smtp_workers.wake
        await self.queue_runner.start()
        from mailserver.directory.tasks import password_warning_loop

        self.background.append(
            asyncio.create_task(password_warning_loop(self.config, self.store, self.cluster))
        )
        from mailserver.ops.vault import purge_loop

        retention = self.config.retention
        self.background.append(asyncio.create_task(
            purge_loop(self.store, retention.deleted_days, retention.purge_interval, cluster=self.cluster),
            name="vault-purge",
        ))
        self.background.append(asyncio.create_task(self.reconciler.finish(reconciled), name="reconcile"))
        from mailserver.smtp import tlsrpt

        self.background.append(asyncio.create_task(
            tlsrpt.report_loop(self.config, self.tlsrpt, self.resolver, self.outbound, self.cluster),
            name="tlsrpt-reports",
        ))
        if self.config.search.index:
            from mailserver.search.indexer import Indexer

            # After the store commits, never in the way of a 250 or an APPEND OK.
            self.indexer = Indexer(self.store, limits_of(self.config.policy), self.config.search)
            self.background.append(asyncio.create_task(self.indexer.run(), name="indexer"))
        if self.config.dmarc.send_reports:
            from mailserver.ops.dmarc import report_loop

            self.background.append(asyncio.create_task(
                report_loop(self.dmarc, self.config.dmarc.check_interval), name="dmarc-reports"
            ))
        from mailserver.ops.runtime import start_operations

        await start_operations(self)  # metrics endpoint and counters, backup schedule, check notices
        for name, (host, port) in sorted(self.addresses.items()):
            log.info("listening: %s on %s:%d", name, host, port)

    def connection_counts(self) -> dict[str, int]:
        """Open sessions per front end, named after its service (``smtp``, ``imap``, …)."""
        return {
            type(service).__name__.removesuffix("Service").lower(): service.connection_count()
            for service in self.services
            if isinstance(service, CountsConnections)
        }

    def portal_dependencies(self) -> PortalDependencies:
        """What the web portal uses (``mailserver.web.deps``); the stores must be started."""
        from mailserver.web.deps import PortalDependencies

        return PortalDependencies(
            config=self.config, store=self.store, directory=self.storage.directory,
            activity=self.storage.activity, credentials=self.storage.credentials, dmarc=self.storage.dmarc,
            sieve=self.storage.sieve, tlsrpt=self.storage.tlsrpt,
            authenticator=self.authenticator, queue=self.queue, quarantine=self.quarantine,
            connection_counts=self.connection_counts,
        )

    def _managesieve(self, context: ssl.SSLContext | None) -> Service:
        """ManageSieve (RFC 5804) on ``managesieve.listen``, with its narrow dependencies."""
        from mailserver.managesieve.server import ManageSieveService
        from mailserver.managesieve.session import ManageSieveDeps
        from mailserver.ops.sieve import SieveLimits

        deps = ManageSieveDeps(
            scripts=self.storage.sieve, authenticator=self.authenticator,
            directory=self.storage.directory, settings=self.config.managesieve,
            limits=SieveLimits.from_config(self.config),
        )
        return ManageSieveService(
            self.config.managesieve, deps, context, trusted_proxies=self.config.server.trusted_proxies
        )

    async def stop(self) -> None:
        for task in self.background:
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        self.background = []
        # All front ends stop accepting at once, then each finishes its in-flight
        # transactions and commands within its own deadline.
        services: list[Service] = list(reversed(self.services))
        if self.smtp_workers is not None:
            # They stop with the others; their last commits need the store below.
            services.append(self.smtp_workers)
            self.smtp_workers = None
        results = await asyncio.gather(*(s.stop() for s in services), return_exceptions=True)
        for service, result in zip(services, results, strict=True):
            if isinstance(result, Exception):
                log.error("error while stopping %s", type(service).__name__, exc_info=result)
        self.services = []
        if self.dmarc is not None:
            try:
                await self.dmarc.close()  # the last counted evaluations, before the store closes
            except Exception:  # noqa: BLE001 - statistics must not stop a shutdown
                log.exception("dmarc: cannot write the last evaluations")
        if self.queue_runner is not None:
            await self.queue_runner.stop()
            self.queue_runner = None
        await self.pipeline.close()
        pdfcheck.shutdown()
        if self.authenticator.history is not None:
            await self.authenticator.history.flush()  # the last logins, before the store closes
        await self.storage.close()

    async def __aenter__(self) -> App:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def serve(config: Config) -> None:
    """Run until SIGTERM or SIGINT; SIGHUP reloads (mailserver/ops/runtime.py)."""
    app = App(config, smtp_workers=True)
    await app.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    from mailserver.ops.runtime import reload

    # SIGHUP: new TLS certificates and [policy] without dropping a connection.
    loop.add_signal_handler(signal.SIGHUP, reload, app)
    # Everything made while starting (modules, SQLAlchemy's compiled statements,
    # the configuration) lives as long as the process: move it out of the
    # collector's generations, or every full collection walks it again (a
    # 10,000-message FETCH paid ~50 ms for one, in one run of two).
    gc.collect()
    gc.freeze()
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

"""Signatures inside PDF attachments on the SMTP data path (pki/pdfsig.py):
``X-PDF-Signature:`` on the local copies of mail arriving on the MX and of mail
between colleagues, one field per PDF file.

``PdfHooks.annotate(message)`` is called by ``delivery.Inbound.deliver`` right
after the S/MIME step, on the copy that is stored here (the same place
``X-Signature-Status`` is added): every ``X-PDF-Signature`` the sender wrote is
removed first, so a reader only ever sees a verdict this server reached, then
ours are prepended. A message without "pdf" anywhere in it (nor the base64
of "%PDF-") costs one byte search.

The check is bounded like the policy's content scan: files above
``pki.pdf_max_size`` are not opened, and the files of one message get
``pki.pdf_timeout`` seconds. With ``policy.workers`` > 0 the check runs in a
worker process that is killed on time-out (a pathological PDF never holds the
server); with 0, in a thread. Either way a file not checked is ``invalid``
with the reason, and the message is delivered: a signature verdict never
stops mail.

Trust is read per message (anchors, CRLs, our index), so an imported root or
a revocation takes effect without a restart, as for S/MIME.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import re
import time
from typing import Final

from mailserver.config import Config
from pki.ca import CertificateAuthority, PkiError
from pki.pdfsig import PdfCheck, PdfTrust, pdf_parts, verify_pdf
from pki.smime import split_message
from policy.lifeline import watch_owner

log = logging.getLogger(__name__)
# "pdf" in a type or a file name, or "%PDF-" at the start of a base64 attachment.
_MAYBE_PDF: Final = re.compile(rb"(?i:pdf)|JVBERi0")
_FIELD: Final = re.compile(rb"^x-pdf-signature[ \t]*:", re.IGNORECASE)
_GRACE: Final = 0.8
"""Share of ``pki.pdf_timeout`` the worker itself may spend (it stops between
files); the rest is the margin before the caller kills it."""


class _Pool:
    """One executor shared by the MX and submission (one PDF check at a time
    per process: the check is CPU-bound and rare)."""

    def __init__(self) -> None:
        self.executor: concurrent.futures.Executor | None = None
        self.processes = False
        self._locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}

    def lock(self) -> asyncio.Lock:
        """One check at a time on the worker, whichever front end asks: the time
        a check is given never includes another one's."""
        loop = asyncio.get_running_loop()
        found = self._locks.get(loop)
        if found is None:
            self._locks = {k: v for k, v in self._locks.items() if not k.is_closed()}
            found = self._locks[loop] = asyncio.Lock()
        return found

    def get(self, processes: bool) -> concurrent.futures.Executor:
        if self.executor is None or self.processes != processes:
            self.discard()
            if processes:
                import multiprocessing

                context = multiprocessing.get_context("forkserver")
                self.executor = concurrent.futures.ProcessPoolExecutor(
                    max_workers=1, mp_context=context, initializer=watch_owner, initargs=(os.getpid(),)
                )
            else:
                self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="pdf")
            self.processes = processes
        return self.executor

    def discard(self) -> None:
        """Drop the executor; a worker process stuck on a document is killed."""
        executor, self.executor = self.executor, None
        if executor is None:
            return
        for process in list((getattr(executor, "_processes", None) or {}).values()):
            process.kill()
        executor.shutdown(wait=False, cancel_futures=True)


_POOL: Final = _Pool()


def shutdown() -> None:
    """Stop the shared worker (App.stop)."""
    _POOL.discard()


def maybe_pdf(message: bytes) -> bool:
    """``_MAYBE_PDF.search(message) is not None``, at C speed: the regex tries
    every position of the message (~40 us for 4 KB, 2 ms for 200 KB), a
    lower-cased copy and two substring searches take a fraction of that. A bytes
    pattern's IGNORECASE folds ASCII letters only, as ``bytes.lower`` does."""
    return b"JVBERi0" in message or b"pdf" in message.lower()


def check_message(message: bytes, trust: PdfTrust, max_size: int, budget: float) -> list[PdfCheck]:
    """Every PDF attachment's verdict (runs in the worker)."""
    started = time.monotonic()
    results: list[PdfCheck] = []
    for part in pdf_parts(message):
        left = budget - (time.monotonic() - started)
        if left <= 0:
            results.append(PdfCheck(part.filename, "invalid", reason="not checked: took too long"))
            continue
        results.append(verify_pdf(part.data, part.filename, trust, max_size=max_size, budget=left))
    return results


def with_pdf_headers(message: bytes, checks: list[PdfCheck]) -> bytes:
    """Drop every ``X-PDF-Signature`` already present (a sender must not be able
    to forge the result) and prepend ours."""
    fields, body = split_message(message)
    if any(_FIELD.match(f) for f in fields):
        message = b"".join(f for f in fields if not _FIELD.match(f)) + b"\r\n" + body
    return b"".join(c.header() for c in checks) + message


def pdf_trust(ca: CertificateAuthority, fetch: bool) -> PdfTrust:
    """Trust anchors, intermediates, CRLs and the certificates revoked in our index."""
    revoked = []
    for record in ca.records():
        if record.revoked:
            try:
                revoked.append(ca.certificate(record.cert))
            except (OSError, ValueError):
                continue
    return PdfTrust.build(ca.anchors(), ca.intermediates(), ca.crls(), revoked, fetch=fetch)


class PdfHooks:
    """The PDF step of delivery (module docstring). One per Inbound."""

    def __init__(self, config: Config, ca: CertificateAuthority) -> None:
        self._settings = config.pki
        self._processes = config.policy.workers > 0
        self._ca = ca

    @classmethod
    def build(cls, config: Config) -> PdfHooks:
        try:
            ca = CertificateAuthority.open(config.pki, config.data_dir)
        except PkiError:
            ca = CertificateAuthority(config.data_dir / "pki", config.pki, None)
        return cls(config, ca)

    async def annotate(self, message: bytes) -> bytes:
        """``message`` with our ``X-PDF-Signature`` fields (any other copy removed)."""
        if not self._settings.verify_pdf:
            return message
        if not maybe_pdf(message):
            # Nothing to check and no X-PDF-Signature to remove (its name holds "pdf").
            return message
        return with_pdf_headers(message, await self.check(message))

    async def check(self, message: bytes) -> list[PdfCheck]:
        try:
            trust = pdf_trust(self._ca, self._settings.fetch_revocation)
        except PkiError as exc:
            log.error("pki: %s; PDF signatures checked without our trust anchors", exc)
            trust = PdfTrust(fetch=self._settings.fetch_revocation)
        timeout = self._settings.pdf_timeout
        loop = asyncio.get_running_loop()
        reason = "not checked: took too long"
        async with _POOL.lock():
            executor = _POOL.get(self._processes)
            future = loop.run_in_executor(executor, check_message, message, trust,
                                          self._settings.pdf_max_size, timeout * _GRACE)
            try:
                async with asyncio.timeout(timeout):
                    return await future
            except TimeoutError:
                log.warning("pdf: signature check took longer than %ss; worker stopped", timeout)
                _POOL.discard()
            except concurrent.futures.process.BrokenProcessPool:
                log.error("pdf: the signature check worker died; files reported invalid")
                reason = "not checked: the checker stopped"
                _POOL.discard()
        parts = await asyncio.to_thread(pdf_parts, message)
        return [PdfCheck(p.filename, "invalid", reason=reason) for p in parts]

"""The server's side of the internal CA (``pki/ca.py``): where issued certificates
send relying parties for the CRL, and keeping the published CRL current.

* ``crl_url(config)`` is the one place the CRL Distribution Point URL (RFC 5280
  section 4.2.1.13) is decided: ``pki.crl_url`` when set, else the portal's
  ``/crl`` at its public address. ``open_ca(config)`` opens the CA with that
  URL and the passphrase, for every command and service that issues, revokes
  or publishes.
* ``crl_loop`` runs in ``mailserver serve``: every ``pki.crl_check_interval``
  seconds it asks the CA whether the published CRL is stale (a revocation made
  by another process, such as ``mailserver directory offboard``, not yet
  listed; older than ``pki.crl_refresh_hours``; nextUpdate near) and re-signs
  it. Several server processes on one host coordinate through the CA's file
  lock; each checks again under the lock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from mailserver.cluster import Cluster, interval_slot
from mailserver.config import Config
from pki.ca import CertificateAuthority, PkiError, pki_directory

log = logging.getLogger(__name__)


def portal_public_url(config: Config) -> str:
    """The portal's address as relying parties and staff reach it (no trailing
    slash): ``web.public_url`` once the setting exists, else derived from
    ``server.hostname`` (the portal is published behind the host's web proxy)."""
    public = str(getattr(config.web, "public_url", "") or "").strip()
    if public:
        return public.rstrip("/")
    return f"http://{config.server.hostname}"


def crl_url(config: Config) -> str:
    """The CRL Distribution Point written into issued certificates. Plain HTTP by
    default, as RFC 5280 section 4.2.1.13 advises: fetching a CRL must not need
    a TLS certificate whose own status depends on that CRL."""
    return config.pki.crl_url.strip() or f"{portal_public_url(config)}/crl"


def open_ca(config: Config) -> CertificateAuthority:
    """The CA with its passphrase (when configured) and the CRL URL. An unreadable
    ``pki.passphrase_file`` leaves it without one: it can still revoke in the
    index, and says so when asked to sign (PkiError)."""
    try:
        return CertificateAuthority.open(config.pki, config.data_dir, crl_url=crl_url(config))
    except PkiError as exc:
        log.error("pki: %s", exc)
        return CertificateAuthority(pki_directory(config.pki, config.data_dir), config.pki,
                                    crl_url=crl_url(config))


async def crl_loop(
    config: Config, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, cluster: Cluster | None = None
) -> None:
    """Keep ``<pki>/crl.pem`` current (module docstring), re-signing on one node per
    check interval (``cluster``: the nodes share the PKI directory); cancel to stop."""
    ca = open_ca(config)
    cluster = cluster or Cluster(None)
    warned = False

    async def refresh() -> None:
        crl = await asyncio.to_thread(ca.refresh_crl)
        if crl is not None:
            log.info("pki: CRL published with %d revoked certificate(s), next update %s",
                     len(list(crl)), crl.next_update_utc)

    while True:
        try:
            if ca.initialised:
                if not ca.can_sign:
                    stale = await asyncio.to_thread(ca.crl_stale)
                    if stale and not warned:
                        log.error("pki: the CRL needs re-signing (%s) but the server has no PKI passphrase "
                                  "($MAILSERVER_PKI_PASSPHRASE or pki.passphrase_file)", stale)
                        warned = True
                else:
                    slot = interval_slot(datetime.now(UTC), config.pki.crl_check_interval)
                    await cluster.run_once("crl-refresh", slot, refresh)
                    warned = False
        except asyncio.CancelledError:
            raise
        except (PkiError, OSError, ValueError) as exc:
            if not warned:
                log.error("pki: cannot publish the CRL: %s", exc)
                warned = True
        await sleep(max(config.pki.crl_check_interval, 0.05))


__all__ = ["crl_loop", "crl_url", "open_ca", "portal_public_url"]

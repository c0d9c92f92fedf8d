"""Periodic work of ``mailserver serve`` for the directory: password expiry warnings."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from mailserver.cluster import Cluster, interval_slot
from mailserver.config import Config
from mailserver.directory.passwords import warn_expiring
from storage.api import MailStore
from storage.directory import open_directory

log = logging.getLogger(__name__)


async def run_password_warnings(config: Config, store: MailStore) -> list[str]:
    """One pass of ``warn_expiring`` with the server's sender and hostname."""
    domain = config.directory.domain or config.server.domains[0]
    return await warn_expiring(
        store,
        open_directory(store),
        config.accounts,
        sender=f"postmaster@{domain}",
        hostname=config.server.hostname,
    )


async def password_warning_loop(config: Config, store: MailStore, cluster: Cluster | None = None) -> None:
    """Every ``accounts.warning_interval`` seconds, warn accounts whose password
    expires soon (on one node per interval, ``cluster``). Errors are logged and
    the loop carries on; cancel to stop."""
    cluster = cluster or Cluster(None)
    interval = max(config.accounts.warning_interval, 1)

    async def warn() -> None:
        warned = await run_password_warnings(config, store)
        if warned:
            log.info("password expiry warning delivered to %d account(s)", len(warned))

    while True:
        try:
            await cluster.run_once("password-warnings", interval_slot(datetime.now(UTC), interval), warn)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("password expiry warnings failed")
        await asyncio.sleep(interval)

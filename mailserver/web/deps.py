"""``PortalDependencies``: what the web portal receives from the wiring (``App``).

The portal gets these parts, not the whole ``App`` (STYLE.md, "Wiring"): the
stores it reads and writes, the authenticator, the outbound queue and the
quarantine it administers, and a way to count the other front ends' open
connections. No aiohttp here, so the wiring builds it without importing the
portal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mailserver.auth import Authenticator
from mailserver.config import Config
from storage.activity import ActivityStore
from storage.api import MailStore
from storage.credentials import CredentialStore
from storage.directory import DirectoryStore
from storage.dmarc import DmarcStore
from storage.quarantine import Quarantine
from storage.queue import OutboundQueue
from storage.sieve import SieveScripts
from storage.tlsrpt import TlsRptStore

__all__ = ["PortalDependencies"]


@dataclass(frozen=True, slots=True)
class PortalDependencies:
    config: Config
    store: MailStore
    directory: DirectoryStore
    activity: ActivityStore
    credentials: CredentialStore
    dmarc: DmarcStore
    sieve: SieveScripts
    tlsrpt: TlsRptStore
    authenticator: Authenticator
    queue: OutboundQueue
    quarantine: Quarantine
    connection_counts: Callable[[], dict[str, int]]
    """Open sessions per front end (``smtp``, ``submission``, ``imap``)."""

"""Several nodes on one database: who this node is, and jobs run once per period.

Each node runs the same schedule loops; ``Cluster.run_once`` asks the job ledger
(``storage.jobs``) for the period's slot first, so the job runs on one node per
period (module docstring of ``storage.jobs``). With a single node the claim
always succeeds and costs one small write per run.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Final

from storage.jobs import JobLedger

log = logging.getLogger(__name__)

JOB_LEASE: Final = timedelta(hours=6)
"""How long a node's unfinished run holds its slot before another node may take it
over (longer than the slowest job: a backup of a large mail store)."""


@cache
def node_id() -> str:
    """This process's name among the nodes: host, pid and a random tag (a restarted
    container may reuse both host name and pid)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def interval_slot(now: datetime, seconds: float) -> str:
    """The period of a job run every ``seconds``: the same on every node."""
    return str(int(now.timestamp() // max(seconds, 1.0)))


class Cluster:
    def __init__(self, ledger: JobLedger | None, *, lease: timedelta = JOB_LEASE) -> None:
        self._ledger = ledger
        self._lease = lease
        self.node = node_id()

    async def run_once(self, name: str, slot: str, job: Callable[[], Awaitable[object]]) -> bool:
        """Run ``job`` unless another node has run (or is running) ``name`` for ``slot``."""
        ledger = self._ledger
        if ledger is None:
            await job()
            return True
        if not await ledger.claim_job(name, slot, node=self.node, now=datetime.now(UTC), lease=self._lease):
            log.debug("%s for %s: another node has it", name, slot)
            return False
        await job()
        await ledger.finish_job(name, slot, node=self.node, now=datetime.now(UTC))
        return True


__all__ = ["Cluster", "interval_slot", "node_id"]

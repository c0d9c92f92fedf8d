"""An SMTP listener process (``mailserver.smtp.workers``): started by the main
process as ``python -m mailserver.smtp.worker FD PID COUNTS``, FD being its end
of the channel, PID the main process's, COUNTS the descriptor of the shared
per-address session counts (-1: none). The first frame on it is (configuration, MX address, index, process
count); the worker answers ``"ready"`` once it listens, serves until SIGTERM or
until the channel closes, then stops like the main process's SmtpService."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import os
import signal
import socket
import sys
from typing import Any

from mailserver.config import Config
from mailserver.ops.logs import configure_logging, use_uvloop
from mailserver.smtp.workers import MainChannel, SieveThroughMain, frame


async def run(channel_socket: socket.socket, config: Config, address: tuple[str, int], index: int,
              processes: int, counts_fd: int = -1) -> None:
    from mailserver.app import arc_sealer
    from mailserver.ops.dmarc import DmarcReports
    from mailserver.smtp.limits import SharedAddressCounts
    from mailserver.smtp.outbound_settings import spool_path
    from mailserver.smtp.queue import Outbound
    from mailserver.smtp.server import SmtpService
    from mailserver.smtp.service import SmtpDeps
    from pki.dkim import DkimSigner, key_directory
    from pki.keystore import DkimKeyStore
    from pki.tls import server_context
    from policy.dns import build_resolver
    from policy.pipeline import Pipeline
    from storage import open_storage
    from storage.quarantine import FileQuarantine

    reader, writer = await asyncio.open_unix_connection(sock=channel_socket)
    channel = MainChannel(reader, writer)
    storage = open_storage(config.storage_url, config.maildir, quota_bytes=config.storage.quota or None,
                           spool_dir=spool_path(config.outbound, config.data_dir))
    await storage.start()
    store: Any = storage.mail
    queue = storage.outbound_queue()
    if store.url and not store.url.startswith("postgresql"):
        # Staged here, committed by the main process's group commit (one writer on
        # SQLite); PostgreSQL: several writers, NOTIFY tells the others.
        store.commit_elsewhere(channel)
        # Sieve's filed copies and its vacation/duplicate memory: written by the
        # main process as well (mailserver/sieve/deliver.py reads this attribute).
        store.sieve_main = SieveThroughMain(channel)
    resolver = build_resolver(config.dns)
    pipeline = Pipeline.from_settings(config.policy, resolver=resolver, data_dir=config.data_dir,
                                      local_domains=config.server.domains)
    signer = DkimSigner(DkimKeyStore(key_directory(config.dkim, config.data_dir)), config.dkim)
    # Counts only: the main process sends the reports.
    reports = DmarcReports(config, storage.dmarc, resolver)
    deps = SmtpDeps(
        config, store, await asyncio.to_thread(server_context, config.tls_cert, config.tls_key),
        dns=resolver, outbound=Outbound(queue, signer), pipeline=pipeline,
        sealer=arc_sealer(config, signer.store), reports=reports,
        quarantine=FileQuarantine(config.data_dir / "quarantine"),
    )
    service = SmtpService(
        deps,
        listen=f"{address[0]}:{address[1]}" if ":" not in address[0] else f"[{address[0]}]:{address[1]}",
        processes=processes,
        # Per-address session counts shared with the main process and the other workers.
        address_counts=SharedAddressCounts(counts_fd, processes, index + 1) if counts_fd >= 0 else None,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, lambda: None)  # Ctrl-C reaches the whole group: main decides
    try:
        await service.start()
        writer.write(frame("ready"))
        gc.collect()
        gc.freeze()
        ended = asyncio.create_task(channel.closed.wait())
        await asyncio.wait([asyncio.create_task(stop.wait()), ended], return_when=asyncio.FIRST_COMPLETED)
    finally:
        await service.stop()
        with contextlib.suppress(Exception):
            await reports.close()  # the last counted evaluations
        await pipeline.close()
        await storage.close()
        await channel.close()


def _die_with_parent(parent: int) -> None:
    """Linux: SIGKILL when the main process ends, however it ends (a crash of
    the main process is a crash of the server: nothing it did not commit was
    acknowledged). The channel's end stops the worker too, more gently."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it ended before the line above (or before we got here)
        os._exit(1)


def main(argv: list[str]) -> int:
    # The parent's pid comes from the parent: read here, it would already be 1 had
    # the parent died while this process was importing.
    _die_with_parent(int(argv[2]) if len(argv) > 2 else os.getppid())
    channel_socket = socket.socket(fileno=int(argv[1]))
    channel_socket.setblocking(True)
    # The first frame, read before any event loop: what to serve.
    header = b""
    while len(header) < 4:
        chunk = channel_socket.recv(4 - len(header))
        if not chunk:
            return 1
        header += chunk
    size = int.from_bytes(header, "big")
    data = b""
    while len(data) < size:
        chunk = channel_socket.recv(size - len(data))
        if not chunk:
            return 1
        data += chunk
    import pickle

    config, address, index, processes = pickle.loads(data)  # noqa: S301 - from our main process
    configure_logging(config)
    use_uvloop()
    channel_socket.setblocking(False)
    counts_fd = int(argv[3]) if len(argv) > 3 else -1
    asyncio.run(run(channel_socket, config, tuple(address), index, processes, counts_fd))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

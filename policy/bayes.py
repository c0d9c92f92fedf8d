"""A Bayesian spam classifier that learns per installation.

Tokens are case-folded words (Unicode, so Vietnamese words count), URL hosts
and a few header tokens. Token probabilities follow Gary Robinson's
"A Statistical Approach to the Spam Problem" (2003): f(w) = (s*x + n*p(w)) /
(s + n) with s = 1, x = 0.5, combined with Fisher's chi-square method as
SpamBayes does; 0.5 means "no idea".

Storage: one SQLite file (``<data_dir>/policy/bayes.sqlite`` by default) with
token counts and the number of trained messages. ``learn`` is what the CLI
(``mailserver spam train``) and the IMAP layer (a user moving mail into or out
of Junk) call; it is synchronous, callers run it in a thread. Unlearning a
previous wrong classification is ``learn(msg, is_spam, undo=True)``.
"""

from __future__ import annotations

import email
import email.policy
import math
import re
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Final

_WORD: Final = re.compile(r"[^\W\d_][\w'-]{1,30}", re.UNICODE)
_URL: Final = re.compile(r"(?i)https?://([^\s/\"'<>:?#]+)")
MAX_TOKENS: Final = 3000
MIN_TRAINED: Final = 5
"""Messages of each class needed before the classifier has an opinion."""
TRAINED_TTL: Final = 5.0
"""Seconds ``Bayes.trained`` trusts its last look at the totals."""


def tokens(text: str, subject: str = "", sender: str = "") -> set[str]:
    found: set[str] = set()
    for word in _WORD.findall(text[:500_000].casefold()):
        found.add(word)
        if len(found) >= MAX_TOKENS:
            break
    for host in _URL.findall(text[:500_000]):
        found.add("url:" + host.lower())
    for word in _WORD.findall(subject.casefold()):
        found.add("subject:" + word)
    if sender:
        found.add("from:" + sender.lower().rpartition("@")[2])
    return found


def message_tokens(raw: bytes) -> set[str]:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    parts: list[str] = []
    for part in msg.walk():
        if part.get_content_maintype() == "text":
            try:
                parts.append(str(part.get_content()))
            except (LookupError, ValueError, AttributeError):
                continue
    return tokens("\n".join(parts), str(msg.get("subject", "")), str(msg.get("from", "")))


class Bayes:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS tokens (token TEXT PRIMARY KEY, spam INTEGER NOT NULL DEFAULT 0,"
            " ham INTEGER NOT NULL DEFAULT 0)"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS totals (id INTEGER PRIMARY KEY CHECK (id = 1),"
            " spam INTEGER NOT NULL, ham INTEGER NOT NULL)"
        )
        self._db.execute("INSERT OR IGNORE INTO totals VALUES (1, 0, 0)")
        self._trained = False
        self._trained_at = -TRAINED_TTL

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def trained(self) -> bool:
        """Whether ``probability`` can have an opinion (enough training), for
        the event loop: the answer is at most ``TRAINED_TTL`` seconds old (the
        CLI trains from another process), and a training in progress in this
        process never makes the caller wait (the last answer stands)."""
        now = time.monotonic()
        if now - self._trained_at < TRAINED_TTL:
            return self._trained
        if not self._lock.acquire(blocking=False):
            return self._trained
        try:
            row = self._db.execute("SELECT spam, ham FROM totals WHERE id = 1").fetchone()
        finally:
            self._lock.release()
        self._trained = int(row[0]) >= MIN_TRAINED and int(row[1]) >= MIN_TRAINED
        self._trained_at = now
        return self._trained

    def classify(self, text: str, subject: str = "", sender: str = "") -> float | None:
        """``probability`` of the ``tokens`` of a text (blocking: run in a thread)."""
        nspam, nham = self.totals()
        if nspam < MIN_TRAINED or nham < MIN_TRAINED:
            return None
        return self.probability(tokens(text, subject, sender))

    def totals(self) -> tuple[int, int]:
        with self._lock:
            row = self._db.execute("SELECT spam, ham FROM totals WHERE id = 1").fetchone()
        return int(row[0]), int(row[1])

    def learn_tokens(self, toks: Iterable[str], is_spam: bool, *, undo: bool = False) -> None:
        column = "spam" if is_spam else "ham"
        delta = -1 if undo else 1
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    f"INSERT INTO tokens (token, {column}) VALUES (?, MAX(?, 0)) "  # noqa: S608 - fixed name
                    f"ON CONFLICT(token) DO UPDATE SET {column} = MAX({column} + ?, 0)",
                    [(t, delta, delta) for t in toks],
                )
                self._db.execute(
                    f"UPDATE totals SET {column} = MAX({column} + ?, 0) WHERE id = 1",  # noqa: S608
                    (delta,),
                )
                self._db.execute("COMMIT")
                self._trained_at = -TRAINED_TTL  # look again at the next message
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def learn(self, raw: bytes, is_spam: bool, *, undo: bool = False) -> None:
        self.learn_tokens(message_tokens(raw), is_spam, undo=undo)

    def probability(self, toks: Iterable[str]) -> float | None:
        """Spam probability in [0, 1], or None before enough training."""
        nspam, nham = self.totals()
        if nspam < MIN_TRAINED or nham < MIN_TRAINED:
            return None
        toks = list(toks)
        counts: dict[str, tuple[int, int]] = {}
        with self._lock:
            for start in range(0, len(toks), 500):
                batch = toks[start : start + 500]
                marks = ",".join("?" * len(batch))
                query = f"SELECT token, spam, ham FROM tokens WHERE token IN ({marks})"  # noqa: S608 - only "?"s
                rows = self._db.execute(query, batch).fetchall()
                counts.update({r[0]: (int(r[1]), int(r[2])) for r in rows})
        probs: list[float] = []
        for spam, ham in counts.values():
            n = spam + ham
            if n == 0:
                continue
            spam_ratio = spam / nspam
            ham_ratio = ham / nham
            p = spam_ratio / (spam_ratio + ham_ratio)
            f = (0.45 + n * p) / (1 + n)  # Robinson, s = 1, x = 0.45
            if abs(f - 0.5) > 0.1:
                probs.append(min(max(f, 0.01), 0.99))
        probs = sorted(probs, key=lambda x: abs(x - 0.5), reverse=True)[:150]
        if not probs:
            return 0.5
        h = _chi2q(-2.0 * sum(math.log(p) for p in probs), 2 * len(probs))
        s = _chi2q(-2.0 * sum(math.log(1.0 - p) for p in probs), 2 * len(probs))
        return (1.0 + h - s) / 2.0


def _chi2q(x2: float, v: int) -> float:
    """P(chi-square with v degrees of freedom >= x2), v even (SpamBayes chi2Q)."""
    m = x2 / 2.0
    total = term = math.exp(-m)
    for i in range(1, v // 2):
        term *= m / i
        total += term
    return min(total, 1.0)

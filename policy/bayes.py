"""A Bayesian spam classifier that learns per installation, starting from a
seed model shipped with the server.

Tokens are the words of the subject and text parts as the spam rules read
them (``policy.rules.normalize.fold``: case-folded, look-alike letters mapped,
*without diacritics*, so that spam typed without its marks meets the same
tokens), the pairs of adjacent words (Vietnamese words are mostly two
syllables: "vay tien", "trung thuong"), link hosts and the sender's domain.
Token probabilities follow Gary Robinson's "A Statistical Approach to the
Spam Problem" (2003): f(w) = (s*x + n*p(w)) / (s + n) with s = 1, x = 0.45,
combined with Fisher's chi-square method as SpamBayes does; 0.5 means "no
idea".

Storage: one SQLite file (``<data_dir>/policy/bayes.sqlite`` by default) with
token counts and the number of trained messages. ``learn`` is what the CLI
(``mailserver spam train``) and the IMAP layer (a user moving mail into or out
of Junk) call; it is synchronous, callers run it in a thread. Unlearning a
previous wrong classification is ``learn(msg, is_spam, undo=True)``.

The seed (``Seed``, ``policy/data/bayes-seed.json``) is counts learned from the
corpus the project generates (``tests/policy/make_bayes_seed.py`` writes it
from ``tests/policy/realmail_tune.py``); its counts are added to the
installation's own. Until the installation has learned ``MIN_TRAINED`` spam
and ham itself, ``Bayes.local_trained`` is False and ``policy.checks.spam``
caps what the classifier adds (the seed alone never tags nor refuses).
"""

from __future__ import annotations

import email
import email.policy
import json
import logging
import math
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from policy.rules.normalize import Folded, FoldMemo, fold

log = logging.getLogger(__name__)

_WORD: Final = re.compile(r"[^\W\d_][\w'-]{1,30}", re.UNICODE)
_WORD_ASCII: Final = re.compile(r"[A-Za-z][\w'-]{1,30}", re.ASCII)
"""``_WORD`` for ASCII text (the same matches there). ``\\w`` under ``re.ASCII``
is ``[A-Za-z0-9_]``: the same set as written out, tested a third faster."""
_URL: Final = re.compile(r"(?i)https?://([^\s/\"'<>:?#\[\]()]+)")
MAX_TOKENS: Final = 3000
MIN_TRAINED: Final = 5
"""Messages of each class needed before the classifier has an opinion."""
TRAINED_TTL: Final = 5.0
"""Seconds ``Bayes.trained`` trusts its last look at the totals."""
TOKENIZER: Final = 2
"""Version of ``tokens`` (SQLite ``user_version``): 1 was accented words only."""
SEED_PATH: Final = Path(__file__).with_name("data") / "bayes-seed.json"


_PIECE: Final = 16_384
"""Characters of text folded and tokenised at a time (``_word_tokens``)."""
_BATCH: Final = 512
"""Words whose tokens are added at once while far from ``MAX_TOKENS``."""


def _word_tokens(text: str, folding: Callable[[str], Folded] = fold) -> set[str]:
    """Each word of ``fold(text).plain`` and each pair of adjacent words (as
    ``"first second"``), in order, until ``MAX_TOKENS`` (checked after each
    word and its pair).

    The text is folded a piece at a time, each piece ending just after a line
    feed (a word never spans one, and normalisation does not reach across it:
    the folded pieces joined are the folded text), so that a long text with
    many distinct words stops being folded once the limit is reached. Pairs
    are kept as tuples until the end (a word has no space, so a tuple and its
    string are one token, and a pair is never a word): a text repeating
    itself builds no string per repetition. While a batch of words cannot
    reach the limit its tokens go into the sets in C loops; only the batch
    that reaches it is walked word by word. Same tokens as one loop over all
    the words. ``folding``: ``fold`` or a ``FoldMemo`` that may have folded
    ``text`` already (the spam rules fold the same body text)."""
    if text.count("\n") >= _MANY_LINES:
        known = folding.peek(text) if isinstance(folding, FoldMemo) else None
        found = _repeated_line_tokens(text, None if known is None else known.plain)
        if found is not None:
            return found
    words_seen: set[str] = set()
    pairs: set[tuple[str, str]] = set()
    previous = ""
    start = 0
    done = False
    while start < len(text) and not done:
        end = text.rfind("\n", start, start + _PIECE) + 1 if start + _PIECE < len(text) else len(text)
        if end <= start:
            end = len(text)  # no line feed: the rest in one piece
        plain = folding(text[start:end]).plain
        # Vietnamese without its marks is ASCII: ASCII classes are cheaper to test.
        words = (_WORD_ASCII if plain.isascii() else _WORD).findall(plain)
        start = end
        for first in range(0, len(words), _BATCH):
            batch = words[first : first + _BATCH]
            new_words = set(batch).difference(words_seen)
            new_pairs = set(zip([previous, *batch[:-1]], batch, strict=True) if previous
                            else zip(batch, batch[1:], strict=False)).difference(pairs)
            if len(words_seen) + len(pairs) + len(new_words) + len(new_pairs) < MAX_TOKENS:
                words_seen |= new_words
                pairs |= new_pairs
                previous = batch[-1]
                continue
            for word in batch:
                words_seen.add(word)
                if previous:
                    pairs.add((previous, word))
                previous = word
                if len(words_seen) + len(pairs) >= MAX_TOKENS:
                    done = True
                    break
            if done:
                break
    words_seen.update(map(" ".join, pairs))
    return words_seen


_MANY_LINES: Final = 16
"""Lines from which a text's repeated lines are looked for."""
_LINES_AT_ONCE: Final = 256
"""Distinct lines folded at a time by ``_repeated_line_tokens``."""


def _repeated_line_tokens(text: str, plain: str | None = None) -> set[str] | None:
    """``_word_tokens(text)`` for a text of which at least half the lines
    repeat earlier ones (smtp-source's test bodies, quoted replies, tables,
    blank lines): each distinct line is folded and split into words once.
    Words never span a line feed and folding does not reach across one, so
    the words of the text are those of its distinct lines; the pairs are
    each distinct line's own and, in the order of the text, the last word of
    a line with words followed by the first word of the next such line. None
    (the caller's way) when few lines repeat or when there are ``MAX_TOKENS``
    tokens or more: then which ones are kept depends on their order.

    ``plain``: ``fold(text).plain`` when the caller has it; its lines are then
    the folded lines (a line's words depend only on its folded text)."""
    if plain is not None and plain.count("\n") == text.count("\n"):
        return _repeated_plain_tokens(plain.split("\n"))
    lines = text.split("\n")
    distinct = list(dict.fromkeys(lines))
    if len(distinct) * 2 > len(lines):
        return None
    words_seen: set[str] = set()
    pairs: set[tuple[str, str]] = set()
    first: dict[str, str] = {}
    last: dict[str, str] = {}
    for start in range(0, len(distinct), _LINES_AT_ONCE):
        chunk = distinct[start : start + _LINES_AT_ONCE]
        folded = fold("\n".join(chunk)).plain
        word = _WORD_ASCII if folded.isascii() else _WORD
        folded_lines = folded.split("\n")
        if len(folded_lines) != len(chunk):
            return None  # folding made or removed a line feed (it does not): the caller's way
        for line, plain in zip(chunk, folded_lines, strict=True):
            words = word.findall(plain)
            if words:
                words_seen.update(words)
                pairs.update(zip(words, words[1:], strict=False))
                first[line] = words[0]
                last[line] = words[-1]
        if len(words_seen) + len(pairs) >= MAX_TOKENS:
            return None
    with_words = list(filter(first.__contains__, lines))
    # The distinct pairs of lines first (their hashes are cached), then their words.
    adjacent = set(zip(with_words, with_words[1:], strict=False))
    pairs.update((last[line], first[following]) for line, following in adjacent)
    if len(words_seen) + len(pairs) >= MAX_TOKENS:
        return None
    words_seen.update(map(" ".join, pairs))
    return words_seen


def _repeated_plain_tokens(lines: list[str]) -> set[str] | None:
    """``_repeated_line_tokens`` of a text whose folded lines are ``lines``."""
    distinct = list(dict.fromkeys(lines))
    if len(distinct) * 2 > len(lines):
        return None
    words_seen: set[str] = set()
    pairs: set[tuple[str, str]] = set()
    first: dict[str, str] = {}
    last: dict[str, str] = {}
    word = _WORD_ASCII if all(map(str.isascii, distinct)) else _WORD
    for line in distinct:
        words = word.findall(line)
        if words:
            words_seen.update(words)
            pairs.update(zip(words, words[1:], strict=False))
            first[line] = words[0]
            last[line] = words[-1]
    with_words = list(filter(first.__contains__, lines))
    adjacent = set(zip(with_words, with_words[1:], strict=False))
    pairs.update((last[line], first[following]) for line, following in adjacent)
    if len(words_seen) + len(pairs) >= MAX_TOKENS:
        return None
    words_seen.update(map(" ".join, pairs))
    return words_seen


def tokens(
    text: str,
    subject: str = "",
    sender: str = "",
    hosts: Iterable[str] = (),
    folding: Callable[[str], Folded] = fold,
) -> set[str]:
    """The tokens of a message's body text, subject, From address and link
    hosts (found in ``text`` too). ``folding``: ``fold``, or the ``FoldMemo``
    of the message's spam rules (the same texts, folded once)."""
    found = _word_tokens(text[:500_000], folding)
    text = text[:500_000]
    # A case-blind regex has no literal to skip ahead with: a link needs "://"
    # (and ":", found by memchr: text without one skips the slower 3-character search).
    for host in [*(_URL.findall(text) if ":" in text and "://" in text else ()), *hosts]:
        found.add("url:" + host.rpartition("@")[2].lower())
    for word in _WORD.findall(folding(subject).plain):
        found.add("subject:" + word)
    if sender:
        found.add("from:" + sender.lower().rpartition("@")[2].rstrip(">"))
    return found


def message_tokens(raw: bytes) -> set[str]:
    """``tokens`` of a whole message, read as ``policy.extract.walk`` reads it
    for the spam check: text bodies, HTML bodies as their visible text and
    link hosts (so learned and classified tokens are the same)."""
    from policy.extract.formats import html_text

    msg = email.message_from_bytes(raw, policy=email.policy.default)
    parts: list[str] = []
    hosts: list[str] = []
    for part in msg.walk():
        if part.get_content_maintype() != "text" or part.get_content_disposition() == "attachment":
            continue
        try:
            content = str(part.get_content())
        except (LookupError, ValueError, AttributeError):
            continue
        if part.get_content_subtype() == "html":
            html = html_text(content)
            parts.extend(html.lines)
            hosts.extend(host for host, _ in html.links if host)
        else:
            parts.append(content)
    return tokens("\n".join(parts), str(msg.get("subject", "")), str(msg.get("from", "")), hosts)


@dataclass(frozen=True, slots=True)
class Seed:
    """Token counts learned elsewhere (the project's generated corpus)."""

    spam: int
    ham: int
    counts: Mapping[str, tuple[int, int]]

    @classmethod
    def load(cls, path: Path = SEED_PATH) -> Seed:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("tokenizer") != TOKENIZER:
            raise ValueError(f"{path}: seed made with tokenizer {data.get('tokenizer')}, this is {TOKENIZER}")
        counts = {token: (int(pair[0]), int(pair[1])) for token, pair in data["tokens"].items()}
        return cls(int(data["spam"]), int(data["ham"]), counts)

    @classmethod
    def from_messages(cls, spam: Iterable[bytes], ham: Iterable[bytes], min_count: int = 2) -> Seed:
        """Counts of the tokens seen in ``min_count`` messages or more (the
        others are noise: message numbers, random link paths)."""
        counts: dict[str, list[int]] = {}
        totals = [0, 0]
        for column, messages in ((0, spam), (1, ham)):
            for raw in messages:
                totals[column] += 1
                for token in message_tokens(raw):
                    counts.setdefault(token, [0, 0])[column] += 1
        return cls(totals[0], totals[1], {t: (c[0], c[1]) for t, c in counts.items() if sum(c) >= min_count})

    def to_json(self, generator: str) -> str:
        """Stable text (sorted, one token a line) so that a regenerated seed diffs cleanly."""
        lines = [
            f"  {json.dumps(t, ensure_ascii=False)}: [{s}, {h}]" for t, (s, h) in sorted(self.counts.items())
        ]
        return (
            "{\n"
            f'"generator": {json.dumps(generator)},\n"tokenizer": {TOKENIZER},\n'
            f'"spam": {self.spam},\n"ham": {self.ham},\n"tokens": {{\n' + ",\n".join(lines) + "\n}\n}\n"
        )


class Bayes:
    def __init__(self, path: Path, seed: Seed | None = None) -> None:
        self.seed = seed
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
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version != TOKENIZER:
            if self.totals() != (0, 0):
                log.warning(
                    "bayes: %s was trained with tokenizer %d (this is %d); its tokens no longer match:"
                    " retrain with 'mailserver spam train'",
                    path,
                    version or 1,
                    TOKENIZER,
                )
            else:
                self._db.execute(f"PRAGMA user_version = {TOKENIZER}")
        self._trained = False
        self._local = False
        self._seed_table: tuple[tuple[int, int], dict[str, float]] | None = None
        """``_seed_probs`` for the totals it was made for."""
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
        nspam, nham = int(row[0]), int(row[1])
        self._local = nspam >= MIN_TRAINED and nham >= MIN_TRAINED
        seed_spam, seed_ham = (self.seed.spam, self.seed.ham) if self.seed is not None else (0, 0)
        self._trained = nspam + seed_spam >= MIN_TRAINED and nham + seed_ham >= MIN_TRAINED
        self._trained_at = now
        return self._trained

    def local_trained(self) -> bool:
        """Whether this installation has learned enough by itself (not only
        the seed); as fresh as the last ``trained``."""
        self.trained()
        return self._local

    def classify(
        self, text: str, subject: str = "", sender: str = "", hosts: Iterable[str] = (),
        folding: Callable[[str], Folded] = fold,
    ) -> float | None:
        """``probability`` of the ``tokens`` of a text (blocking: run in a thread)."""
        return self.probability(tokens(text, subject, sender, hosts, folding))

    def classify_now(
        self, text: str, subject: str = "", sender: str = "", hosts: Iterable[str] = (),
        folding: Callable[[str], Folded] = fold,
    ) -> tuple[bool, float | None]:
        """``classify`` right here if the database is free at once, for the event
        loop and short texts (a thread hop costs more than the work): (True,
        probability); (False, None) while a training or another classification
        holds it (then ``classify`` in a thread)."""
        if not self._lock.acquire(blocking=False):
            return False, None
        try:
            return True, self._probability(tokens(text, subject, sender, hosts, folding))
        finally:
            self._lock.release()

    def _all_totals(self) -> tuple[int, int]:
        nspam, nham = self.totals()
        if self.seed is not None:
            return nspam + self.seed.spam, nham + self.seed.ham
        return nspam, nham

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
        """Spam probability in [0, 1], or None before enough training (the
        seed's counts and this installation's added up)."""
        with self._lock:
            return self._probability(toks)

    def _probability(self, toks: Iterable[str]) -> float | None:
        """``probability`` with the database lock held."""
        # One statement for the totals and whether this installation has
        # learned any token: without, the look-ups below would find nothing.
        row = self._db.execute(
            "SELECT spam, ham, EXISTS (SELECT 1 FROM tokens) FROM totals WHERE id = 1"
        ).fetchone()
        nspam, nham, learned = int(row[0]), int(row[1]), bool(row[2])
        if self.seed is not None:
            nspam, nham = nspam + self.seed.spam, nham + self.seed.ham
        if nspam < MIN_TRAINED or nham < MIN_TRAINED:
            return None
        if not learned and self.seed is not None and isinstance(toks, set | frozenset):
            # Only the seed's counts (and each token once, as ``tokens`` gives
            # them): each token's probability is looked up, made once for
            # these totals (``_probs`` of a message's 500 tokens: ~0.3 ms).
            table = self._seed_probs(self.seed, nspam, nham)
            probs = [p for p in map(table.get, toks) if p is not None]
        else:
            probs = self._probs(toks, learned, nspam, nham)
        probs = sorted(probs, key=lambda x: abs(x - 0.5), reverse=True)[:150]
        if not probs:
            return 0.5
        h = _chi2q(-2.0 * sum(math.log(p) for p in probs), 2 * len(probs))
        s = _chi2q(-2.0 * sum(math.log(1.0 - p) for p in probs), 2 * len(probs))
        return (1.0 + h - s) / 2.0

    def _seed_probs(self, seed: Seed, nspam: int, nham: int) -> dict[str, float]:
        """The probability ``_probs`` gives each seed token alone when this
        installation has learned no token, for these totals (they change as
        it trains), for the tokens it keeps (far enough from 0.5): made by
        ``_probs`` itself, a token at a time, once (4,500 tokens, ~15 ms).
        The caller holds the lock."""
        if self._seed_table is not None and self._seed_table[0] == (nspam, nham):
            return self._seed_table[1]
        table: dict[str, float] = {}
        for token in seed.counts:
            probs = self._probs((token,), False, nspam, nham)
            if probs:
                table[token] = probs[0]
        self._seed_table = ((nspam, nham), table)
        return table

    def _probs(self, toks: Iterable[str], learned: bool, nspam: int, nham: int) -> list[float]:
        """Each token's probability (Robinson's f(w), clamped to [0.01, 0.99])
        from its counts here and in the seed, for the tokens with counts
        whose f is more than 0.1 from 0.5, in the order of ``toks``."""
        toks = list(toks)
        counts: dict[str, tuple[int, int]] = {}
        for start in range(0, len(toks) if learned else 0, 500):
            batch = toks[start : start + 500]
            marks = ",".join("?" * len(batch))
            query = f"SELECT token, spam, ham FROM tokens WHERE token IN ({marks})"  # noqa: S608 - only "?"s
            rows = self._db.execute(query, batch).fetchall()
            counts.update({r[0]: (int(r[1]), int(r[2])) for r in rows})
        if self.seed is not None:
            for token in toks:
                seeded = self.seed.counts.get(token)
                if seeded is not None:
                    local = counts.get(token, (0, 0))
                    counts[token] = (local[0] + seeded[0], local[1] + seeded[1])
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
        return probs


def _chi2q(x2: float, v: int) -> float:
    """P(chi-square with v degrees of freedom >= x2), v even (SpamBayes chi2Q)."""
    m = x2 / 2.0
    total = term = math.exp(-m)
    for i in range(1, v // 2):
        term *= m / i
        total += term
    return min(total, 1.0)

# ruff: noqa: E501
"""The labelled corpus through the policy pipeline API, with precision and
recall per category, for both splits of ``tests/policy/corpus.py``: ``tune``
(what the rules were tuned on) and ``heldout`` (other templates and
documents, another seed; the honest figures). The same corpus goes over real
SMTP in ``test_corpus_smtp.py``.

Goals (issue 18): classified and malware all refused, no ordinary message
refused or filed as spam, at least 90% of spam stopped (refused or Junk)."""

from __future__ import annotations

from pathlib import Path

import pytest

from policy.context import Direction, EnvelopeInfo, PolicyContext, SessionInfo
from policy.pipeline import Pipeline
from policy.settings import PolicySettings
from policy.verdict import Action, Outcome
from tests.policy import corpus

CATEGORIES = ("classified", "malware", "spam")


def predicted(outcome: Outcome) -> str:
    decided = outcome.decided_by
    if decided is not None and decided.action is Action.REJECT and decided.check in CATEGORIES:
        return decided.check
    if outcome.junk:
        return "spam"
    if outcome.action is Action.REJECT or outcome.action is Action.TEMPFAIL:
        return f"other:{decided.check if decided else '?'}"
    return "negative"


SPAM_GOAL = 0.90
MINIMUM = {  # samples per category: the fresh split is a smaller, last-written supplement
    "tune": {"classified": 60, "negative": 140, "spam": 70, "malware": 15},
    "heldout": {"classified": 28, "negative": 100, "spam": 50, "malware": 15},
    "fresh": {"classified": 8, "negative": 40, "spam": 40, "malware": 4},
}


def summary(split: str, path: str, results: list[tuple[corpus.Sample, str]]) -> str:
    """One line per run, quoted in the README: what was stopped of each kind."""
    def stopped(category: str) -> tuple[int, int]:
        chosen = [p for s, p in results if s.category == category]
        return sum(1 for p in chosen if p == category), len(chosen)

    spam, classified, malware = stopped("spam"), stopped("classified"), stopped("malware")
    negatives = [p for s, p in results if s.category == "negative"]
    wrong = sum(1 for p in negatives if p != "negative")
    return (f"corpus {split} via {path}: spam stopped {spam[0]}/{spam[1]} ({100 * spam[0] / spam[1]:.1f}%), "
            f"ordinary mail stopped {wrong}/{len(negatives)}, classified refused {classified[0]}/{classified[1]}, "
            f"malware refused {malware[0]}/{malware[1]}")


def check_goals(results: list[tuple[corpus.Sample, str]]) -> None:
    """Classified and malware exact, no false positive, spam >= SPAM_GOAL."""
    wrong = [(s.category, s.name, p) for s, p in results if p != s.category and s.category != "spam"]
    assert not wrong
    spam = [p for s, p in results if s.category == "spam"]
    assert sum(1 for p in spam if p == "spam") >= SPAM_GOAL * len(spam)
    assert all(p != "classified" for s, p in results if s.category != "classified")


@pytest.mark.parametrize("split", corpus.SPLITS)
async def test_corpus_precision_recall(split: str, tmp_path: Path) -> None:
    samples = corpus.build(split)
    pipeline = Pipeline.from_settings(PolicySettings(workers=2), data_dir=tmp_path,
                                      local_domains=["dongnai.gov.vn"])
    results: list[tuple[corpus.Sample, str, Outcome]] = []
    try:
        for sample in samples:
            ctx = PolicyContext(SessionInfo("203.0.113.5", "mx.example.org", session_id=sample.name),
                                EnvelopeInfo(sample.sender, ["nhan@dongnai.gov.vn"]), Direction.INBOUND,
                                {"spf": "none"})
            outcome = await pipeline.check_data(ctx, sample.data)
            results.append((sample, predicted(outcome), outcome))
    finally:
        await pipeline.close()
    wrong = [(s.category, s.name, p, o.reasons) for s, p, o in results if p != s.category]
    print()
    for category in CATEGORIES:
        tp = sum(1 for s, p, _ in results if s.category == category and p == category)
        fp = sum(1 for s, p, _ in results if s.category != category and p == category)
        fn = sum(1 for s, p, _ in results if s.category == category and p != category)
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        print(f"{category:10s} n={tp + fn:3d} precision={precision:.3f} recall={recall:.3f} (tp={tp} fp={fp} fn={fn})")
    negatives = [(s, p) for s, p, _ in results if s.category == "negative"]
    print(f"negative   n={len(negatives):3d} false positives={sum(1 for _, p in negatives if p != 'negative')}")
    for item in wrong:
        print("MISMATCH", item)
    print(summary(split, "pipeline", [(s, p) for s, p, _ in results]))
    check_goals([(s, p) for s, p, _ in results])
    counts = {c: sum(1 for s in samples if s.category == c) for c in ("classified", "negative", "spam", "malware")}
    assert counts == {c: max(counts[c], n) for c, n in MINIMUM[split].items()}, counts

# ruff: noqa: E501
"""The labelled corpus through the policy pipeline API, with precision and
recall per category.

``mailserver/smtp`` does not call the pipeline yet (the lead wires it in), so
the corpus runs through ``Pipeline.check_data`` only, not over SMTP."""

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


@pytest.fixture(scope="module")
def samples() -> list[corpus.Sample]:
    return corpus.build()


async def test_corpus_precision_recall(samples: list[corpus.Sample], tmp_path: Path) -> None:
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
    assert not wrong
    # The hard negatives: zero false positives of the classified check.
    assert all(p != "classified" for s, p, _ in results if s.category != "classified")
    counts = {c: sum(1 for s in samples if s.category == c) for c in ("classified", "negative", "spam", "malware")}
    assert counts["classified"] >= 30 and counts["negative"] >= 50 and counts["spam"] >= 20
    assert counts["malware"] >= 15

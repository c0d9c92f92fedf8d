"""``mailserver spam train|status|check`` as operators run them (subprocess),
and the shipped seed model being exactly what its documented script writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.policy import corpus

ROOT = Path(__file__).resolve().parents[2]


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailserver", "--config", str(config), "spam", *args],
        capture_output=True, text=True, timeout=300, check=False,
    )


def config_file(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "mailserver.toml"
    path.write_text(f'[server]\ndata_dir = "{tmp_path / "data"}"\n{extra}', encoding="utf-8")
    return path


def test_check_status_and_train(tmp_path: Path) -> None:
    samples = corpus.realmail("heldout")
    spam = [s for s in samples if s.category == "spam"]
    ham = [s for s in samples if s.category == "negative"]
    phish = next(s for s in spam if s.name == "heldout-spam-bank_transfer-0")
    notice = next(s for s in ham if s.name == "heldout-negative-bank_fee_notice-0")
    (tmp_path / "phish.eml").write_bytes(phish.data)
    (tmp_path / "notice.eml").write_bytes(notice.data)
    config = config_file(tmp_path)

    status = cli(config, "status", "--json")
    assert status.returncode == 0, status.stderr
    before = json.loads(status.stdout)
    assert before["mode"] == "seed" and before["learned"] == {"spam": 0, "ham": 0}

    checked = cli(config, "check", str(tmp_path / "phish.eml"), str(tmp_path / "notice.eml"), "--json")
    assert checked.returncode == 0, checked.stderr
    first, second = json.loads(checked.stdout)
    assert first["verdict"] == "reject" and first["score"] >= 12
    names = {rule["name"] for rule in first["rules"]}
    assert {"URI_BRAND_LOOKALIKE", "LINK_TEXT_MISMATCH", "FROM_IMITATION"} <= names
    assert second["verdict"] == "inbox" and second["score"] < 5
    text = cli(config, "check", str(tmp_path / "phish.eml"))
    assert text.returncode == 0 and "-> reject" in text.stdout and "URI_BRAND_LOOKALIKE" in text.stdout

    # Learning here: the classifier leaves the capped seed mode.
    for folder, chosen in (("spam", spam[:6]), ("ham", ham[:6])):
        (tmp_path / folder).mkdir()
        for sample in chosen:
            (tmp_path / folder / f"{sample.name}.eml").write_bytes(sample.data)
    trained = cli(config, "train", "--spam", str(tmp_path / "spam"), "--ham", str(tmp_path / "ham"))
    assert trained.returncode == 0, trained.stderr
    assert "learned 6 spam and 6 ham" in trained.stdout
    after = json.loads(cli(config, "status", "--json").stdout)
    assert after["mode"] == "local" and after["learned"] == {"spam": 6, "ham": 6}
    rechecked = json.loads(cli(config, "check", str(tmp_path / "phish.eml"), "--json").stdout)[0]
    assert not any(rule["name"].startswith("BAYES_SEED") for rule in rechecked["rules"])


def test_without_seed_and_bad_input(tmp_path: Path) -> None:
    config = config_file(tmp_path, "[policy.spam]\nbayes_seed = false\n")
    status = cli(config, "status")
    assert status.returncode == 0 and "untrained" in status.stdout and "seed model" not in status.stdout
    missing = cli(config, "check", str(tmp_path / "nope.eml"))
    assert missing.returncode == 1 and "cannot read" in missing.stderr and "Traceback" not in missing.stderr
    no_dirs = cli(config, "train")
    assert no_dirs.returncode == 1 and "--spam DIR" in no_dirs.stderr and "Traceback" not in no_dirs.stderr
    not_dir = cli(config, "train", "--spam", str(tmp_path / "nope"))
    assert not_dir.returncode == 1 and "not a directory" in not_dir.stderr


def test_shipped_seed_is_what_the_script_writes() -> None:
    result = subprocess.run([sys.executable, "-m", "tests.policy.make_bayes_seed", "--check"], cwd=ROOT,
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr

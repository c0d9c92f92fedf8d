"""Write the Bayes seed model the server ships, ``policy/data/bayes-seed.json``.

    python -m tests.policy.make_bayes_seed           # (re)write the file
    python -m tests.policy.make_bayes_seed --check   # exit 1 if it differs

The seed is learned from mail the project generates, nothing copied from
outside: the spam and ordinary-mail templates of the TUNING set
(``tests/policy/realmail_tune.py``), each rendered ``RENDERINGS`` times from
``SEED`` -- another seed than the corpus tests use, so the seed model has not
seen the exact messages it is measured on, and never the held-out templates
(``realmail_heldout.py``). ``tests/policy/test_bayes_seed.py`` fails if the
committed file is not what this script writes.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

from policy.bayes import SEED_PATH, Seed
from tests.policy import realmail_tune

SEED = 4242
RENDERINGS = 3
GENERATOR = (
    "python -m tests.policy.make_bayes_seed (realmail_tune templates, seed 4242, 3 renderings x 2 variants)"
)


def build() -> Seed:
    rng = random.Random(SEED)
    spam: list[bytes] = []
    ham: list[bytes] = []
    for _ in range(RENDERINGS):
        for out, templates in ((spam, realmail_tune.spam_templates()), (ham, realmail_tune.ham_templates())):
            for template in templates:
                for variant in (0, 1):
                    out.append(template(rng, variant).to_bytes(rng))
    return Seed.from_messages(spam, ham)


def main(argv: list[str]) -> int:
    text = build().to_json(GENERATOR)
    path = Path(SEED_PATH)
    if "--check" in argv:
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            print(f"{path} is not what {GENERATOR.split(' (')[0]} writes", file=sys.stderr)
            return 1
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}: {text.count(chr(10)) - 6} tokens")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

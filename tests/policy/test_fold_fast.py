"""``policy.rules.normalize.fold`` skips its ``str.translate`` passes when a
regex search or NFD shows they would change nothing: the results must be the
very ones of the general path (the spam rules and Bayes tokens depend on them)."""

from __future__ import annotations

import random
import re
import unicodedata
from pathlib import Path

import pytest

from policy import bayes
from policy.rules import normalize
from policy.rules import phrases as phrases_module
from policy.rules.normalize import _DROP_COMBINING, _DROP_FORMAT, _STRIP, CONFUSABLE_TABLE, Folded, fold

LETTER_DIGIT = re.compile(r"[a-z][0-9@$]|[0-9@$][a-z]")
"""``phrases._LETTER_DIGIT`` as it was first written."""


def general_fold(text: str) -> Folded:
    """``fold`` as it was written before the fast paths: every pass on every text."""
    text = unicodedata.normalize("NFKC", text)
    hidden = 0
    if not text.isascii() and len(text.translate(_DROP_FORMAT)) != len(text):
        kept: list[str] = []
        for i, char in enumerate(text):
            if unicodedata.category(char) == "Cf":
                if 0 < i < len(text) - 1 and text[i - 1].isalpha() and text[i + 1].isalpha():
                    hidden += 1
                continue
            kept.append(char)
        text = "".join(kept)
    mixed: list[str] = []
    if not text.isascii():
        if normalize._GREEK_CYRILLIC.search(text):
            for word in normalize._WORD.findall(text):
                scripts = {normalize._script(c) for c in word}
                if "latin" in scripts and scripts & {"cyrillic", "greek"}:
                    mixed.append(word)
        text = text.translate(CONFUSABLE_TABLE)
    accented = unicodedata.normalize("NFC", text.casefold())
    if accented.isascii():
        return Folded(accented, accented, hidden, tuple(mixed))
    accented = accented.translate(_DROP_COMBINING)
    plain = accented.translate(_STRIP)
    letters = sum(map(str.isalpha, accented))
    marked = len(accented) - len(accented.encode("ascii", "ignore"))
    return Folded(accented, plain, hidden, tuple(mixed), letters > 0 and marked * 12 >= letters)


def test_format_character_ranges_are_unicodedata_s() -> None:
    found = [c for c in range(0x110000) if unicodedata.category(chr(c)) == "Cf"]
    assert [c for c in found if not normalize.has_format_char(chr(c))] == []
    assert not any(normalize.has_format_char(chr(c)) for c in (0x41, 0xE9, 0x1EA1, 0x1F600, 0x20000))
    assert sum(b - a + 1 for a, b in normalize._cf_ranges()) == len(found)


def test_every_simply_decomposed_letter_strips_as_the_table_says() -> None:
    """The NFD path's premise, for every code point it accepts."""
    seen = 0
    for code in range(0x80, 0x110000):
        char = chr(code)
        if 0xD800 <= code < 0xE000 or unicodedata.combining(char):
            continue
        decomposed = unicodedata.normalize("NFD", char.replace("đ", "d").replace("Đ", "d"))
        if normalize._NOT_SIMPLE.search(decomposed):
            continue
        seen += 1
        base = decomposed.encode("ascii", "ignore").decode()
        assert (len(base), base, base.isalpha()) == (1, _STRIP[code], char.isalpha()), hex(code)
    assert seen > 400  # Latin letters with diacritics, Vietnamese's among them


def test_every_other_base_strips_as_the_table_says() -> None:
    """The premise of the NFD path for text with other characters too (curly
    quotes, dashes, Cyrillic, Greek...): a character whose NFD is one base
    other than ASCII and marks of the block is stripped to that base by the
    table, and is a letter exactly when its base is one."""
    seen = 0
    for code in range(0x80, 0x110000):
        char = chr(code)
        if 0xD800 <= code < 0xE000 or unicodedata.combining(char) or char in "đĐ":
            continue
        decomposed = unicodedata.normalize("NFD", char)
        base = normalize._MARK.sub("", decomposed)
        if len(base) != 1 or base.isascii() or unicodedata.combining(base):
            continue
        seen += 1
        assert (_STRIP[code], base.isalpha()) == (base, char.isalpha()), hex(code)
    assert seen > 100_000


SAMPLES = [
    "Trúng thưởng 100 triệu đồng! Nhấn vào đây: http://vi.example/nhan-thuong",
    "ĐẠI HỘI ĐẢNG BỘ TỈNH ĐỒNG NAI lần thứ XI",
    "Vіetcombаnk thông báo tài khoản bị khoá",  # Cyrillic і and а
    "tru\u200bng thu\u200bong",  # zero-width spaces inside words
    "e\u0301\u0301 a\u0300 standalone marks \u0301 after a space",
    "한국어 텍스트와 tiếng Việt",  # Hangul decomposes into several jamo
    "a\u034fb CGJ, ≠ ≮ signs, ﬁ ligature, Ｖｉｅｔ full width, 𝐕𝐢𝐞𝐭",
    "Straße ǅ ǈ ΐ ẛ ῼ İstanbul Ω K Å",
    "ɡoogle ԛ ԝ һ ӏ Greek αβγ mixed with latin",
    "\u00ad soft hyphen, \ufeff BOM, \u2066isolate\u2069",
    "Quyết định “số 70” – về việc sử dụng hộp thư… ký tên: Nguyễn Văn A",
    "Привет мир, Ελληνικά ά ǿ й, and 中文 with tiếng Việt",
    "가\u0301",  # two jamo and a mark of no letter: the length alone would not tell
    "가\u0301 tiếng “Việt”",
    "x\u0303 “a”",  # a mark that composes with nothing
    "\u09cb \u0f73 “a” \u05d0\u05b7 ễ",  # several bases, marks only, marks outside the block
    "",
    "plain ascii only, nothing to do",
]


@pytest.mark.parametrize("text", SAMPLES)
def test_fast_paths_agree_with_the_general_one(text: str) -> None:
    assert fold(text) == general_fold(text)


def test_fast_paths_agree_on_random_text() -> None:
    rng = random.Random(20261205)
    alphabet = (
        "abcdeđĐghiklmnopqrstuvxyAĂÂEÊIOÔƠUƯáàảãạăắằẳẵặâấầẩẫậéèẻẽẹêếềểễệíìỉĩịóòỏõọôốồổỗộơớờởỡợúùủũụưứừửữựýỳỷỹỵ"
        " \n\t.,!?0123456789"
        "\u0300\u0301\u0303\u0309\u0323\u200b\u00adаеорсіαοε한ß≠ﬁＶ𝐕\u034f"
        "“”–…가øǿйά\u09cb\u0f73\u05b7中"
    )
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        assert fold(text) == general_fold(text), repr(text)


def general_tokens(text: str) -> set[str]:
    """``policy.bayes``'s word tokens as one loop over the whole folded text."""
    found: set[str] = set()
    previous = ""
    for word in bayes._WORD.findall(general_fold(text[:500_000]).plain):
        found.add(word)
        if previous:
            found.add(f"{previous} {word}")
        previous = word
        if len(found) >= bayes.MAX_TOKENS:
            break
    return found


def _text(rng: random.Random, words: int, vocabulary: int, line: int) -> str:
    syllables = ["trúng", "thưởng", "vay", "tiền", "nhanh", "đồng", "nai", "công", "văn", "số", "liệu",
                 "báo", "cáo", "tuần", "của", "đơn", "vị", "gửi", "kèm", "hợp", "la", "bank", "click"]
    vocab = ["".join(rng.choice(syllables) for _ in range(rng.randint(1, 3))) + str(i % 7) * (i % 2)
             for i in range(vocabulary)]
    out = []
    for i in range(words):
        out.append(rng.choice(vocab))
        out.append("\r\n" if i % line == line - 1 else " ")
    return "".join(out)


@pytest.mark.parametrize(("words", "vocabulary", "line"), [
    (50, 20, 10), (40_000, 30, 12), (40_000, 5_000, 9), (40_000, 50_000, 15), (120_000, 400, 1_000_000),
    (20_000, 2_000, 1),
])
def test_word_tokens_agree_with_one_loop(words: int, vocabulary: int, line: int) -> None:
    text = _text(random.Random(words + vocabulary + line), words, vocabulary, line)
    want = general_tokens(text)
    assert bayes._word_tokens(text[:500_000]) == want
    assert want <= bayes.tokens(text, "Tiêu đề", "a@b.example")


def _repeating(rng: random.Random, lines: int, pool: int, vocabulary: int) -> str:
    """``lines`` lines drawn from ``pool`` distinct ones (blank ones, lines
    without words and with CRLF among them)."""
    syllables = ["trúng", "thưởng", "vay", "tiền", "ĐỒNG", "nai", "Công", "văn", "X" * 40, "x1x", "“số”"]
    vocab = [
        "".join(rng.choice(syllables) for _ in range(rng.randint(1, 2))) + str(i % 5) * (i % 3)
        for i in range(vocabulary)
    ]
    kinds = ["", "\r", "-- 123 --", " . "]
    choices = [
        rng.choice(kinds)
        if i % 4 == 0
        else " ".join(rng.choice(vocab) for _ in range(rng.randint(1, 9))) + rng.choice(["", "\r"])
        for i in range(pool)
    ]
    return "\n".join(rng.choice(choices) for _ in range(lines))


@pytest.mark.parametrize(
    ("lines", "pool", "vocabulary"),
    [
        (2_500, 11, 30),
        (3_000, 60, 200),
        (4_000, 400, 100),
        (4_000, 1_500, 2_000),
        (5_000, 2_000, 20),
        (1_000, 900, 50),
        (20_000, 3, 3),
    ],
)
def test_repeated_line_tokens_agree_with_one_loop(lines: int, pool: int, vocabulary: int) -> None:
    rng = random.Random(lines + pool + vocabulary)
    text = _repeating(rng, lines, pool, vocabulary)
    assert len(text) > bayes._PIECE
    assert bayes._word_tokens(text[:500_000]) == general_tokens(text)  # as ``tokens`` calls it


def test_repeated_line_tokens_at_the_token_limit() -> None:
    """Just under ``MAX_TOKENS`` the distinct lines give the tokens; at the
    limit the order decides which are kept (the caller's way)."""
    seen = set()
    for count in range(740, 760):  # 4 tokens a line: 2 words, their pair, the pair with the next line
        distinct = [f"w{i}a w{i}b" for i in range(count)]
        text = "\n".join(distinct * 8)
        fast = bayes._repeated_line_tokens(text)
        want = general_tokens(text)
        assert bayes._word_tokens(text) == want
        seen.add(fast is None)
        if fast is not None:
            assert fast == want and len(want) < bayes.MAX_TOKENS
    assert seen == {True, False}


def test_leet_word_pattern_matches_as_the_backtracking_one() -> None:
    from policy.rules import phrases

    backtracking = re.compile(r"\b(?=\w*[a-z])(?=\w*[0-9@$])[\w@$]{4,}\b")
    rng = random.Random(17)
    for alphabet in ("ab1@$_ x9Zé.-\n٣", "aaaa1111@@$$__", "xyz0 @$", "a1"):
        for _ in range(5000):
            text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
            assert phrases._LEET_WORD.findall(text) == backtracking.findall(text), repr(text)


def test_leet_words_once_each_find_what_all_of_them_find() -> None:
    """``leet_words`` gives each word once: ``find`` must find the same in it as
    in every word in order (a word has no space, and no negatable phrase lacks one)."""
    from policy.rules import phrases
    from policy.rules.normalize import Folded

    assert all(" " in phrases._key(p) for t in phrases.TOPICS if t.negatable for p in t.phrases)

    def every_word(plain: str) -> str:
        if LETTER_DIGIT.search(plain) is None:
            return ""
        return "\n".join(phrases._LEET_WORD.findall(plain)).translate(phrases._LEET_TABLE)

    rng = random.Random(6)
    words = (
        "v1agra c1alis w88 fb88 b3t 8xbet 0tp m4_0tp n3ver sh4re 3nter d0nt pa$$word l0tt3ry w1nn3r x1"
        " 1xxxxxxxx viagra never share otp ma free fr33 m1ll10n d0llars _b3t b3t_ sv388 hi88 188bet 789b3t"
    ).split()
    seps = [" ", " ", "\n", ". ", ", ", "\t", " - "]
    found_any = 0
    for _ in range(3000):
        plain = "".join(rng.choice(words) + rng.choice(seps) for _ in range(rng.randint(1, 25)))
        once, every = phrases.leet_words(plain), every_word(plain)
        assert len(once) <= len(every)
        want = phrases.find([Folded.of_plain(every)] if every else [])
        assert phrases.find([Folded.of_plain(once)] if once else []) == want, plain
        found_any += bool(want.phrases)
    assert found_any > 1000


def general_find(texts: list[str]) -> phrases_module.Found:
    """``policy.rules.phrases.find`` as it was written before the repeated-lines path."""
    p = phrases_module
    found: dict[str, set[str]] = {}
    for text in texts:
        folded = fold(text)
        plain = folded.plain
        if not plain.strip():
            continue
        negated: list[tuple[int, int]] | None = None
        for end_index, ids in p._AUTOMATON.iter(plain):
            for entry_id in ids:
                topic_index, key, accented, exact = p._ENTRIES[entry_id]
                start = end_index - len(key) + 1
                if not p._boundary(plain, start, end_index + 1):
                    continue
                if exact and folded.has_marks and folded.accented[start : end_index + 1] != accented:
                    continue
                topic = p.TOPICS[topic_index]
                if topic.negatable:
                    if negated is None:
                        negated = p._negated_spans(plain)
                    if any(a <= start < b for a, b in negated):
                        continue
                found.setdefault(topic.name, set()).add(key)
    return p.Found(found)


PHRASE_LINES = [
    "Bạn đã trúng thưởng một chiếc xe",
    "ban da trung thuong",
    "Nhà cái uy tín, cá cược bóng đá",
    "nha cai ca cuoc",
    "cả cuộc đời",
    "Vui lòng nhập mã OTP để xác minh tài khoản",
    "Không bao giờ cung cấp",
    "mã OTP cho bất kỳ ai.",
    "Ngân hàng không yêu cầu nhập mật khẩu",
    "never share your password",
    "Please enter your password now",
    "V1agra and c1alis, fr33 pills",
    "1XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
    "2XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
    "Trân trọng,",
    "",
    "vay tiền nhanh, giải ngân trong 24 giờ",
    "Dear friend, next of kin, million dollars",
]


@pytest.mark.parametrize("seed", range(12))
def test_find_on_repeated_lines_agrees_with_the_general_one(seed: int) -> None:
    rng = random.Random(seed)
    pool = rng.sample(PHRASE_LINES, rng.randint(2, len(PHRASE_LINES)))
    if seed % 3 == 0:  # only lines without a phrase that can be negated: the distinct-lines path decides
        negatable = ("otp", "password", "mật")
        pool = [line for line in pool if not any(word in line.lower() for word in negatable)]
        pool = pool or ["1XXXX", "cả cuộc đời"]
    lines = [rng.choice(pool) for _ in range(rng.choice([10, 70, 200, 700]))]
    text = ("\r\n" if seed % 2 else "\n").join(lines)
    folded = fold(text)
    assert phrases_module.find([folded]) == general_find([text])
    assert phrases_module.find([text, "nhập OTP"]) == general_find([text, "nhập OTP"])
    leet = phrases_module.leet_words(folded.plain)
    every = "\n".join(phrases_module._LEET_WORD.findall(folded.plain)).translate(phrases_module._LEET_TABLE)
    assert phrases_module.find([Folded.of_plain(leet)]) == phrases_module.find([Folded.of_plain(every)])


def test_find_on_repeated_lines_leaves_negation_to_the_text_in_order() -> None:
    """A line's phrase that can be negated depends on the lines before it: the
    second "cung cấp mã OTP" is not negated, its first copy is."""
    far = "một hai ba bốn năm sáu bảy tám"  # more words than a negation reaches over
    lines = ["Không", "cung cấp mã OTP", far, "cung cấp mã OTP", *["1XXXX"] * 100]
    text = "\n".join(lines)
    want = general_find([text])
    assert want.count("ASK_CREDENTIALS") and not general_find(["\n".join(lines[:2])]).count("ASK_CREDENTIALS")
    assert phrases_module.find([text]) == want


def test_hints_are_found_in_each_distinct_line_as_in_the_text() -> None:
    """The spam rules look for their hints (chat, money) in ``distinct_lines``
    of a text and leet words in ``lines_once``: found there exactly when found
    in the text."""
    from policy.rules import engine

    rng = random.Random(7)
    pieces = "zalo za lo tele t.me t. me $ usd us million v1agra x 0 a".split() + [" ", "\n", "\n", "\n"]
    seen = seen_distinct = 0
    for _ in range(2000):
        sizes = [rng.randint(0, 6) for _ in range(rng.randint(1, 8))]
        pool = ["".join(rng.choice(pieces) for _ in range(size)) for size in sizes]
        text = "\n".join(rng.choice(pool) for _ in range(rng.randint(1, 200)))
        once = phrases_module.lines_once(text)
        seen += once != text
        folded = fold(text)
        distinct = phrases_module.distinct_lines(folded)
        seen_distinct += distinct is not None
        assert any(w in text for w in engine._MONEY_WORDS) == bool(engine._MONEY_HINT.search(text))
        for hint in (engine._CHAT_HINT, engine._MONEY_HINT):
            assert (hint.search(once) is None) == (hint.search(text) is None), repr(text)
            if distinct is not None:
                assert (hint.search(distinct.plain) is None) == (hint.search(folded.plain) is None), text
        every = "\n".join(phrases_module._LEET_WORD.findall(text)).translate(phrases_module._LEET_TABLE)
        want = set(every.split("\n")) if LETTER_DIGIT.search(text) else {""}
        assert set(phrases_module.leet_words(once).split("\n")) == want, repr(text)
    assert seen > 500 and seen_distinct > 500


def general_leet_words(plain: str) -> str:
    """``phrases.leet_words`` before it looked only at lines with a digit, @ or $."""
    p = phrases_module
    if LETTER_DIGIT.search(plain) is None:
        return ""
    return "\n".join(dict.fromkeys(p._LEET_WORD.findall(p.lines_once(plain)))).translate(p._LEET_TABLE)


def test_leet_words_in_digit_lines_as_in_all_lines() -> None:
    """The letter-digit test written from the digit finds what the alternation
    finds, and ``leet_words`` the words it found in every line, in order."""
    rng = random.Random(23)
    pieces = ["a", "b1", "x", "@", "$", "_", "é", "٣", "7", " ", " ", "\n", "\n", "-", "v1agra", "fr33", "qđ",
              "\t", "\xa0", "\u3000", "\x1c", "\x85", "\r", ".", "'"]
    seen = chosen = 0
    for _ in range(20_000):
        long = rng.random() < 0.1  # more than ``_FEW_PIECES``: only the pieces with a digit are searched
        size = rng.randint(600, 2500) if long else rng.randint(0, 60)
        text = "".join(rng.choice(pieces) for _ in range(size))
        if rng.random() < 0.1:
            text = "\n".join([text] * 20)  # many lines: ``lines_once`` too
        pieces_text = "\n".join(phrases_module.lines_once(text).split())
        chosen += long and len(pieces_text) > phrases_module._FEW_PIECES
        gate = phrases_module._LETTER_DIGIT.search(text)
        assert (gate is None) == (LETTER_DIGIT.search(text) is None), text
        assert phrases_module.leet_words(text) == general_leet_words(text), repr(text)
        seen += bool(general_leet_words(text))
    assert seen > 5_000 and chosen > 1_000
    assert phrases_module._digit_lines("ab\nc1\n\nd$e\n9") == "c1\nd$e\n9"
    assert phrases_module._digit_lines("no digit\nhere") == ""


def test_fold_memo_folds_each_text_object_once() -> None:
    memo = normalize.FoldMemo()
    text = "Bạn đã trúng thưởng " * 3
    first = memo(text)
    assert first == fold(text) and memo(text) is first and memo.peek(text) is first
    equal = "".join(list(text))  # another object with the same value: folded again, the same result
    assert equal is not text and memo.peek(equal) is None and memo(equal) == first


@pytest.mark.parametrize(
    ("lines", "pool", "vocabulary"),
    [(2_500, 11, 30), (3_000, 60, 200), (4_000, 400, 100), (1_000, 900, 50), (20_000, 3, 3), (40, 4, 10)],
)
def test_tokens_from_the_rules_fold_agree_with_one_loop(lines: int, pool: int, vocabulary: int) -> None:
    """With the text already folded (the spam rules' ``FoldMemo``), the
    repeated lines' tokens are taken from its folded lines: the same tokens."""
    rng = random.Random(lines * pool + vocabulary)
    text = _repeating(rng, lines, pool, vocabulary)
    cut = text[:500_000]  # as ``tokens`` calls it
    memo = normalize.FoldMemo()
    memo(cut)
    assert bayes._word_tokens(cut, memo) == general_tokens(text)
    subject, sender = "Tiêu đề", "a@b.example"
    assert bayes.tokens(text, subject, sender, (), memo) == bayes.tokens(text, subject, sender)
    assert bayes._repeated_line_tokens(text, fold(text).plain) == bayes._repeated_line_tokens(text)


def test_tokens_from_the_rules_fold_at_the_token_limit() -> None:
    seen = set()
    for count in range(740, 760):
        text = "\n".join([f"w{i}a w{i}b" for i in range(count)] * 8)
        fast = bayes._repeated_line_tokens(text, fold(text).plain)
        memo = normalize.FoldMemo()
        memo(text)
        assert bayes._word_tokens(text, memo) == general_tokens(text)
        seen.add(fast is None)
        assert fast == bayes._repeated_line_tokens(text)
    assert seen == {True, False}


def test_seed_probabilities_looked_up_as_computed(tmp_path: Path) -> None:
    """Without tokens learned here, a token set's probability comes from the
    seed's per-token table: the very value ``_probs`` gives (a list takes it),
    also once the totals change."""
    classifier = bayes.Bayes(tmp_path / "bayes.sqlite", bayes.Seed.load())
    try:
        seed_tokens = sorted(classifier.seed.counts) if classifier.seed else []
        rng = random.Random(5)
        made_for = []
        for round_ in range(3):
            for _ in range(300):
                toks = set(rng.sample(seed_tokens, rng.randint(0, 400)))
                toks |= {f"unknown{rng.randint(0, 50)}" for _ in range(rng.randint(0, 20))}
                fast = classifier._probability(toks)
                assert fast == classifier._probability(list(toks)) and fast is not None
            assert classifier._seed_table is not None
            made_for.append(classifier._seed_table[0])
            classifier.learn_tokens([], is_spam=round_ == 0)  # the totals change, no token learned
        assert len(set(made_for)) == 3
    finally:
        classifier.close()


def test_ascii_word_pattern_is_the_class_written_out() -> None:
    written_out = re.compile(r"[A-Za-z][A-Za-z0-9_'-]{1,30}")
    rng = random.Random(8)
    alphabet = "aZ09_'- .\né٣ß" + "x" * 5
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))
        assert bayes._WORD_ASCII.findall(text) == written_out.findall(text), repr(text)


def test_normalised_a_line_at_a_time_as_a_whole() -> None:
    """A line feed composes with nothing and comes from no decomposition:
    long text normalised a line at a time is the text normalised whole."""
    alphabet = (
        "a e o u d Đ đ ơ ư \n \n \r \t \u0301 \u0300 \u0309 \u0303 \u0323 \u0302 \u031b \u0344 \u0345 \xa0 "
        "\u2026 \ufb01 \u212b \u1100 \u1161 \u11a8 \uac00 \u3000 \uff21 \u00bd \u0958 \u1e9b \u0387 ệ Ủ ß İ"
    ).split(" ")
    rng = random.Random(31)
    lined = 0
    for _ in range(3000):
        # Lines of 1 to 60 characters: some above ``_LINE_CHARACTERS`` on average, some below.
        alphabet[0] = "\n" if rng.random() < 0.3 else "a"
        weights = [rng.randint(1, 60)] + [1] * (len(alphabet) - 1)
        text = "".join(rng.choices(alphabet, weights, k=rng.randint(200, 900)))
        assert normalize._normalized(normalize._NFKC, text) == unicodedata.normalize("NFKC", text), repr(text)
        assert normalize._normalized(normalize._NFC, text) == unicodedata.normalize("NFC", text), repr(text)
        folded = fold(text)
        assert folded == general_fold(text), repr(text)
        lined += 0 < text.count("\n") * normalize._LINE_CHARACTERS <= len(text)
    assert 500 < lined < 2500


def test_simple_addresses_parse_as_parseaddr_parses_them() -> None:
    from email.utils import parseaddr

    from policy.rules import engine

    pieces = [
        "a", "Bob", "Nguyễn", "Văn", "An", "x1", "_", "+", "-", ".", "..", "@", "@", "<", ">", "<", ">",
        " ", " ", "  ", "\t", "\r\n", '"', "(c)", ",", ";", ":", "[1.2.3.4]", "example", "org", "vn", "É",
        "ß", "ﬁ", "٣", "\xa0", "=?utf-8?q?x?=",
    ]
    shapes = ["{n} <{a}>", "{n}<{a}>", "<{a}>", "{a}", " {a} ", "{n} {n} <{a}>", "{n}  <{a}> ", "\t<{a}>\t"]
    rng = random.Random(12)
    fast = 0
    for _ in range(60_000):
        def part(count: int) -> str:
            return "".join(rng.choice(pieces) for _ in range(rng.randint(0, count)))

        if rng.random() < 0.7:
            address = f"{part(3)}@{part(3)}" if rng.random() < 0.5 else "sender@example.org"
            name = rng.choice(["", "Bob", "Nguyễn Văn An", "Ban quản trị", part(4)])
            value = rng.choice(shapes).format(n=name, a=address)
        else:
            value = part(12)
        assert engine.parse_address(value) == parseaddr(value), repr(value)
        fast += engine._SIMPLE_ADDRESS.fullmatch(value) is not None
    assert fast > 15_000


def test_a_part_without_a_name_has_the_name_decoding_gives() -> None:
    """``walk._filename`` answers "" for a part without a name without decoding it."""
    import email
    import email.header
    import email.policy

    from policy.extract import walk

    assert str(email.header.make_header(email.header.decode_header(""))) == ""
    for head in (
        "Content-Type: text/plain",
        'Content-Type: text/plain; name=""',
        "Content-Disposition: attachment; filename*=utf-8''",
        "Content-Type: text/plain; name==?utf-8?q??=",
    ):
        part = email.message_from_string(head + "\n\nx", policy=email.policy.compat32)
        assert walk._filename(part) == str(email.header.make_header(email.header.decode_header(
            str(part.get_filename() or part.get_param("name") or ""))))

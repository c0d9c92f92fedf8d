"""Phrase topics of the spam rules and the one-pass matcher over them.

Each ``Topic`` is a rule name and the phrases that make it fire, written as
people write them (Vietnamese with its diacritics, English). They are matched
on ``policy.rules.normalize.fold`` output: case-folded, look-alike letters
mapped, zero-width characters gone, and *without diacritics*, so that
"Ban da trung thuong" matches "bạn đã trúng thưởng". A phrase written with a
leading ``=`` is one whose unmarked form is also an ordinary phrase ("cá cược"
/ "cả cuộc"): in a text written with its diacritics it must match them too.

Matches are whole words (no letter or digit on either side). Phrases of a
``negatable`` topic do not count in a sentence that says not to do it
("Vietcombank không bao giờ yêu cầu cung cấp mã OTP", "never share your
password"): warnings from banks and agencies use the phishers' words.

The automaton (pyahocorasick, Aho-Corasick) finds every phrase of every topic
in one pass over the text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

import ahocorasick  # type: ignore[import-not-found,import-untyped,unused-ignore]

from policy.rules.normalize import Folded, fold


@dataclass(frozen=True, slots=True)
class Topic:
    name: str
    description: str
    phrases: tuple[str, ...]
    negatable: bool = False


def _t(name: str, description: str, phrases: str, *, negatable: bool = False) -> Topic:
    return Topic(name, description, tuple(p.strip() for p in phrases.split("|") if p.strip()), negatable)


TOPICS: Final = (
    # -- pretexts and requests (what phishing asks for) ------------------------------------
    _t(
        "ASK_CREDENTIALS",
        "asks for a password, OTP, ID card or to log in through a link",
        "nhập mã otp | nhập otp | mã otp | mã xác thực otp | cung cấp mã otp | nhập mật khẩu | "
        "mật khẩu hiện tại | giữ nguyên mật khẩu | giữ mật khẩu | đăng nhập bằng số cccd | "
        "đăng nhập để | đăng nhập lại | đăng nhập ví | xác minh tài khoản | xác thực tài khoản | "
        "xác nhận tài khoản | xác minh danh tính | xác thực lại | xác thực khuôn mặt | "
        "xác thực lại khuôn mặt | xác thực sinh trắc học | cập nhật sinh trắc học | ảnh cccd | "
        "ảnh chân dung | số cccd | liên kết tài khoản | mã pin | quét mã qr | xác nhận hộp thư | "
        "xác nhận thông tin tài khoản | keep same password | keep your current password | "
        "keep your password | confirm your password | verify your account | sign in to view | "
        "sign in with your | login details | confirming your current | confirm your identity | "
        "enter your password | update your account",
        negatable=True,
    ),
    _t(
        "ACCOUNT_THREAT",
        "threatens to lock, suspend or delete an account or mailbox",
        "sẽ bị khóa | bị tạm khóa | tạm khóa | khóa tài khoản | bị khóa tài khoản | bị vô hiệu hóa | "
        "bị thu hồi | bị phong tỏa | phong tỏa tài khoản | tạm ngừng giao dịch | "
        "gián đoạn giao dịch | khóa 2 chiều | khóa 1 chiều | bị hủy quyền lợi | sẽ bị hủy | "
        "bị trả lại | tạm hoãn xuất cảnh | cưỡng chế | tạm giữ phương tiện | ngừng hoạt động | "
        "hết hạn hôm nay | hết hạn trong | sắp hết hạn | đã đầy | vượt quá dung lượng | dung lượng | "
        "will be suspended | will be deactivated | will be deleted | will be closed | "
        "will be returned | expires today | deactivate your | deactivation | mailbox is full | "
        "quota | pending messages | thư đang chờ | bị giữ lại | đăng nhập bất thường | thiết bị lạ | "
        "will be processed within",
    ),
    _t(
        "URGENCY",
        "presses for time",
        "trong vòng 24 giờ | trong 24 giờ | trong vòng 48 giờ | trong 48 giờ | sau 24 giờ | "
        "sau 12 giờ | 48 giờ | ngay hôm nay | ngày hôm nay | trước 17h | chỉ còn hiệu lực | "
        "chỉ hôm nay | ngay lập tức | hành động ngay | khẩn cấp | ngay bây giờ | trong 15 phút | "
        "có hạn | within 24 hours | within 48 hours | 24 hours | 48 hours | immediately | act now | "
        "action required | final notice | urgent | offer ends | limited time | 2 days",
    ),
    _t(
        "ASK_PAYMENT",
        "asks to pay a fee or to transfer money",
        "phí vận chuyển | phí giao hàng | phí lưu kho | phí trước bạ | phí nhận thưởng | "
        "phí thông quan | nộp phí | thanh toán phí | phí duy trì | thanh toán ngay | "
        "nộp phạt trực tuyến | nộp phạt | tài khoản cá nhân | chuyển khoản về | số tài khoản | "
        "customs fee | delivery fee | shipping fee | pay the fee | pay now | processing fee | "
        "insurance fee | send any amount | in bitcoin | bitcoin wallet | btc address | "
        "article processing charge",
    ),
    # -- what the phishing pretends to be --------------------------------------------------
    _t(
        "STATE_SERVICE",
        "speaks as a state service (police, tax, social insurance, courts, certificates)",
        "vneid | định danh điện tử | cơ sở dữ liệu quốc gia về dân cư | bộ công an | công an | "
        "cảnh sát | csgt | phạt nguội | cục thuế | tổng cục thuế | hoàn thuế | nợ thuế | thuế tncn | "
        "bảo hiểm xã hội | bhxh | vssid | trợ cấp | ban cơ yếu | chứng thư số | chữ ký số | "
        "usb token | giấy triệu tập | triệu tập | vụ án | tòa án | viện kiểm sát | "
        "cơ quan điều tra | dịch vụ công | vnnic | tên miền | điện lực | tiền điện | thuê bao | "
        "chuẩn hóa thông tin | c06",
    ),
    _t(
        "BANK_WALLET",
        "speaks as a bank or e-wallet",
        "vietcombank | bidv | techcombank | vietinbank | agribank | mb bank | mbbank | sacombank | "
        "tpbank | vpbank | acb | ngân hàng | ví điện tử | ví momo | momo | zalopay | viettel money | "
        "viettelpay | vnpay | shopeepay | internet banking | ebanking | giao dịch chuyển tiền | "
        "chuyển tiền | số dư",
    ),
    _t(
        "MAIL_ADMIN",
        "speaks as the recipient's own mail system or Microsoft 365",
        "hộp thư | quản trị hệ thống | quản trị mail | email administrator | mail delivery | "
        "it help desk | it support | microsoft 365 | office 365 | outlook | onedrive | sharepoint | "
        "microsoft teams | voicemail | docusign | shared a file | shared a document | "
        "sent you a document | mailbox | webmail | email account",
    ),
    # -- kinds of spam -------------------------------------------------------------------
    _t(
        "PRIZE",
        "prize, lottery or gift",
        "trúng thưởng | trúng giải | quay số may mắn | khách hàng may mắn | nhận thưởng | "
        "nhận giải | nhận quà | phần quà | quà tặng | tri ân khách hàng | hoàn tiền | tặng ngay | "
        "chúc mừng bạn | xin chúc mừng | you have won | you've won | winner | claim your prize | "
        "congratulations | lottery | giveaway",
    ),
    _t(
        "LOAN",
        "fast loans",
        "vay tiền | vay nhanh | vay tín chấp | vay online | vay tiêu dùng | giải ngân | "
        "không thẩm định | không cần thế chấp | chỉ cần cccd | hạn mức | nợ xấu | lãi suất 0% | "
        "duyệt hồ sơ | không chứng minh thu nhập | không gọi người thân | app vay",
    ),
    _t(
        "GAMBLING",
        "online casino and betting",
        "=nhà cái | =cá cược | casino | nổ hũ | =bắn cá | tài xỉu | =lô đề | soi kèo | kèo nhà cái | "
        "tỷ lệ kèo | đá gà | nạp đầu | thưởng nạp | tặng 100k | hoàn trả không giới hạn | "
        "rút tiền siêu tốc | xổ số siêu tốc | 1 ăn 99 | cá độ | game bài | 8xbet | fb88 | hi88 | "
        "kubet | sv388 | 789bet | w88 | 188bet | bet",
    ),
    _t(
        "SEO",
        "SEO and backlink selling",
        "backlink | guest post | top google | top 1 google | seo | link building | dofollow | pbn | "
        "traffic | first page of google | seo errors | website audit | da 50 | da 60 | high da | "
        "high authority | entity social",
    ),
    _t(
        "FAKE_DEGREE",
        "fake degrees and certificates",
        "làm bằng | =làm bằng đại học | bằng đại học | phôi thật | phôi chuẩn | không cần thi | "
        "không cần học | không cần đi học | không cần lên lớp | cam kết đầu ra | cấp chứng chỉ | "
        "cấp nhanh chứng chỉ | hồ sơ gốc | nâng ngạch | có tên trong danh sách tra cứu | "
        "tra cứu được",
    ),
    _t(
        "JOB_SCAM",
        "\"light work, high pay\" jobs and task scams",
        "việc nhẹ lương cao | cộng tác viên | ctv | tuyển ctv | làm tại nhà | làm việc tại nhà | "
        "kiếm thêm | hoa hồng | chốt đơn | =làm nhiệm vụ | không cần kinh nghiệm | trả lương ngay | "
        "trả lương trong ngày | nhận việc qua | nhận việc ngay | like sản phẩm | like video | "
        "đánh giá shop | đánh giá khách sạn | nhập liệu tại nhà | xem video tiktok | việc làm thêm | "
        "thu nhập 500k | 500k/ngày | /ngày",
    ),
    _t(
        "DATA_SALE",
        "sale of personal data",
        "data khách hàng | bán data | mua data | kho data | data chủ doanh nghiệp | "
        "data bất động sản | quét data | data cán bộ | data 2 triệu | giá chỉ từ 500đ/số | "
        "danh sách số điện thoại | data theo ngành",
    ),
    _t(
        "ADVANCE_FEE",
        "advance-fee fraud",
        "next of kin | beneficiary | barrister | inheritance | compensation | atm card | "
        "atm master card | million | deposit of | consignment | attorney | late mr | risk free | "
        "100% risk free | share the same surname | united nations | payment office | funds will be | "
        "dear friend | your full name",
    ),
    _t(
        "PARCEL",
        "parcel or delivery pretext",
        "your parcel | your package | parcel is on hold | package is on hold | unable to deliver | "
        "delivery failed | redelivery | tracking number | bưu phẩm | giao không thành công | "
        "giao hàng không thành công | đơn hàng | lưu kho | giao lại | xác nhận lại địa chỉ",
    ),
    _t(
        "CRYPTO",
        "crypto-currency schemes",
        "bitcoin | usdt | ethereum | crypto | airdrop | tiền ảo | tiền điện tử | trading bot | "
        "double back | doubled their money | withdrawal | tín hiệu | sàn giao dịch",
    ),
    _t(
        "INVESTMENT",
        "investment scams",
        "lợi nhuận | cam kết không lỗ | hoàn tiền nếu thua lỗ | nhóm zalo | chuyên gia | "
        "mã cổ phiếu | tăng trần | nhận mã miễn phí | nhà đầu tư | cổ phiếu tiềm năng | earn | "
        "profit | investors",
    ),
    _t(
        "PHARMA",
        "pharmacy spam",
        "viagra | cialis | pills | no prescription | pharmacy | meds | tăng cường sinh lý | "
        "giảm cân cấp tốc | thuốc giảm cân | weight loss | lose weight | giảm cân",
    ),
    _t(
        "SEXTORTION",
        "sextortion",
        "webcam | recorded you | adult website | adult videos | video of you | your contacts | "
        "spyware | malware on | is your password | gained access to your device | "
        "send the recording | delete the video | delete everything",
    ),
    _t(
        "MARKETING",
        "mass-marketing wording",
        "khuyến mãi | giảm giá | ưu đãi | miễn phí | đăng ký ngay | số lượng có hạn | 100% | free | "
        "discount | best price | order now | đặt hàng | bấm vào | click here | unsubscribe | "
        "hủy đăng ký",
    ),
    _t(
        "WARNING_ADVICE",
        "an anti-fraud warning (lowers the score)",
        "không bao giờ yêu cầu | không yêu cầu | tuyệt đối không | cảnh báo thủ đoạn | cảnh giác | "
        "lừa đảo | giả mạo | giả danh | never ask | will never ask | do not share",
    ),
)  # fmt: skip

_NEGATION: Final = re.compile(
    r"\b(?:khong|chang|chua|never|not|dont|don't|do not)\b(?:\s+\S+){0,6}?\s+"
    r"(?:cung cap|nhap|gui|chia se|bam|nhan vao|truy cap|dang nhap|cai dat|yeu cau|"
    r"provide|share|enter|click|send|give|disclose|ask)\b"
)
_SENTENCE_END: Final = re.compile(r"[.!?;\n]")


def _key(phrase: str) -> str:
    return fold(phrase.lstrip("=")).plain


def _build() -> tuple[Any, list[tuple[int, str, str, bool]]]:
    """The automaton over every phrase's plain form; values index ``entries``
    (topic index, plain phrase, accented phrase, accents required)."""
    automaton = ahocorasick.Automaton()
    entries: list[tuple[int, str, str, bool]] = []
    seen: dict[str, list[int]] = {}
    for index, topic in enumerate(TOPICS):
        for phrase in topic.phrases:
            key = _key(phrase)
            entries.append((index, key, fold(phrase.lstrip("=")).accented, phrase.startswith("=")))
            seen.setdefault(key, []).append(len(entries) - 1)
    for key, ids in seen.items():
        automaton.add_word(key, tuple(ids))
    automaton.make_automaton()
    return automaton, entries


_AUTOMATON, _ENTRIES = _build()


def _negated_spans(plain: str) -> list[tuple[int, int]]:
    """From each "do not give/enter/share..." to the end of its sentence."""
    spans = []
    for match in _NEGATION.finditer(plain):
        end = _SENTENCE_END.search(plain, match.end())
        spans.append((match.start(), end.start() if end else len(plain)))
    return spans


def _boundary(text: str, start: int, end: int) -> bool:
    """Whole words: no letter or digit next to a phrase edge that is one."""
    if text[start].isalnum() and start > 0 and text[start - 1].isalnum():
        return False
    return not (text[end - 1].isalnum() and end < len(text) and text[end].isalnum())


@dataclass(slots=True)
class Found:
    """Distinct phrases found per topic name."""

    phrases: dict[str, set[str]]

    def count(self, topic: str) -> int:
        return len(self.phrases.get(topic, ()))

    def examples(self, topic: str, n: int = 3) -> list[str]:
        return sorted(self.phrases.get(topic, ()))[:n]


# Digits written for letters inside a word ("V1agra", "fr33"): read as letters.
_LEET_WORD: Final = re.compile(r"\b(?=[^\Wa-z]*[a-z])(?=[^\W0-9]*[0-9@$])[\w@$]{4,}\b")
"""A word of four or more with a letter and a digit (or @ $). The look-aheads
find the first such character without backtracking (a word-character run
before it would go to the word's end and back: 3x slower on long words),
same matches."""
_LEET_TABLE: Final = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
)


_LEET_BYTES: Final = bytes.maketrans(b"013457@$", b"oieastas")


def deleet(plain: str) -> str:
    """``plain`` with the words that mix letters and digits read as letters."""
    return _LEET_WORD.sub(lambda m: m.group(0).translate(_LEET_TABLE), plain)


_LETTER_DIGIT: Final = re.compile(r"[0-9@$](?:(?<=[a-z].)|(?=[a-z]))")
"""A letter next to a digit (or @ $): ``[a-z][0-9@$]|[0-9@$][a-z]`` written to
begin with the digit, so that the search skips to digits in a C loop (the
alternation tried both branches at every character: 40 ns each)."""
_DIGITISH: Final = re.compile(r"[0-9@$]")


_FEW_PIECES: Final = 1024
"""Characters of pieces up to which they are all searched (choosing costs more)."""


def _digit_lines(text: str) -> str:
    """The lines of ``text`` that have a digit, @ or $, in order: the only
    ones a ``_LEET_WORD`` can be in (a word with one of them, or just before
    an @ or $), which matches within lines (no character of a match nor of
    its look-aheads is a line feed, and ``\\b`` sees a line feed as it sees
    either end of the text). The caller has put each piece of text between
    white space on a line of its own: a short one to search."""
    found: list[str] = []
    search = _DIGITISH.search
    position = 0
    while (match := search(text, position)) is not None:
        start = text.rfind("\n", 0, match.start()) + 1
        end = text.find("\n", match.end())
        if end < 0:
            found.append(text[start:])
            break
        found.append(text[start:end])
        position = end + 1
    return "\n".join(found)


def leet_words(plain: str) -> str:
    """Only the words of ``plain`` that mix letters and digits, read as
    letters, one a line and each once (what ``find`` needs to see through
    "V1agra"). Once is enough: a word has no space and no phrase that can be
    negated is without one (tests/policy), so what ``find`` finds in a word is
    the same wherever and however often the word stands. The words are looked
    for in each distinct line once (a word never spans a line feed), and only
    in the pieces between white space that have a digit, @ or $ (each piece
    put on a line of its own: ``_digit_lines``). No character of a match nor
    of what its look-aheads read is white space, and ``\\b`` sees the line
    feed between two pieces as it saw the white space (neither is a word
    character)."""
    if _LETTER_DIGIT.search(plain) is None:  # most text: no word to look at
        return ""
    pieces = "\n".join(lines_once(plain).split())
    if len(pieces) > _FEW_PIECES:
        pieces = _digit_lines(pieces)
    words = "\n".join(dict.fromkeys(_LEET_WORD.findall(pieces)))
    if words.isascii():  # one C pass over bytes instead of a dict look-up per character
        return words.encode("ascii").translate(_LEET_BYTES).decode("ascii")
    return words.translate(_LEET_TABLE)


_MANY_LINES: Final = 16
"""Lines from which a text's repeated lines are worth looking for (a split
and a dict of 16 lines cost less than searching a few of them again)."""


def lines_once(text: str) -> str:
    """``text`` with each line once (its first place) if it has many: what
    is searched for within lines (words, phrases, substrings without a line
    feed) is found in it as in ``text``, but not how often or in which order."""
    if text.count("\n") < _MANY_LINES:
        return text
    return "\n".join(dict.fromkeys(text.split("\n")))


def distinct_lines(folded: Folded) -> Folded | None:
    """``folded`` with each line once (its first place), when at least half
    its lines repeat earlier ones; else None. Its plain text holds every line
    of ``folded.plain``: what is found within lines is found in it."""
    if folded.plain.count("\n") < _MANY_LINES:
        return None
    accented = folded.accented.split("\n")
    # The accented line decides the plain one (one character each, a line feed
    # only for a line feed): the last index of each distinct accented line.
    index = dict(zip(accented, range(len(accented)), strict=True))
    if len(index) * 2 > len(accented):
        return None
    if folded.plain is folded.accented:
        plain = accented_text = "\n".join(index)
    else:
        lines = folded.plain.split("\n")
        plain = "\n".join([lines[i] for i in index.values()])
        accented_text = "\n".join(index)
    return Folded(accented_text, plain, folded.hidden_in_words, folded.mixed_words, folded.has_marks)


def _scan(folded: Folded, found: dict[str, set[str]], *, negation: bool) -> bool:
    """Add the phrases of ``folded`` to ``found``. Without ``negation`` (text
    whose lines are not in their places), False as soon as a phrase that can
    be negated is met: whether it is depends on the sentence around it."""
    plain = folded.plain
    negated: list[tuple[int, int]] | None = None
    marks = folded.has_marks
    for end_index, ids in _AUTOMATON.iter(plain):
        for entry_id in ids:
            topic_index, key, accented, exact = _ENTRIES[entry_id]
            start = end_index - len(key) + 1
            if not _boundary(plain, start, end_index + 1):
                continue
            if exact and marks and folded.accented[start : end_index + 1] != accented:
                continue
            topic = TOPICS[topic_index]
            if topic.negatable:
                if not negation:
                    return False
                if negated is None:
                    negated = _negated_spans(plain)
                if any(a <= start < b for a, b in negated):
                    continue
            found.setdefault(topic.name, set()).add(key)
    return True


def find(texts: Iterable[str | Folded]) -> Found:
    """The phrases of each topic in ``texts``."""
    folded = [text if isinstance(text, Folded) else fold(text) for text in texts]
    return find_folded((f, distinct_lines(f)) for f in folded)


def find_folded(texts: Iterable[tuple[Folded, Folded | None]]) -> Found:
    """``find`` of folded texts, each with its ``distinct_lines``: a text most
    of whose lines repeat (a phrase never spans a line feed) is searched a
    distinct line at a time, unless a phrase that can be negated is in it."""
    found: dict[str, set[str]] = {}
    for folded, distinct in texts:
        if not folded.plain or folded.plain.isspace():  # (``strip`` would copy the text)
            continue
        if distinct is not None:
            some: dict[str, set[str]] = {}
            if _scan(distinct, some, negation=False):
                for name, keys in some.items():
                    found.setdefault(name, set()).update(keys)
                continue
        _scan(folded, found, negation=True)
    return Found(found)

# ruff: noqa: E501 - markup and sample text read best on one line
"""Building blocks of the realistic spam and ordinary-mail corpus
(``tests/policy/realmail_tune.py``, ``tests/policy/realmail_heldout.py``).

Messages are made as mailers and spam kits make them: multipart/alternative
with an HTML part built from tables, inline styles, remote logos, tracking
pixels and redirect links, or plain text only; display names in RFC 2047,
Vietnamese with and without its diacritics. Spam evasions are applied the way
spammers apply them (``no_marks``, ``homoglyphs``, ``zero_width``), and the
link hosts are generated (look-alike, IDN, shortener, brand under a foreign
domain) from a seeded ``random.Random``: one seed, one corpus, byte for byte
except the Message-ID randomness which is seeded too.
"""

from __future__ import annotations

import html as _html
import random
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

RECIPIENT = "nhan@dongnai.gov.vn"
RECIPIENT_NAME = "Nguyễn Văn Nhân"

GIVEN = ["An", "Bình", "Cường", "Dũng", "Hà", "Hải", "Hạnh", "Hoa", "Hùng", "Hương", "Lan", "Linh", "Long", "Mai",
         "Minh", "Nam", "Nga", "Phong", "Phương", "Quân", "Sơn", "Tâm", "Thảo", "Thắng", "Thủy", "Trang", "Tuấn", "Vy"]
FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô", "Dương"]
MIDDLE = ["Văn", "Thị", "Minh", "Hữu", "Thanh", "Ngọc", "Quốc", "Đức", "Thu", "Xuân"]

# Latin letters and the Cyrillic / Greek letters drawn the same (Unicode
# confusables, the ones phishing kits use).
CONFUSABLE = {"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "x": "х", "y": "у", "i": "і", "k": "κ",
              "A": "А", "B": "В", "E": "Е", "H": "Н", "K": "К", "M": "М", "O": "О", "P": "Р", "C": "С", "T": "Т"}
SHORTENERS = ["bit.ly", "tinyurl.com", "cutt.ly", "rb.gy", "s.id", "t.ly", "is.gd", "shorturl.at"]
SPAM_TLDS = ["top", "xyz", "online", "site", "icu", "vip", "shop", "live", "cc", "info", "click", "cfd", "sbs"]


def no_marks(text: str) -> str:
    """Vietnamese without its diacritics, as typed on a phone without a Vietnamese keyboard."""
    text = text.replace("đ", "d").replace("Đ", "D")
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


def homoglyphs(text: str, rng: random.Random, rate: float = 0.5) -> str:
    return "".join(CONFUSABLE[c] if c in CONFUSABLE and rng.random() < rate else c for c in text)


def zero_width(text: str, rng: random.Random) -> str:
    """A zero-width space or joiner inside some words."""
    out = []
    for word in text.split(" "):
        if len(word) > 4 and rng.random() < 0.5:
            cut = rng.randrange(1, len(word) - 1)
            word = word[:cut] + rng.choice(["\u200b", "\u200c", "\u200d", "\u2060"]) + word[cut:]
        out.append(word)
    return " ".join(out)


def person(rng: random.Random) -> str:
    return f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}"


def ascii_slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", no_marks(text).lower())


def token(rng: random.Random, n: int = 8) -> str:
    return "".join(rng.choice("abcdefghijkmnpqrstuvwxyz23456789") for _ in range(n))


def amount(rng: random.Random, low: int, high: int, step: int = 1000) -> str:
    value = rng.randrange(low // step, high // step) * step
    return f"{value:,}".replace(",", ".")


def phone(rng: random.Random) -> str:
    return "0" + rng.choice(["9", "8", "3", "7"]) + "".join(str(rng.randrange(10)) for _ in range(8))


def lookalike(rng: random.Random, brand: str) -> str:
    """A host imitating ``brand`` the ways phishing kits do."""
    form = rng.randrange(6)
    tld = rng.choice(SPAM_TLDS)
    word = rng.choice(["xacthuc", "secure", "login", "verify", "update", "hotro", "online", "capnhat", "service", "id"])
    if form == 0:
        return f"{brand}-{word}.{tld}"
    if form == 1:
        return f"{word}-{brand}.{tld}"
    if form == 2:
        return f"{brand}.com.vn.{word}-{token(rng, 4)}.{tld}"
    if form == 3:  # one letter swapped for a look-alike
        swaps = [("o", "0"), ("l", "1"), ("i", "l"), ("m", "rn"), ("a", "4"), ("e", "3")]
        old, new = next(((o, n) for o, n in swaps if o in brand), ("a", "4"))
        return f"{brand.replace(old, new, 1)}.{rng.choice(['com', 'net', tld])}"
    if form == 4:  # IDN with a Cyrillic letter, written as punycode
        idn = homoglyphs(brand, random.Random(brand), 0.6)
        if idn == brand:
            idn = brand.replace("o", "о", 1).replace("a", "а", 1)
        return idn.encode("idna").decode("ascii") + "." + rng.choice(["com", "net"])
    return f"{brand}{rng.choice(['vn', '24h', 'online', 'app', 'vip'])}.{tld}"


def shortener(rng: random.Random) -> str:
    return f"https://{rng.choice(SHORTENERS)}/{token(rng, 7)}"


def foreign(rng: random.Random) -> str:
    """A throw-away host with nothing to do with the brand (compromised sites, free hosting)."""
    words = ["green", "sun", "tech", "home", "flower", "daily", "best", "smart", "cloud", "blue", "garden", "auto"]
    return f"{rng.choice(words)}{rng.choice(words)}{rng.randrange(10, 99)}.{rng.choice(SPAM_TLDS + ['com', 'net', 'org'])}"


def esc(text: str) -> str:
    return _html.escape(text, quote=False)


# -- HTML as mailers write it -----------------------------------------------------------
def page(inner: str, *, title: str = "", preheader: str = "", width: int = 600) -> str:
    pre = (f'<div style="display:none;max-height:0;overflow:hidden">{esc(preheader)}</div>' if preheader else "")
    return (
        "<!DOCTYPE html><html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\">"
        f"<meta name=\"viewport\" content=\"width=device-width\"><title>{esc(title)}</title>"
        "<style>body{margin:0;padding:0;font-family:Arial,Helvetica,sans-serif}td{font-size:14px;line-height:20px}</style>"
        f"</head><body style=\"background:#f2f2f2\">{pre}<table width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\">"
        f"<tr><td align=\"center\"><table width=\"{width}\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\" style=\"background:#ffffff\">"
        f"{inner}</table></td></tr></table></body></html>"
    )


def row(content: str, style: str = "padding:16px 24px") -> str:
    return f'<tr><td style="{style}">{content}</td></tr>'


def paras(lines: list[str]) -> str:
    return "".join(row(f'<p style="margin:0">{esc(line)}</p>', "padding:6px 24px") for line in lines)


def logo(url: str, alt: str) -> str:
    return row(f'<img src="{url}" alt="{esc(alt)}" width="160" height="48" style="display:block;border:0">',
               "padding:20px 24px;border-bottom:3px solid #0b6e4f")


def button(url: str, text: str, color: str = "#0b6e4f") -> str:
    return row(f'<a href="{url}" target="_blank" style="display:inline-block;background:{color};color:#ffffff;'
               f'padding:12px 28px;border-radius:4px;text-decoration:none;font-weight:bold">{esc(text)}</a>',
               "padding:18px 24px;text-align:center")


def pixel(url: str) -> str:
    return f'<img src="{url}" width="1" height="1" alt="" style="display:block">'


def footer(lines: list[str], links: list[tuple[str, str]] = ()) -> str:
    anchors = " | ".join(f'<a href="{u}" style="color:#888">{esc(t)}</a>' for u, t in links)
    text = "<br>".join(esc(line) for line in lines)
    return row(f'<span style="color:#888;font-size:11px">{text}<br>{anchors}</span>', "padding:16px 24px;background:#fafafa")


def html_to_text(markup: str) -> str:
    """The text alternative mailers derive from their HTML."""
    markup = re.sub(r"(?is)<(style|title)[^>]*>.*?</\1>", "", markup)
    markup = re.sub(r'(?is)<div style="display:none[^"]*">.*?</div>', "", markup)
    markup = re.sub(r'(?is)<a [^>]*href="([^"]+)"[^>]*>(.*?)</a>', r"\2 [\1]", markup)
    markup = re.sub(r"(?i)<br\s*/?>|</p>|</tr>|</h\d>|</li>", "\n", markup)
    text = _html.unescape(re.sub(r"<[^>]+>", "", markup))
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return "\n".join(line for line in lines if line)


# -- the message ----------------------------------------------------------------------
@dataclass
class Mail:
    from_name: str
    from_addr: str
    subject: str
    text: str | None = None
    html: str | None = None
    to: str = RECIPIENT
    to_name: str = ""
    reply_to: str | None = None
    envelope: str | None = None
    """MAIL FROM; the From address when None."""
    attachments: list[tuple[str, bytes, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    text_alternative: bool = True
    """With ``html``: add the text/plain alternative derived from it."""

    def to_bytes(self, rng: random.Random) -> bytes:
        msg = EmailMessage()
        msg["From"] = Address(self.from_name, addr_spec=self.from_addr) if self.from_name else self.from_addr
        msg["To"] = Address(self.to_name, addr_spec=self.to) if self.to_name else self.to
        msg["Subject"] = self.subject
        when = datetime(2025, 3, 3, 1, 0, tzinfo=UTC) + timedelta(minutes=rng.randrange(0, 60 * 24 * 120))
        msg["Date"] = format_datetime(when)
        domain = self.from_addr.rpartition("@")[2]
        msg["Message-ID"] = f"<{token(rng, 12)}.{token(rng, 6)}@{domain}>"
        if self.reply_to:
            msg["Reply-To"] = self.reply_to
        msg["MIME-Version"] = "1.0"
        for key, value in self.headers.items():
            msg[key] = value
        if self.html is not None:
            if self.text_alternative:
                msg.set_content(self.text if self.text is not None else html_to_text(self.html))
                msg.add_alternative(self.html, subtype="html")
            else:
                msg.set_content(self.html, subtype="html")
        else:
            msg.set_content(self.text or "")
        for name, data, ctype in self.attachments:
            maintype, _, subtype = ctype.partition("/")
            if maintype == "text":
                msg.add_attachment(data.decode("utf-8"), subtype=subtype, filename=name)
            else:
                msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
        return msg.as_bytes()

"""The spam rules: each has a name and a score; ``evaluate`` returns the
ones that fire for a message, with what made them fire. The sum is the
message's score (``policy.checks.spam`` adds Bayes and external scanners).

Scores are set so that no single ordinary feature of legitimate mail (a
newsletter's tracked links, a bank's warning about OTPs, a tax office
writing about tax refunds, a colleague typing without diacritics) reaches
``tag_score`` (5) alone: spam is recognised by a *pretext* (topic phrases)
together with a *means* (a look-alike link, a credential form, a chat
contact, an impersonated sender). ``RULES`` documents every rule; the
README's content-policy section lists them.
"""

from __future__ import annotations

import email.errors
import email.header
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.utils import getaddresses, parseaddr
from typing import Final

from policy.extract.walk import Analysis
from policy.markings import SURNAMES
from policy.rules import hosts, phrases
from policy.rules.normalize import Folded, fold

GTUBE: Final = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    score: float
    description: str


@dataclass(frozen=True, slots=True)
class Hit:
    name: str
    score: float
    detail: str = ""

    def report(self) -> str:
        return f"{self.name}={self.score:g}"

    def reason(self) -> str:
        return f"{self.name} ({self.score:+.1f}){': ' + self.detail if self.detail else ''}"


def _rules(*rules: tuple[str, float, str]) -> dict[str, Rule]:
    return {name: Rule(name, score, description) for name, score, description in rules}


# Topic rules score by the number of distinct phrases found (1, 2, 3 or more).
TOPIC_SCORES: Final[dict[str, tuple[float, float, float]]] = {
    "ASK_CREDENTIALS": (1.5, 2.5, 2.5),
    "ACCOUNT_THREAT": (1.0, 2.0, 2.0),
    "URGENCY": (0.5, 1.0, 1.0),
    "ASK_PAYMENT": (1.0, 1.5, 1.5),
    "PRIZE": (1.0, 2.0, 3.0),
    "LOAN": (1.0, 2.5, 3.5),
    "GAMBLING": (1.5, 3.0, 4.0),
    "SEO": (0.5, 1.5, 3.5),
    "FAKE_DEGREE": (1.0, 2.5, 3.5),
    "JOB_SCAM": (1.0, 2.0, 3.5),
    "DATA_SALE": (2.0, 3.5, 3.5),
    "ADVANCE_FEE": (0.5, 1.5, 3.0),
    "PARCEL": (0.5, 1.5, 1.5),
    "CRYPTO": (1.0, 2.0, 3.0),
    "INVESTMENT": (0.5, 1.5, 2.5),
    "PHARMA": (1.5, 3.0, 4.0),
    "SEXTORTION": (1.5, 3.0, 5.0),
    "MARKETING": (0.0, 0.5, 1.0),
    "WARNING_ADVICE": (-1.0, -2.0, -2.0),
    # context only: they score through the PHISH_* and IMPERSONATION rules
    "STATE_SERVICE": (0.0, 0.0, 0.0),
    "BANK_WALLET": (0.0, 0.0, 0.0),
    "MAIL_ADMIN": (0.0, 0.0, 0.0),
}
_TOPICS: Final = {topic.name: topic for topic in phrases.TOPICS}

RULES: Final = _rules(
    ("GTUBE", 100.0, "the GTUBE test string (always refused)"),
    # authentication (RFC 7208, 6376, 7489) when evaluated
    ("SPF_FAIL", 3.0, "SPF fail for the envelope sender"),
    ("SPF_SOFTFAIL", 1.0, "SPF softfail"),
    ("DKIM_FAIL", 2.0, "a DKIM signature failed"),
    ("DMARC_FAIL", 4.0, "DMARC fail for the From domain"),
    ("DMARC_PASS", -1.0, "DMARC pass: the From domain is authenticated"),
    # header sanity (RFC 5322 section 3.6)
    ("MISSING_DATE", 1.5, "no Date field"),
    ("FORGED_DATE", 2.0, "a Date field that does not parse"),
    ("DATE_IN_FUTURE", 2.0, "a Date more than two days ahead"),
    ("MISSING_MID", 1.5, "no Message-ID field"),
    ("NO_FROM_ADDRESS", 2.0, "no address in From"),
    ("FROM_ENVELOPE_MISMATCH", 1.0, "From domain unlike the envelope sender's, without DKIM"),
    ("LOCAL_FROM_OUTSIDE", 3.0, "a From in a local domain, from outside"),
    ("FROM_IMITATION", 3.0, "the From domain imitates a bank, a state service or the local domain"),
    ("FROM_NAME_BRAND", 2.0, "the From name is a bank or state service that does not send from that domain"),
    (
        "FROM_NAME_ADMIN",
        2.0,
        "the From name is a mail administrator, help desk or the local domain, from outside",
    ),
    ("FROM_FREEMAIL_ORG", 1.0, "an organisation's name over a free mailbox (gmail, yahoo, outlook...)"),
    ("BRAND_SENDER_LINK", 2.0, "a sender posing as a brand or state service, with a deceptive link"),
    ("REPLYTO_OTHER_DOMAIN", 1.0, "Reply-To in another domain than From"),
    ("REPLYTO_FREEMAIL", 1.0, "Reply-To to a free mailbox when From is not one"),
    ("TO_IN_SUBJECT", 1.0, "the recipient's address in the subject"),
    ("SUBJ_ALL_CAPS", 1.5, "a subject in capitals"),
    ("SUBJ_EXCLAIM", 0.5, "several exclamation marks in the subject"),
    ("SUBJ_EMOJI", 0.5, "money or gift emoji in the subject"),
    # obfuscation (Unicode TR #36, #39)
    ("TEXT_MIXED_SCRIPT", 3.0, "words mixing Latin with Cyrillic or Greek letters (homoglyphs)"),
    ("TEXT_ZERO_WIDTH", 2.5, "zero-width characters inside words"),
    # links and HTML
    ("URI_LOCAL_LOOKALIKE", 4.0, "a link host imitating the local domain"),
    ("URI_BRAND_LOOKALIKE", 3.5, "a link host imitating a bank, e-wallet, state service or known brand"),
    ("URI_IDN_MIXED", 2.0, "an IDN link host mixing scripts (punycode homoglyphs)"),
    ("URI_SHORTENER", 1.5, "a link through a URL shortener"),
    ("URI_FREE_HOSTING", 1.5, "a link to a free hosting or app platform (phishing pages)"),
    ("URI_SPAMMY_TLD", 1.0, "a link in a top-level domain abused most"),
    ("URI_IP", 2.0, "a link to a bare IP address"),
    ("LINK_TEXT_MISMATCH", 2.0, "link text showing another domain than the link goes to"),
    ("LINK_TEXT_BRAND", 1.5, "link text showing a bank, state or local domain the link does not go to"),
    ("HTML_FORM_PASSWORD", 4.0, "an HTML form asking for a password"),
    ("HTML_FORM_EXTERNAL", 1.5, "an HTML form posting to another site"),
    ("HTML_IMAGE_ONLY", 2.5, "HTML that is linked images with almost no text"),
    ("HTML_LINK_HEAVY", 0.5, "more links than the text explains"),
    ("HTML_HIDDEN_TEXT", 1.0, "much text hidden by styles"),
    ("MONEY_HUGE", 1.0, "millions of dollars"),
    ("MIME_HTML_ONLY", 0.5, "HTML without a text alternative"),
    ("URI_OFFER_HOST", 1.5, "a link host named after a spam offer (bet, casino, meds, loan, airdrop...)"),
    ("CONTACT_CHAT", 1.0, "a Zalo or Telegram contact (number, handle, t.me or zalo.me link)"),
    ("OBFUSCATED_WORDS", 2.0, "spam words written with digits for letters (V1agra)"),
    (
        "ABOUT_FRAUD",
        0.0,
        "a warning about fraud: its scam vocabulary counts little (score: minus the topics above 2)",
    ),
    # combinations
    (
        "PHISH_LINK",
        3.0,
        "a phishing pretext (credentials, account threat, fee) with a deceptive link or form",
    ),
    (
        "IMPERSONATION",
        2.5,
        "a bank, state service or mail administrator asking for credentials or money, "
        "not from its own domain",
    ),
    ("SCAM_CONTACT", 1.5, "a spam offer with a chat contact, free mailbox or shortened link"),
    *[(name, scores[0], _TOPICS[name].description) for name, scores in TOPIC_SCORES.items()],
)

_MONEY_HUGE: Final = re.compile(
    r"(?i)(?:us\s?\$|\$|usd)\s?[\d.,]+\s*(?:million|m\b)|\bmillion (?:dollars|usd)|\$\s?\d{1,3}(?:,\d{3}){2,}"
)
_CHAT_CONTACT: Final = re.compile(
    r"(?:zalo|telegram|tele|viber|whatsapp)\W{0,3}(?:\w+\W{0,3}){0,2}(?:\+?84|0)\d[\d .]{7,12}"
    r"|(?:\+?84|0)\d[\d .]{7,12}\W{0,3}(?:zalo|telegram|viber)"
    r"|(?:telegram|tele)\W{0,3}@\w{3,}|@\w{3,}\W{0,3}\(?telegram|\bt\.me/|\bzalo\.me/"
)
_MONEY_HINT: Final = re.compile(r"\$|usd|million")
_MONEY_WORDS: Final = ("$", "usd", "million")
"""``_MONEY_HINT``'s alternatives: three substring searches (one by memchr) cost a third of the regex."""
_CHAT_HINT: Final = re.compile(r"zalo|tele|viber|whatsapp|t\.me")
_OFFER_HOST: Final = re.compile(
    r"bet|casino|keo|nhacai|lode|xoso|slot|rx|meds|pills|pharma|loan|vay|airdrop|usdt|crypto|btc|giveaway|"
    r"bonus|profit|quatang|trungthuong|nhanthuong|khuyenmai|uudai"
)
_SUBJECT_EMOJI: Final = re.compile(
    "[\U0001f381\U0001f389\U0001f38a\U0001f4b0\U0001f4b5\U0001f4b8\U0001f911\U0001f525\u2705]"
)


@dataclass(slots=True)
class Facts:
    """What the rules look at, gathered by ``policy.checks.spam``."""

    analysis: Analysis
    subject: str = ""
    from_header: str = ""
    reply_to_header: str = ""
    envelope_sender: str = ""
    recipients: list[str] = field(default_factory=list)
    local_domains: tuple[str, ...] = ()
    auth: dict[str, str] = field(default_factory=dict)
    has_date: bool = True
    date_problem: str | None = None
    """``forged`` or ``future`` when the Date field is wrong."""
    has_message_id: bool = True
    inbound_unauthenticated: bool = True
    scan_size: int = 50_000
    content_type: str = "text/plain"
    """Of the message itself (``text/html``: HTML without a text alternative)."""
    folding: Callable[[str], Folded] = fold
    """``fold``, or a ``FoldMemo`` the classifier then reads the same folded texts from."""


def decode(value: str) -> str:
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except (email.errors.HeaderParseError, UnicodeError, LookupError, ValueError):
        return value


_ADDR_SPEC: Final = r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
_SIMPLE_ADDRESS: Final = re.compile(
    rf"[ \t]*(?:(?P<name>[^\W\d_]+(?: [^\W\d_]+)*) ?)?<(?P<route>{_ADDR_SPEC})>[ \t]*"
    rf"|[ \t]*(?P<bare>{_ADDR_SPEC})[ \t]*"
)
"""An address alone or in angle brackets after a name of letters and single
spaces, its parts atoms of letters, digits and _ + - between single dots."""


def parse_address(value: str) -> tuple[str, str]:
    """``email.utils.parseaddr(value)``, one regex match for the forms most
    From fields take (``_SIMPLE_ADDRESS``) instead of its parser in Python
    (~20 us a call): there its answer is the name and the address as
    written (tests/policy compares the two on random fields)."""
    match = _SIMPLE_ADDRESS.fullmatch(value)
    if match is None:
        return parseaddr(value)
    bare = match["bare"]
    if bare is not None:
        return "", bare
    return match["name"] or "", match["route"]


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower().strip().rstrip(".") if "@" in address else ""


def _topic_score(name: str, count: int) -> float:
    first, second, more = TOPIC_SCORES[name]
    return (first, second, more)[min(count, 3) - 1]


# State bodies, which write from .gov.vn: "Bộ Công an", "Công an phường X", "Cục Thuế"...
_STATE_NAME: Final = re.compile(
    r"\b(?:bo cong an|cong an (?:tinh|thanh pho|tp|quan|huyen|thi xa|xa|phuong)|"
    r"co quan (?:canh sat|csdt|dieu tra)|canh sat|csgt|cuc thue|tong cuc thue|chi cuc thue|"
    r"bao hiem xa hoi|bhxh|toa an|vien kiem sat|ban co yeu|cong dich vu cong|uy ban nhan dan|ubnd)\b"
)


def person_name(display: str) -> bool:
    """A person's name ("Nguyễn Công An", "Trần Thị Mai"): two to four
    capitalised words beginning with a common family name."""
    words = display.split()
    if not 2 <= len(words) <= 4 or not all(w[:1].isupper() for w in words):
        return False
    return fold(words[0]).accented in SURNAMES


def _brand_named(display: str, folded_name: Folded) -> tuple[str, tuple[str, ...]] | None:
    """The brand or state service a display name claims, with its domains
    (a person's name claims none: "Nguyễn Công An" is not the police)."""
    if person_name(display):
        return None
    words = re.findall(r"[a-z0-9]+", folded_name.plain)
    squashed = "".join(words)
    for brand, domains in hosts.BRANDS.items():
        if (len(brand) > 4 and brand in squashed) or brand in words:
            return brand, domains
    return ("state service", ("gov",)) if _STATE_NAME.search(folded_name.plain) else None


# Display names of organisations (a person's name has none of these words). With
# its diacritics "Quỹ" (a fund) is not "Quý" (a given name), nor "Phòng" "Phong",
# "Vụ" "Vũ", "Trường" "Trương", "Cục" "Cúc": without them only unambiguous words count.
_ORG_WORDS: Final = (
    r"company|corp|foundation|bank|office|department|team|support|service|services|center|centre|group|ltd|inc|"
    r"jsc|llc|ubnd"
)
_ORG_NAME: Final = re.compile(
    r"\b(?:quỹ|công ty|trung tâm|ban|hội|phòng|sở|cục|bộ|vụ|viện|trường|ngân hàng|ủy ban|uỷ ban|tập đoàn|"
    rf"chi nhánh|văn phòng|bảo hiểm|tài chính|dịch vụ|{_ORG_WORDS})\b"
)
_ORG_NAME_PLAIN: Final = re.compile(
    r"\b(?:cong ty|trung tam|ngan hang|uy ban|tap doan|chi nhanh|van phong|bao hiem|tai chinh|dich vu|"
    rf"{_ORG_WORDS})\b"
)
_ADMIN_NAME: Final = re.compile(
    r"\b(?:admin|administrator|help ?desk|it support|it department|postmaster|mail delivery|webmaster|"
    r"quan tri|bo phan ky thuat|ho tro ky thuat|system|he thong mail|email support)\b"
)


def evaluate(facts: Facts) -> list[Hit]:  # noqa: C901 - one rule after another, on purpose
    hits: list[Hit] = []

    def fire(name: str, detail: str = "", score: float | None = None) -> None:
        rule = RULES[name]
        value = rule.score if score is None else score
        if value:
            hits.append(Hit(name, value, detail))

    analysis = facts.analysis
    # -- authentication ------------------------------------------------------------
    spf, dkim, dmarc = (facts.auth.get(m, "") for m in ("spf", "dkim", "dmarc"))
    if spf == "fail":
        fire("SPF_FAIL")
    elif spf == "softfail":
        fire("SPF_SOFTFAIL")
    if dkim == "fail":
        fire("DKIM_FAIL")
    if dmarc == "fail":
        fire("DMARC_FAIL")
    elif dmarc == "pass":
        fire("DMARC_PASS")
    # -- header ----------------------------------------------------------------------
    if not facts.has_date:
        fire("MISSING_DATE")
    elif facts.date_problem == "forged":
        fire("FORGED_DATE")
    elif facts.date_problem == "future":
        fire("DATE_IN_FUTURE")
    if not facts.has_message_id:
        fire("MISSING_MID")
    from_name_raw, from_address = parse_address(decode(facts.from_header))
    from_domain = _domain(from_address)
    env_domain = _domain(facts.envelope_sender)
    local = facts.local_domains
    if not from_domain:
        fire("NO_FROM_ADDRESS")
    if (
        from_domain
        and env_domain
        and hosts.registrable(from_domain) != hosts.registrable(env_domain)
        and dkim != "pass"
    ):
        fire("FROM_ENVELOPE_MISMATCH", f"{from_domain} / {env_domain}")
    if from_domain in local and facts.inbound_unauthenticated:
        fire("LOCAL_FROM_OUTSIDE", from_domain)
    from_imitation = hosts.imitation(from_domain, local) if from_domain else None
    if from_imitation:
        fire("FROM_IMITATION", from_imitation)
    from_name = facts.folding(from_name_raw)
    official_sender = False
    claimed = _brand_named(from_name_raw, from_name) if from_name_raw else None
    if claimed is not None:
        official_sender = hosts.official(from_domain, claimed[1]) or from_domain in local
        if not official_sender:
            fire("FROM_NAME_BRAND", f'"{from_name_raw}" <{from_address}> ({claimed[0]})')
    admin_name = bool(
        from_name_raw
        and facts.envelope_sender
        and from_domain not in local
        and (_ADMIN_NAME.search(from_name.plain) or any(d in from_name.plain for d in local))
    )
    if admin_name:
        fire("FROM_NAME_ADMIN", f'"{from_name_raw}"')
    free_from = hosts.freemail(from_domain)
    organisation = claimed is not None or bool(
        _ORG_NAME.search(from_name.accented) or _ORG_NAME_PLAIN.search(from_name.plain)
    )
    if free_from and organisation and not person_name(from_name_raw):
        fire("FROM_FREEMAIL_ORG", f'"{from_name_raw}" <{from_address}>')
    replies = (
        [_domain(a) for _, a in getaddresses([decode(facts.reply_to_header)]) if a]
        if facts.reply_to_header
        else []
    )
    for reply_domain in replies[:1]:
        if from_domain and hosts.registrable(reply_domain) != hosts.registrable(from_domain):
            fire("REPLYTO_OTHER_DOMAIN", reply_domain)
            if hosts.freemail(reply_domain) and not free_from:
                fire("REPLYTO_FREEMAIL", reply_domain)
    subject = facts.subject
    if any(r.lower() in subject.lower() for r in facts.recipients if r):
        fire("TO_IN_SUBJECT")
    letters = [c for c in subject if c.isalpha()]
    if len(letters) >= 8 and all(c.isupper() for c in letters):
        fire("SUBJ_ALL_CAPS")
    if subject.count("!") >= 2:
        fire("SUBJ_EXCLAIM")
    if _SUBJECT_EMOJI.search(subject):
        fire("SUBJ_EMOJI")
    # -- content -----------------------------------------------------------------------
    texts = [subject] + [u.text for u in analysis.units if u.role == "body"]
    texts += [
        u.text
        for u in analysis.units
        if u.role == "document" and u.where.lower().endswith((".html", '.htm"'))
    ]
    budget = facts.scan_size
    folded: list[Folded] = []
    for text in texts:
        if budget <= 0:
            break
        folded.append(facts.folding(text[:budget]))
        budget -= len(text) + 1
    if any(GTUBE.casefold() in f.accented for f in folded):
        fire("GTUBE")
    hidden = sum(f.hidden_in_words for f in folded)
    if hidden >= 2:
        fire("TEXT_ZERO_WIDTH", f"{hidden} in words")
    mixed = [w for f in [*folded, from_name] for w in f.mixed_words]
    if mixed:
        fire("TEXT_MIXED_SCRIPT", ", ".join(sorted(set(mixed))[:3]))
    # Phrases, leet words and the hints below are found within lines: text
    # most of whose lines repeat is searched a distinct line at a time.
    distinct = [phrases.distinct_lines(f) for f in folded]
    found = phrases.find_folded(zip(folded, distinct, strict=True))
    once = [f.plain if d is None else d.plain for f, d in zip(folded, distinct, strict=True)]
    leet = phrases.find(Folded.of_plain(w) for lines in once if (w := phrases.leet_words(lines)))
    disguised = sorted(
        p
        for name, found_phrases in leet.phrases.items()
        for p in found_phrases - found.phrases.get(name, set())
    )
    if disguised:
        fire("OBFUSCATED_WORDS", ", ".join(disguised[:3]))
        for name, found_phrases in leet.phrases.items():
            found.phrases.setdefault(name, set()).update(found_phrases)
    # How many distinct phrases of each topic (``found.count``, looked up ~40 times).
    counts = {name: len(keys) for name, keys in found.phrases.items()}
    topic_total = 0.0
    for name in TOPIC_SCORES:
        count = counts.get(name, 0)
        if count:
            score = _topic_score(name, count)
            topic_total += max(score, 0.0)
            fire(name, ", ".join(found.examples(name)), score)
    with_lines = list(zip(folded, once, strict=True))
    contacts = (_CHAT_CONTACT.search(f.plain) for f, lines in with_lines if _CHAT_HINT.search(lines))
    chat = next((m.group(0) for m in contacts if m), None)
    if chat is None:
        chat = next((h for h in analysis.urls if h in ("t.me", "zalo.me")), None)
    if chat:
        fire("CONTACT_CHAT", chat.strip())
    # -- links and HTML ------------------------------------------------------------------
    link_hosts = {h for h in analysis.urls if h}
    form_hosts = {h for h, _ in analysis.html_forms if h}
    deceptive: list[str] = []
    local_fakes: set[str] = set()
    brand_fakes: set[str] = set()
    any_hosts = link_hosts | form_hosts
    if any_hosts:  # (mail without links: none of the loops below finds anything)
        for host in sorted(any_hosts):
            why = hosts.imitation(host, local)
            if why is None:
                continue
            (local_fakes if any(d in why for d in local) else brand_fakes).add(why)
        if local_fakes:
            fire("URI_LOCAL_LOOKALIKE", "; ".join(sorted(local_fakes)[:2]))
            deceptive.append("look-alike")
        if brand_fakes:
            fire("URI_BRAND_LOOKALIKE", "; ".join(sorted(brand_fakes)[:2]))
            deceptive.append("look-alike")
        idn = sorted(h for h in link_hosts if hosts.mixed_script(h))
        if idn:
            fire("URI_IDN_MIXED", idn[0])
        for rule, test in (
            ("URI_SHORTENER", hosts.shortener),
            ("URI_FREE_HOSTING", hosts.free_hosting),
            ("URI_SPAMMY_TLD", hosts.spammy_tld),
            ("URI_IP", hosts.ip_literal),
        ):
            matching = sorted(h for h in any_hosts if test(h))
            if matching:
                fire(rule, matching[0])
                deceptive.append(rule)
    mismatch, brand_shown = _link_mismatches(analysis.html_links, local)
    if mismatch:
        fire("LINK_TEXT_MISMATCH", mismatch)
        deceptive.append("mismatch")
    if brand_shown:
        fire("LINK_TEXT_BRAND", brand_shown)
    if any(password for _, password in analysis.html_forms):
        fire("HTML_FORM_PASSWORD")
        deceptive.append("form")
    external_forms = sorted(
        h for h in form_hosts if h and hosts.registrable(h) != hosts.registrable(from_domain or h)
    )
    if external_forms:
        fire("HTML_FORM_EXTERNAL", external_forms[0])
        deceptive.append("form")
    links = len(analysis.html_links)
    # The words are counted only for the two rules that read the count (a
    # split of the whole body text: 200 KB of Vietnamese, 2 ms).
    words = len(analysis.body_text().split()) if analysis.html_images or links >= 4 else 0
    if analysis.html_images and words < 20 and (analysis.html_links or link_hosts):
        fire("HTML_IMAGE_ONLY", f"{analysis.html_images} images, {words} words")
    if facts.content_type == "text/html":
        fire("MIME_HTML_ONLY")
    offer_hosts = sorted(h for h in link_hosts if _OFFER_HOST.search(hosts.registrable(h).partition(".")[0]))
    if offer_hosts:
        fire("URI_OFFER_HOST", offer_hosts[0])
    if links >= 4 and words < 12 * links:
        fire("HTML_LINK_HEAVY", f"{links} links for {words} words")
    if analysis.html_hidden_chars > 80:
        fire("HTML_HIDDEN_TEXT", f"{analysis.html_hidden_chars} characters")
    money = (f for f, lines in with_lines if any(word in lines for word in _MONEY_WORDS))
    if any(_MONEY_HUGE.search(f.plain) for f in money):
        fire("MONEY_HUGE")
    # -- combinations ----------------------------------------------------------------------
    pretext = [t for t in ("ASK_CREDENTIALS", "ACCOUNT_THREAT", "ASK_PAYMENT") if counts.get(t)]
    if pretext and deceptive:
        fire("PHISH_LINK", f"{', '.join(pretext)} with {', '.join(dict.fromkeys(deceptive))}")
    posing = [t for t in ("STATE_SERVICE", "BANK_WALLET", "MAIL_ADMIN") if counts.get(t)]
    if (
        pretext
        and posing
        and not official_sender
        and not (from_domain in local and not facts.inbound_unauthenticated)
    ):
        unofficial = (
            free_from
            or claimed is not None
            or from_imitation is not None
            or admin_name
            or ("STATE_SERVICE" in posing and not from_domain.endswith(hosts.GOV))
            or bool(deceptive)
        )
        if unofficial:
            fire(
                "IMPERSONATION",
                f"{', '.join(posing)} asking ({', '.join(pretext)}) from {from_domain or '?'}",
            )
    if deceptive and (from_imitation or (claimed is not None and not official_sender)):
        fire("BRAND_SENDER_LINK", ", ".join(dict.fromkeys(deceptive)))
    offers = [
        t
        for t in (
            "LOAN",
            "JOB_SCAM",
            "FAKE_DEGREE",
            "DATA_SALE",
            "GAMBLING",
            "INVESTMENT",
            "CRYPTO",
            "PHARMA",
            "PRIZE",
            "SEO",
        )
        if counts.get(t, 0) >= 2
    ]
    if offers and (chat or free_from or any(hosts.shortener(h) for h in link_hosts)):
        fire("SCAM_CONTACT", ", ".join(offers))
    # A warning about fraud names every scam and no means to fall for one.
    if counts.get("WARNING_ADVICE", 0) >= 2 and not deceptive and not chat and topic_total > 2.0:
        fire("ABOUT_FRAUD", "", -(topic_total - 2.0))
    return hits


def _link_mismatches(links: Iterable[tuple[str, str]], local: tuple[str, ...]) -> tuple[str, str]:
    """(first link whose text shows another domain, first such showing a brand)."""
    mismatch = brand = ""
    for href_host, anchor in links:
        shown = hosts.shown_domain(anchor)
        if not shown or not href_host or hosts.tracker(href_host):
            continue
        if hosts.registrable(shown) == hosts.registrable(href_host):
            continue
        detail = f"{shown} -> {href_host}"
        mismatch = mismatch or detail
        claims = (
            shown.endswith(hosts.GOV)
            or any(shown == d or shown.endswith("." + d) for d in local)
            or any(
                hosts.official(shown, domains) and not hosts.official(href_host, domains)
                for domains in hosts.BRANDS.values()
            )
        )
        if claims and not brand:
            brand = detail
    return mismatch, brand

"""Link and sender hosts that pretend to be someone else (no DNS needed).

A host is judged by its name alone:

* ``registrable``: the organisational domain (RFC 7489 section 3.2, the
  fixed suffix list of ``policy.checks.authentication``);
* ``skeleton``: the host as a reader sees it -- IDN labels (RFC 5890/5891,
  ``xn--``) decoded, Cyrillic/Greek look-alikes mapped to Latin (Unicode TR
  #39 section 4), digits and letter pairs drawn like letters ("0"->o, "1"->l,
  "rn"->m, "vv"->w) replaced;
* ``imitation``: the brand, state service or local domain a host imitates
  without being it: the brand's name in a host outside its official domains
  (``vietcombank.com.vn.xacthuc.top``, ``vietcombank-secure.top``), a label
  one edit away from a brand (``vietcornbank``), "gov" and "vn" in a name
  outside .gov.vn (``dichvucong-gov.vn.com``), a local domain inside a foreign
  one (``dongnai.gov.vn.login.top``, ``dongnai-gov.vn``).

``BRANDS`` lists what Vietnamese staff are phished with (banks, e-wallets,
state services, carriers, Microsoft...) and their official registrable
domains; brands under .gov.vn are official anywhere under .gov.vn.
"""

from __future__ import annotations

import functools
import re
from typing import Final

from policy.checks.authentication import organizational_domain
from policy.rules.normalize import CONFUSABLE_TABLE, CONFUSABLES

GOV: Final = ".gov.vn"

# brand -> official registrable domains ("gov" means: anything under .gov.vn)
BRANDS: Final[dict[str, tuple[str, ...]]] = {
    # banks (State Bank of Viet Nam list of commercial banks) and e-wallets
    "vietcombank": ("vietcombank.com.vn",),
    "vcb": ("vietcombank.com.vn",),
    "bidv": ("bidv.com.vn",),
    "techcombank": ("techcombank.com.vn", "techcombank.com"),
    "vietinbank": ("vietinbank.vn",),
    "agribank": ("agribank.com.vn",),
    "mbbank": ("mbbank.com.vn", "mb.com.vn"),
    "sacombank": ("sacombank.com.vn",),
    "tpbank": ("tpb.vn", "tpbank.vn"),
    "vpbank": ("vpbank.com.vn",),
    "acb": ("acb.com.vn",),
    "hdbank": ("hdbank.com.vn",),
    "shb": ("shb.com.vn",),
    "vib": ("vib.com.vn",),
    "ocb": ("ocb.com.vn",),
    "momo": ("momo.vn",),
    "zalopay": ("zalopay.vn",),
    "viettelpay": ("viettelmoney.vn", "viettel.vn"),
    "viettelmoney": ("viettelmoney.vn", "viettel.vn"),
    "vnpay": ("vnpay.vn",),
    "shopeepay": ("shopee.vn",),
    "paypal": ("paypal.com",),
    # state services
    "vneid": ("gov",),
    "dichvucong": ("gov",),
    "bocongan": ("gov",),
    "congan": ("gov",),
    "baohiemxahoi": ("gov",),
    "bhxh": ("gov",),
    "vssid": ("gov",),
    "thuedientu": ("gov",),
    "gdt": ("gov",),
    "tongcucthue": ("gov",),
    "chinhphu": ("gov",),
    "bcy": ("gov",),
    "cayeu": ("gov",),
    "chungthuso": ("gov",),
    "vgca": ("gov",),
    "csgt": ("csgt.vn", "gov"),
    "phatnguoi": ("gov",),
    "toaan": ("gov",),
    "vnnic": ("vnnic.vn", "gov"),
    # carriers, utilities, shops
    "vnpost": ("vnpost.vn",),
    "dhl": ("dhl.com", "dhl.de"),
    "fedex": ("fedex.com",),
    "ghn": ("ghn.vn",),
    "jtexpress": ("jtexpress.vn",),
    "spx": ("spx.vn",),
    "viettel": ("viettel.com.vn", "viettel.vn", "vietteltelecom.vn"),
    "vnpt": ("vnpt.vn", "vnpt.com.vn"),
    "mobifone": ("mobifone.vn",),
    "evn": ("evn.com.vn", "evnspc.vn", "evnhcmc.vn"),
    "evnspc": ("evnspc.vn",),
    "shopee": ("shopee.vn",),
    "lazada": ("lazada.vn",),
    "tiki": ("tiki.vn",),
    # software and online services
    "microsoft": (
        "microsoft.com",
        "office.com",
        "live.com",
        "microsoftonline.com",
        "office365.com",
        "sharepoint.com",
        "outlook.com",
        "microsoft365.com",
    ),
    "office365": ("office365.com", "microsoft.com", "office.com"),
    "onedrive": ("live.com", "microsoft.com"),
    "sharepoint": ("sharepoint.com", "microsoft.com"),
    "docusign": ("docusign.com", "docusign.net"),
    "binance": ("binance.com",),
}
# Brands long enough that a host label one edit away is a typo-squat, not another word.
_TYPO_MIN: Final = 8

SHORTENERS: Final = frozenset(
    "bit.ly bitly.com tinyurl.com goo.gl cutt.ly rb.gy s.id t.ly is.gd v.gd ow.ly shorturl.at tiny.cc "
    "rebrand.ly buff.ly shorte.st adf.ly bl.ink t2m.io short.io urlz.fr qrco.de tinu.be 1url.vn "
    "rutgon.me".split()
)
FREE_HOSTING: Final = (
    "web.app",
    "firebaseapp.com",
    "workers.dev",
    "pages.dev",
    "r2.dev",
    "glitch.me",
    "weebly.com",
    "wixsite.com",
    "godaddysites.com",
    "netlify.app",
    "vercel.app",
    "blob.core.windows.net",
    "web.core.windows.net",
    "github.io",
    "000webhostapp.com",
    "ngrok.io",
    "ngrok-free.app",
    "repl.co",
    "onrender.com",
    "herokuapp.com",
    "azurewebsites.net",
    "appspot.com",
    "blogspot.com",
    "sites.google.com",
    "forms.app",
    "jotform.com",
    "square.site",
    "webflow.io",
    "ipfs.io",
    "dweb.link",
    "translate.goog",
    "framer.app",
    "glide.page",
    "typedream.app",
)
# Top-level domains with the most abuse per registration (Spamhaus "most abused TLDs").
SPAMMY_TLDS: Final = frozenset(
    "top xyz icu click cfd sbs online site live vip shop cc buzz rest cyou quest bond lat autos mom monster "
    "work support fit tk ml ga cf gq su".split()
)
FREEMAIL: Final = frozenset(
    "gmail.com googlemail.com yahoo.com yahoo.com.vn yahoo.co.uk ymail.com hotmail.com outlook.com live.com "
    "msn.com aol.com mail.com gmx.com gmx.net protonmail.com proton.me icloud.com me.com zoho.com yandex.com "
    "yandex.ru "
    "mail.ru qq.com 163.com 126.com tutanota.com".split()
)
# Mailing-list and newsletter services: a link that goes through them while
# showing the sender's own address is their click tracking, not a trick.
TRACKERS: Final = (
    "list-manage.com",
    "mcdlv.net",
    "mailchimpapp.net",
    "sendgrid.net",
    "mailgun.org",
    "mandrillapp.com",
    "sparkpostmail.com",
    "mailjet.com",
    "mjt.lu",
    "hubspotlinks.com",
    "hs-sites.com",
    "exacttarget.com",
    "govdelivery.com",
    "constantcontact.com",
    "rs6.net",
    "mailerlite.com",
    "sendinblue.com",
    "brevo.com",
    "amazonses.com",
    "awstrack.me",
    "campaign-archive.com",
    "safelinks.protection.outlook.com",
    "click.email",
    "email.microsoft.com",
)
_LEET: Final = (
    ("rn", "m"),
    ("vv", "w"),
    ("0", "o"),
    ("1", "l"),
    ("3", "e"),
    ("4", "a"),
    ("5", "s"),
    ("7", "t"),
    ("$", "s"),
    ("@", "a"),
)
_LABEL_SPLIT: Final = re.compile(r"[.\-_]+")


@functools.lru_cache(maxsize=4096)
def registrable(host: str) -> str:
    return organizational_domain(host.lower().rstrip("."))


def official(host: str, domains: tuple[str, ...]) -> bool:
    host = host.lower().rstrip(".")
    for domain in domains:
        if domain == "gov":
            if host.endswith(GOV):
                return True
        elif host == domain or host.endswith("." + domain):
            return True
    return False


def decode_idn(host: str) -> str:
    """Unicode form of the IDN labels (RFC 3492 punycode of ``xn--`` labels)."""
    labels = []
    for label in host.split("."):
        if label.startswith("xn--"):
            try:
                label = label[4:].encode("ascii").decode("punycode")
            except (UnicodeError, ValueError):
                pass
        labels.append(label)
    return ".".join(labels)


def mixed_script(host: str) -> bool:
    """A label of the (decoded) host mixes Latin with Cyrillic or Greek letters."""
    for label in decode_idn(host).split("."):
        latin = any(c.isascii() and c.isalpha() for c in label)
        if latin and any(c in CONFUSABLES for c in label):
            return True
    return False


@functools.lru_cache(maxsize=4096)
def skeleton(host: str) -> str:
    """What the host reads as: IDN decoded, look-alike letters and digits mapped."""
    text = decode_idn(host.lower()).translate(CONFUSABLE_TABLE).lower()
    for old, new in _LEET:
        text = text.replace(old, new)
    return text


def _one_edit(a: str, b: str) -> bool:
    """Levenshtein distance exactly 1, or one transposition."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and a[diff[0]] == b[diff[1]]
            and a[diff[1]] == b[diff[0]]
        )
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


def _brand_in(host: str, brand: str) -> bool:
    """``brand`` is a label of the host's skeleton, or begins or ends one
    ("vietcombankvn", "xacthucvietcombank"), or (long brands) a label is one
    edit away from it ("vletcombank")."""
    labels = [label for label in _LABEL_SPLIT.split(skeleton(host)) if label]
    if len(brand) <= 4:  # short names only as a whole label ("acb", "bidv", "dhl")
        return brand in labels
    if any(label.startswith(brand) or label.endswith(brand) for label in labels):
        return True
    return len(brand) >= _TYPO_MIN and any(_one_edit(label, brand) for label in labels)


@functools.lru_cache(maxsize=4096)
def imitation(host: str, local_domains: tuple[str, ...] = ()) -> str | None:
    """What ``host`` imitates without being it, as a short reason, or None."""
    host = host.lower().rstrip(".")
    if not host or host == "invalid":
        return None
    for domain in local_domains:
        if host == domain or host.endswith("." + domain):
            return None
    flat = skeleton(host)
    state = host.endswith(GOV)  # only state bodies register under gov.vn (VNNIC)
    for domain in local_domains:
        squashed = domain.replace(".", "")
        label = domain.split(".")[0]
        if not state and (
            domain in flat
            or squashed in flat.replace(".", "").replace("-", "")
            or (label in flat and "gov" in flat)
        ):
            return f"{host} imitates {domain}"
    for brand, domains in BRANDS.items():
        if _brand_in(host, brand) and not official(host, domains):
            return f"{host} imitates {brand}"
    labels = _LABEL_SPLIT.split(flat)
    if "gov" in labels and "vn" in labels and not state:
        return f"{host} imitates a .gov.vn name"
    return None


def shortener(host: str) -> bool:
    return host.lower().removeprefix("www.") in SHORTENERS


def free_hosting(host: str) -> bool:
    host = host.lower()
    return any(host == s or host.endswith("." + s) for s in FREE_HOSTING)


def spammy_tld(host: str) -> bool:
    return host.lower().rstrip(".").rpartition(".")[2] in SPAMMY_TLDS


def ip_literal(host: str) -> bool:
    return bool(re.fullmatch(r"\d{1,3}(?:\.\d{1,3}){3}|\[?[0-9a-f:]+\]?", host.lower())) and any(
        c.isdigit() for c in host
    )


def freemail(domain: str) -> bool:
    return domain.lower() in FREEMAIL


def tracker(host: str) -> bool:
    host = host.lower()
    return any(
        host.startswith(t) if t.endswith(".") else (host == t or host.endswith("." + t)) for t in TRACKERS
    )


_SHOWN_DOMAIN: Final = re.compile(r"(?i)(?:https?://)?(?:www\.)?((?:[a-z0-9-]+\.)+[a-z]{2,})(?:[/:?#]\S*)?")


def shown_domain(anchor: str) -> str | None:
    """The domain a link's text shows ("www.vietcombank.com.vn", "https://x.vn/y"),
    when the whole text is a URL or a host name; None for ordinary words."""
    text = anchor.strip()
    if not text or " " in text or len(text) > 200:
        return None
    match = _SHOWN_DOMAIN.fullmatch(text)
    if match is None:
        return None
    host = match.group(1).lower()
    if "@" in text or not re.search(r"[a-z]", host.rpartition(".")[2]):
        return None
    return host

"""Settings of the pki package: the ``[pki]`` (internal CA, S/MIME, PDF
signatures, CRL), ``[dkim]`` (RFC 6376 signing) and ``[arc]`` (RFC 8617
sealing) config sections."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from storage.settings import setting

DEFAULT_HEADERS: Final = (
    "From", "To", "Cc", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type",
    "Reply-To", "In-Reply-To", "References",
)


@dataclass(frozen=True, slots=True)
class PkiSettings:
    dir: str = setting("Directory of the CA, certificates and index. Empty: <data_dir>/pki.", "")
    passphrase_file: str = setting(
        "File holding the passphrase that encrypts CA and user keys\n"
        "(else $MAILSERVER_PKI_PASSPHRASE).",
        "",
    )
    organization: str = setting("O= of the CA certificates.", "UBND tỉnh Đồng Nai")
    sign_agency_mail: bool = setting(
        "Sign mail sent from an agency mailbox with the agency's certificate\n"
        "(S/MIME multipart/signed, RFC 8551) when it has one.",
        True,
    )
    sign_accounts: list[str] = setting(
        "Personal addresses whose mail is also signed with their certificate.",
        [],
    )
    trust_anchors: list[str] = setting(
        "PEM files of further trust anchors for verifying incoming S/MIME\n"
        "(imported roots under <pki dir>/anchors are trusted too).",
        [],
    )
    crl_files: list[str] = setting("CRLs (PEM or DER) of external CAs checked on verification.", [])
    verify_inbound: bool = setting(
        "Check S/MIME signatures and add X-Signature-Status: on mail arriving on the MX\n"
        "and on the local copies of mail between colleagues (submission).",
        True,
    )
    verify_pdf: bool = setting(
        "Check the signatures inside PDF attachments (PAdES) of mail arriving on the MX\n"
        "and of mail between colleagues; the result goes in X-PDF-Signature: per file.",
        True,
    )
    fetch_revocation: bool = setting(
        "Fetch OCSP answers and CRLs named in the certificates of signed PDFs\n"
        "(network). Off: only revocation data embedded in the PDF, crl_files and our index.",
        False,
    )
    tsa_url: str = setting(
        "RFC 3161 time-stamp authority for signed PDFs (PAdES B-T); empty: no\n"
        "time-stamp (B-B), the signing time is the server's clock.",
        "",
    )
    pdf_font: str = setting(
        "TrueType font of the visible signature block (Vietnamese letters needed).",
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    )
    pdf_max_size: int = setting(
        "Largest PDF whose signatures are checked, in octets; a larger one is\n"
        "reported invalid (not checked).",
        33554432,
    )
    pdf_timeout: float = setting(
        "Seconds the signature check of one message's PDFs may take; past it the\n"
        "files are reported invalid (not checked) and the worker is stopped.",
        20.0,
    )
    cert_days: int = setting("Validity of issued certificates, in days.", 730)
    crl_days: int = setting("nextUpdate of a published CRL, in days.", 7)
    crl_url: str = setting(
        "URL written into issued certificates as their CRL Distribution Point\n"
        "(RFC 5280 section 4.2.1.13). Empty: the portal's /crl, http://<server.hostname>/crl.",
        "",
    )
    crl_refresh_hours: float = setting(
        "The running server re-signs the CRL once it is this old (and at once after\n"
        "a revocation), so relying parties never hold one past its nextUpdate (crl_days).",
        24.0,
    )
    crl_check_interval: float = setting(
        "Seconds between the running server's checks that the published CRL\n"
        "lists every revocation and is not due for renewal.",
        60.0,
    )

    def __post_init__(self) -> None:
        if self.pdf_max_size < 1:
            raise ValueError("pki.pdf_max_size must be at least 1")
        if not self.pdf_timeout > 0:
            raise ValueError("pki.pdf_timeout must be above 0")


@dataclass(frozen=True, slots=True)
class DkimSettings:
    key_dir: str = setting("Directory of DKIM private keys and their index. Empty: <data_dir>/dkim.", "")
    sign_local: bool = setting(
        "Also sign mail delivered to local domains (mail to other domains is always\n"
        "signed when the From domain has a key).",
        False,
    )
    headers: list[str] = field(
        default_factory=lambda: list(DEFAULT_HEADERS),
        metadata={"help": "Header fields signed when present (RFC 6376 section 5.4)."},
    )
    oversign: list[str] = setting(
        "Header fields signed once more than they occur, so none can be added\n"
        "(RFC 6376 section 8.15).",
        ["From"],
    )
    retire_days: int = setting(
        "Days a replaced key stays published (default of dkim keygen --retire-after).",
        7,
    )

@dataclass(frozen=True, slots=True)
class ArcSettings:
    seal: bool = setting(
        "Add an ARC set (RFC 8617) to mail we forward or expand to outside addresses\n"
        "(forwards, aliases and groups with outside members, Sieve redirects), signed with\n"
        "the sealing domain's DKIM RSA key.",
        True,
    )
    domain: str = setting("Sealing domain (d= of the ARC set); empty: the first of server.domains.", "")
    trusted_sealers: list[str] = setting(
        "Domains whose passing ARC chain overrides a DMARC failure (mailing lists\n"
        "and forwarders we trust, e.g. [\"lists.example.org\"]): their ARC-Authentication-Results\n"
        "must say dmarc=pass. Recorded in Authentication-Results as arc-override.",
        [],
    )

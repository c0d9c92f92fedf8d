"""The internal certification authority: a root, an issuing CA, S/MIME and TLS
certificates, revocation and the CRL (RFC 5280; S/MIME profile RFC 8550
section 4.4, RFC 8551 section 4).

Decision 70/2009/QĐ-UBND asks the operator to deploy PKI and digital
signatures so that mail is authentic (Điều 11); the official-duty CA of the
government can replace the internal one (``import_external``).

Layout under the PKI directory (``pki.dir``, default ``<data_dir>/pki``)::

    root.pem  root.key       self-signed root (key encrypted, mode 0600)
    ca.pem    ca.key         issuing CA signed by the root
    certs/<serial>.pem       every certificate issued or imported
    keys/<serial>.key        its private key, encrypted with the passphrase
    anchors/*.pem            extra trust anchors (imported external roots)
    crl.pem                  the last CRL published (``refresh_crl``, ``mailserver pki crl``)
    crl.lock                 flock(2) taken while a CRL is signed and written
    index.json               metadata of every certificate, replaced atomically

Private keys are PKCS#8 encrypted with the passphrase from
``$MAILSERVER_PKI_PASSPHRASE`` or ``pki.passphrase_file``. Revocation only
writes the index (no passphrase needed, so offboarding can revoke); the verifier
reads revocations from the index too, so a revoked internal certificate is
refused at once here.

Relying parties elsewhere only see the CRL, so it must follow the index:
``refresh_crl`` re-signs ``crl.pem`` when it no longer lists exactly the
revoked certificates of the index, when it is older than
``pki.crl_refresh_hours`` or when its nextUpdate comes closer than that (RFC
5280 section 5.1.2.5: a relying party treats a CRL past nextUpdate as stale).
A process holding the passphrase calls it right after revoking
(``publish_if_possible``), and the running server calls it every
``pki.crl_check_interval`` seconds and before serving ``/crl``; an exclusive
``flock`` on ``crl.lock`` serialises the signers of every process on the host,
and the check is repeated under the lock so two of them never both re-sign.
Issued certificates name where the CRL is published (CRL Distribution
Points, RFC 5280 section 4.2.1.13) when a URL is given (``crl_url``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import ipaddress
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Final, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pki.settings import PkiSettings

ENV_PASSPHRASE: Final = "MAILSERVER_PKI_PASSPHRASE"  # noqa: S105 - a variable name
INDEX: Final = "index.json"
ALGORITHMS: Final = ("ecdsa-p256", "rsa3072")
Kind = Literal["smime", "tls", "external"]
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

# RFC 5280 section 5.3.1 reason codes accepted by ``revoke --reason``.
REASONS: Final[dict[str, x509.ReasonFlags]] = {
    "unspecified": x509.ReasonFlags.unspecified,
    "keyCompromise": x509.ReasonFlags.key_compromise,
    "affiliationChanged": x509.ReasonFlags.affiliation_changed,
    "superseded": x509.ReasonFlags.superseded,
    "cessationOfOperation": x509.ReasonFlags.cessation_of_operation,
}


class PkiError(Exception):
    """An operator mistake or missing material, phrased for the operator."""



def pki_directory(settings: PkiSettings, data_dir: Path) -> Path:
    return Path(settings.dir) if settings.dir else data_dir / "pki"


def load_passphrase(settings: PkiSettings) -> bytes | None:
    """The key passphrase: environment first, then the configured file."""
    env = os.environ.get(ENV_PASSPHRASE)
    if env:
        return env.encode("utf-8")
    if settings.passphrase_file:
        try:
            text = Path(settings.passphrase_file).read_text("utf-8").strip()
        except OSError as exc:
            raise PkiError(
                f"pki.passphrase_file: cannot read {settings.passphrase_file}: {exc.strerror}"
            ) from None
        if text:
            return text.encode("utf-8")
    return None


@dataclass(frozen=True, slots=True)
class CertRecord:
    serial: str
    """Hexadecimal serial number (lower case)."""
    kind: Kind
    subject: str
    """The e-mail address (S/MIME) or host name (TLS)."""
    common_name: str
    not_after: str
    issued_at: str
    cert: str
    """Certificate file, relative to the PKI directory."""
    key: str | None
    """Encrypted private key file, relative, or None."""
    revoked_at: str | None = None
    reason: str | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _new_key(algorithm: str) -> PrivateKey:
    if algorithm == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "rsa3072":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    raise PkiError(f"unknown algorithm {algorithm!r} (ecdsa-p256 or rsa3072)")


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _name(cn: str, org: str, email: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    attrs.append(x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"))
    if email:
        attrs.append(x509.NameAttribute(NameOID.EMAIL_ADDRESS, email))
    return x509.Name(attrs)


def _key_usage(*, sign: bool, encipher: bool, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=sign, content_commitment=sign and not ca, key_encipherment=encipher,
        data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
        encipher_only=False, decipher_only=False,
    )


class CertificateAuthority:
    """The PKI directory (see module docstring). One writer at a time."""

    def __init__(self, directory: Path, settings: PkiSettings | None = None,
                 passphrase: bytes | None = None, *, crl_url: str = "") -> None:
        self.directory = directory
        self.settings = settings or PkiSettings()
        self._passphrase = passphrase
        self.crl_url = crl_url or self.settings.crl_url
        """Written into issued certificates (CRL Distribution Points); empty: none."""

    @classmethod
    def open(cls, settings: PkiSettings, data_dir: Path, *, crl_url: str = "") -> CertificateAuthority:
        return cls(pki_directory(settings, data_dir), settings, load_passphrase(settings), crl_url=crl_url)

    @property
    def can_sign(self) -> bool:
        """The passphrase is known (it may still be the wrong one)."""
        return bool(self._passphrase)

    # -- files ----------------------------------------------------------------------
    @property
    def initialised(self) -> bool:
        return (self.directory / "ca.pem").exists()

    def _require_passphrase(self) -> bytes:
        if not self._passphrase:
            raise PkiError(
                f"no PKI passphrase: set ${ENV_PASSPHRASE} or pki.passphrase_file "
                "(cần mật khẩu bảo vệ khóa CA)"
            )
        return self._passphrase

    def _write_key(self, relative: str, key: PrivateKey) -> None:
        data = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(self._require_passphrase()),
        )
        (self.directory / relative).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(self.directory / relative, data, 0o600)

    def load_key(self, relative: str) -> PrivateKey:
        try:
            key = serialization.load_pem_private_key(
                (self.directory / relative).read_bytes(), self._require_passphrase()
            )
        except ValueError:
            raise PkiError(f"cannot decrypt {relative}: wrong PKI passphrase?") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise PkiError(f"{relative}: unsupported key type")
        return key

    def certificate(self, relative: str) -> x509.Certificate:
        return x509.load_pem_x509_certificate((self.directory / relative).read_bytes())

    def root(self) -> x509.Certificate:
        return self.certificate("root.pem")

    def issuing(self) -> x509.Certificate:
        if not self.initialised:
            raise PkiError("the CA is not initialised: run `mailserver pki init`")
        return self.certificate("ca.pem")

    def chain(self) -> list[x509.Certificate]:
        """Issuing CA then root: what accompanies a signature or a TLS certificate."""
        return [self.issuing(), self.root()]

    def anchors(self) -> list[x509.Certificate]:
        """Trust anchors: the root, imported external roots, configured files."""
        found: list[x509.Certificate] = []
        if (self.directory / "root.pem").exists():
            found.append(self.root())
        anchor_dir = self.directory / "anchors"
        paths = sorted(anchor_dir.glob("*.pem")) if anchor_dir.is_dir() else []
        paths += [Path(p) for p in self.settings.trust_anchors]
        for path in paths:
            try:
                found += x509.load_pem_x509_certificates(path.read_bytes())
            except (OSError, ValueError) as exc:
                raise PkiError(f"trust anchor {path}: {exc}") from None
        return found

    def intermediates(self) -> list[x509.Certificate]:
        return [self.issuing()] if self.initialised else []

    # -- index ----------------------------------------------------------------------
    def records(self) -> list[CertRecord]:
        path = self.directory / INDEX
        if not path.exists():
            return []
        try:
            data = json.loads(path.read_text("utf-8"))
            return [CertRecord(**entry) for entry in data["certificates"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise PkiError(f"{path}: unreadable certificate index: {exc}") from None

    def _save(self, records: list[CertRecord]) -> None:
        text = json.dumps({"version": 1, "certificates": [asdict(r) for r in records]},
                          indent=2, ensure_ascii=False) + "\n"
        atomic_write(self.directory / INDEX, text.encode("utf-8"))

    def _add(self, record: CertRecord) -> None:
        self._save([*self.records(), record])

    def revoked_serials(self) -> dict[int, CertRecord]:
        return {int(r.serial, 16): r for r in self.records() if r.revoked}

    def valid_for(self, address: str, now: dt.datetime | None = None) -> CertRecord | None:
        """The newest unrevoked, unexpired S/MIME certificate with a key for ``address``;
        an imported (external CA) certificate wins over an internal one."""
        when = (now or _now()).isoformat()
        wanted = address.strip().lower()
        usable = [
            r for r in self.records()
            if r.subject == wanted and r.kind in ("smime", "external") and not r.revoked
            and r.key is not None and r.not_after > when
        ]
        usable.sort(key=lambda r: (r.kind == "external", r.issued_at))
        return usable[-1] if usable else None

    # -- operations -----------------------------------------------------------------
    def init(self, *, algorithm: str = "ecdsa-p256", organization: str | None = None,
             force: bool = False) -> tuple[x509.Certificate, x509.Certificate]:
        """Create the root (20 years) and the issuing CA (10 years)."""
        if self.initialised and not force:
            raise PkiError(f"a CA already exists in {self.directory} (use --force to replace it)")
        self._require_passphrase()
        org = organization if organization is not None else self.settings.organization
        now = _now()
        root_key = _new_key(algorithm)
        root_name = _name(f"{org} Root CA", org)
        root = (
            x509.CertificateBuilder().subject_name(root_name).issuer_name(root_name)
            .public_key(root_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=7300))
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(_key_usage(sign=True, encipher=False, ca=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA256())
        )
        ca_key = _new_key(algorithm)
        ca = (
            x509.CertificateBuilder().subject_name(_name(f"{org} Issuing CA", org)).issuer_name(root_name)
            .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(sign=True, encipher=False, ca=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
                           critical=False)
            .sign(root_key, hashes.SHA256())
        )
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        self._write_key("root.key", root_key)
        self._write_key("ca.key", ca_key)
        atomic_write(self.directory / "root.pem", _pem(root))
        atomic_write(self.directory / "ca.pem", _pem(ca))
        self._write_crl(self._crl())
        return root, ca

    def _issue(self, builder: x509.CertificateBuilder, key: PrivateKey) -> x509.Certificate:
        ca = self.issuing()
        ca_key = self.load_key("ca.key")
        now = _now()
        if self.crl_url:
            # RFC 5280 section 4.2.1.13: where relying parties fetch the CRL that
            # covers this certificate (the issuing CA signs it, so no cRLIssuer).
            point = x509.DistributionPoint(
                full_name=[x509.UniformResourceIdentifier(self.crl_url)], relative_name=None,
                reasons=None, crl_issuer=None,
            )
            builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
        return (
            builder.issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(min(now + dt.timedelta(days=self.settings.cert_days), ca.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256())
        )

    def _store(self, cert: x509.Certificate, key: PrivateKey | None, kind: Kind, subject: str,
               common_name: str) -> CertRecord:
        serial = format(cert.serial_number, "x")
        self._write_extra(f"certs/{serial}.pem", _pem(cert))
        if key is not None:
            self._write_key(f"keys/{serial}.key", key)
        record = CertRecord(
            serial=serial, kind=kind, subject=subject, common_name=common_name,
            not_after=cert.not_valid_after_utc.isoformat(), issued_at=_now().isoformat(),
            cert=f"certs/{serial}.pem", key=f"keys/{serial}.key" if key is not None else None,
        )
        self._add(record)
        return record

    def _write_extra(self, relative: str, data: bytes) -> None:
        atomic_write(self.directory / relative, data)

    def issue_smime(self, address: str, common_name: str, organization: str,
                    *, algorithm: str = "ecdsa-p256") -> tuple[CertRecord, x509.Certificate, PrivateKey]:
        """An S/MIME certificate (RFC 8550 section 4.4.2: rfc822Name in the SAN;
        RFC 8550 section 4.4.4: emailProtection EKU; key usage digitalSignature +
        nonRepudiation, plus keyEncipherment for RSA so clients may encrypt to it)."""
        addr = address.strip().lower()
        if "@" not in addr:
            raise PkiError(f"not an e-mail address: {address!r}")
        key = _new_key(algorithm)
        builder = (
            x509.CertificateBuilder().subject_name(_name(common_name or addr, organization, addr))
            .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(addr)]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(
                _key_usage(sign=True, encipher=isinstance(key, rsa.RSAPrivateKey), ca=False), critical=True
            )
        )
        cert = self._issue(builder, key)
        return self._store(cert, key, "smime", addr, common_name), cert, key

    def issue_tls(self, hostname: str, extra_names: list[str] | None = None,
                  *, algorithm: str = "ecdsa-p256") -> tuple[CertRecord, x509.Certificate, PrivateKey]:
        """A server certificate (serverAuth EKU, DNS names in the SAN)."""
        host = hostname.strip().lower().rstrip(".")
        if not host:
            raise PkiError("empty host name")
        names: list[x509.GeneralName] = [x509.DNSName(host)]
        for extra in extra_names or []:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(extra)))
            except ValueError:
                names.append(x509.DNSName(extra.lower()))
        key = _new_key(algorithm)
        builder = (
            x509.CertificateBuilder().subject_name(_name(host, self.settings.organization))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                _key_usage(sign=True, encipher=isinstance(key, rsa.RSAPrivateKey), ca=False), critical=True
            )
        )
        cert = self._issue(builder, key)
        return self._store(cert, None, "tls", host, host), cert, key

    def revoke(self, target: str, reason: str = "unspecified",
               now: dt.datetime | None = None) -> list[CertRecord]:
        """Revoke by serial (hex) or every unrevoked certificate of an address."""
        if reason not in REASONS:
            raise PkiError(f"unknown reason {reason!r} (one of {', '.join(REASONS)})")
        wanted = target.strip().lower()
        when = (now or _now()).isoformat()
        changed: list[CertRecord] = []
        records = []
        for r in self.records():
            hit = (r.serial == wanted.removeprefix("0x").lstrip("0") or r.subject == wanted)
            if hit and not r.revoked:
                r = replace(r, revoked_at=when, reason=reason)
                changed.append(r)
            records.append(r)
        if changed:
            self._save(records)
        return changed

    def _revoked_internal(self) -> list[tuple[CertRecord, x509.Certificate]]:
        """Revoked certificates of the index issued by the current issuing CA."""
        issuer = self.issuing().subject.rfc4514_string()
        out = []
        for r in self.records():
            if not r.revoked or r.kind == "external":
                continue
            cert = self.certificate(r.cert)
            if cert.issuer.rfc4514_string() == issuer:
                out.append((r, cert))
        return out

    def _crl(self, now: dt.datetime | None = None) -> x509.CertificateRevocationList:
        ca = self.issuing()
        when = now or _now()
        builder = (
            x509.CertificateRevocationListBuilder().issuer_name(ca.subject)
            .last_update(when).next_update(when + dt.timedelta(days=self.settings.crl_days))
        )
        for r, _cert in self._revoked_internal():
            entry = (
                x509.RevokedCertificateBuilder().serial_number(int(r.serial, 16))
                .revocation_date(dt.datetime.fromisoformat(r.revoked_at or when.isoformat()))
                .add_extension(x509.CRLReason(REASONS[r.reason or "unspecified"]), critical=False)
                .build()
            )
            builder = builder.add_revoked_certificate(entry)
        return builder.sign(self.load_key("ca.key"), hashes.SHA256())

    def _write_crl(self, crl: x509.CertificateRevocationList) -> None:
        atomic_write(self.directory / "crl.pem", crl.public_bytes(serialization.Encoding.PEM))

    @contextlib.contextmanager
    def _crl_lock(self) -> Iterator[None]:
        """Exclusive flock(2) on ``crl.lock``: one signer at a time across processes."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / "crl.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def published_crl(self) -> x509.CertificateRevocationList | None:
        """The CRL in ``crl.pem``, or None when there is none (or it is unreadable)."""
        try:
            return x509.load_pem_x509_crl((self.directory / "crl.pem").read_bytes())
        except (FileNotFoundError, ValueError):
            return None

    def crl_stale(self, now: dt.datetime | None = None) -> str | None:
        """Why the published CRL must be re-signed (see the module docstring), or None."""
        if not self.initialised:
            return None
        when = now or _now()
        path = self.directory / "crl.pem"
        crl = self.published_crl()
        if crl is None:
            return "no CRL published"
        # Never closer to nextUpdate than half the CRL's validity, whatever is configured.
        refresh = min(dt.timedelta(hours=self.settings.crl_refresh_hours),
                      dt.timedelta(days=self.settings.crl_days) / 2)
        if when - crl.last_update_utc >= refresh:
            return "due for renewal"
        next_update = crl.next_update_utc
        if next_update is None or next_update - when <= refresh:
            return "nextUpdate is near"
        if crl.issuer != self.issuing().subject:
            return "the issuing CA changed"
        index = self.directory / INDEX
        # Cheap common case: nothing was written to the index since the CRL.
        if not index.exists() or index.stat().st_mtime_ns < path.stat().st_mtime_ns:
            return None
        listed = {entry.serial_number for entry in crl}
        wanted = {cert.serial_number for _r, cert in self._revoked_internal()}
        return None if listed == wanted else "revocations not yet listed"

    def refresh_crl(self, now: dt.datetime | None = None, *,
                    force: bool = False) -> x509.CertificateRevocationList | None:
        """Re-sign and publish the CRL if it is stale (or ``force``); the new CRL,
        or None when the published one is current. Needs the passphrase (PkiError)."""
        if not self.initialised:
            raise PkiError("the CA is not initialised: run `mailserver pki init`")
        if not force and self.crl_stale(now) is None:
            return None
        with self._crl_lock():
            # Another process may have published while this one waited.
            if not force and self.crl_stale(now) is None:
                return None
            crl = self._crl(now)
            self._write_crl(crl)
            return crl

    def publish_crl(self, now: dt.datetime | None = None) -> x509.CertificateRevocationList:
        """Sign a CRL of the issuing CA (RFC 5280 section 5) and keep it as crl.pem."""
        crl = self.refresh_crl(now, force=True)
        assert crl is not None  # noqa: S101 - forced
        return crl

    def publish_if_possible(self) -> bool:
        """After a revocation: publish the CRL now if this process holds the
        passphrase; False when it cannot (the running server then publishes it
        within ``pki.crl_check_interval`` seconds, or when ``/crl`` is asked)."""
        if not self.initialised or not self.can_sign:
            return False
        try:
            self.refresh_crl()
        except PkiError:
            return False
        return True

    def crls(self) -> list[x509.CertificateRevocationList]:
        """Published internal CRL plus configured external ones."""
        found = []
        paths = [self.directory / "crl.pem"] + [Path(p) for p in self.settings.crl_files]
        for path in paths:
            if not path.exists():
                continue
            data = path.read_bytes()
            try:
                pem = b"-----BEGIN" in data
                found.append(x509.load_pem_x509_crl(data) if pem else x509.load_der_x509_crl(data))
            except ValueError as exc:
                raise PkiError(f"CRL {path}: {exc}") from None
        return found

    def pkcs12(self, record: CertRecord, password: bytes | None, friendly: str) -> bytes:
        """PKCS#12 of a certificate, its key and the chain, for Thunderbird/Outlook;
        AES-256 + PBKDF2 (what current clients read) when a password is given."""
        if record.key is None:
            raise PkiError(f"no private key is kept for certificate {record.serial}")
        key = self.load_key(record.key)
        cert = self.certificate(record.cert)
        cas = self.chain() if record.kind != "external" else []
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
        )
        return pkcs12.serialize_key_and_certificates(friendly.encode("utf-8"), key, cert, cas, encryption)

    def import_external(self, certs: list[x509.Certificate], key: PrivateKey | None) -> list[CertRecord]:
        """Import an external CA's material (the government official-duty CA).

        The self-signed certificates become trust anchors. With a key, its
        certificate is either a CA (it becomes the issuing CA, its chain the
        root) or an end-entity S/MIME certificate used to sign for its address.
        """
        if not certs:
            raise PkiError("no certificate found in the file")
        if key is not None:
            self._require_passphrase()
        anchors = [c for c in certs if c.issuer == c.subject]
        for cert in anchors:
            self._write_extra(f"anchors/{cert.fingerprint(hashes.SHA256()).hex()[:16]}.pem", _pem(cert))
        imported: list[CertRecord] = []
        if key is None:
            return imported
        pub = key.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
        leaf = next((c for c in certs if c.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == pub), None)
        if leaf is None:
            raise PkiError("the private key matches none of the certificates")
        try:
            is_ca = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if is_ca:
            root = anchors[0] if anchors else leaf
            self._write_key("ca.key", key)
            atomic_write(self.directory / "ca.pem", _pem(leaf))
            atomic_write(self.directory / "root.pem", _pem(root))
            self._write_crl(self._crl())
            return imported
        try:
            san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            emails = san.get_values_for_type(x509.RFC822Name)
        except x509.ExtensionNotFound:
            emails = []
        if not emails:
            raise PkiError("the certificate names no e-mail address (rfc822Name) in its SAN")
        cns = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        cn = str(cns[0].value) if cns else emails[0]
        for email in emails:
            imported.append(self._store(leaf, key, "external", email.lower(), cn))
        # Intermediates of the external chain travel with signatures.
        others = [c for c in certs if c is not leaf and c.issuer != c.subject]
        if others:
            self._write_extra(f"certs/{format(leaf.serial_number, 'x')}.chain.pem",
                              b"".join(_pem(c) for c in others))
        return imported

    def extra_chain(self, record: CertRecord) -> list[x509.Certificate]:
        """The certificates sent along with a signature by ``record``."""
        if record.kind != "external":
            return self.chain()[:1]
        path = self.directory / record.cert.replace(".pem", ".chain.pem")
        return x509.load_pem_x509_certificates(path.read_bytes()) if path.exists() else []


def load_import(data: bytes, key_data: bytes | None, password: bytes | None,
                p12: bool) -> tuple[list[x509.Certificate], PrivateKey | None]:
    """Parse ``pki import`` input: PKCS#12, or PEM certificates (+ PEM key)."""
    try:
        if p12:
            key, cert, extra = pkcs12.load_key_and_certificates(data, password)
            certs = ([cert] if cert else []) + list(extra)
        else:
            certs = x509.load_pem_x509_certificates(data)
            key = None
            source = key_data if key_data is not None else (data if b"PRIVATE KEY-----" in data else None)
            if source is not None:
                key = serialization.load_pem_private_key(source, password)
    except ValueError as exc:
        raise PkiError(f"cannot read the import file: {exc}") from None
    if key is not None and not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise PkiError("unsupported key type (ECDSA or RSA expected)")
    return certs, key

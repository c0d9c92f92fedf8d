"""DMARC aggregate reports (RFC 7489 section 7.2 and appendix C): the
evaluation we record per message, the XML report we send, the reports we
receive, and the checks on where a report may go.

Theory of operation
-------------------
* Recording. The MX evaluates DMARC for each inbound message
  (``policy.checks.authentication``); ``evaluation_from`` turns the result into
  an ``Evaluation``: the row identity of appendix C (source IP, disposition,
  aligned DKIM/SPF verdicts, override reason, header_from, and the raw DKIM
  and SPF results with their domains), plus the policy as published (for
  ``policy_published``) and its ``rua``/``ri``. Only messages whose author
  domain publishes a DMARC record with ``rua`` are recorded: nobody asked for
  the rest. The wiring hands an ``EvaluationObserver`` to the SMTP side, which
  counts identical evaluations (``Evaluation.key``) per policy domain.
* Sending. Once per reporting interval (the record's ``ri``, clamped to an
  hour..a day) the counted rows of a domain become one ``feedback`` document
  (``report_xml``), gzip-compressed, attached under the name of section
  7.2.1.1 (``report_filename``) and mailed to every ``mailto:`` URI of the
  domain's current ``rua`` (``parse_rua``; a ``!10m`` size limit is
  honoured, section 6.2). A destination outside the policy domain's
  organizational domain must agree to receive them (section 7.1,
  ``destination_verified``: ``<domain>._report._dmarc.<dest>`` TXT
  ``v=DMARC1``).
* Receiving. Reports addressed to our own ``rua`` are parsed with defusedxml
  (no DTDs, no entities: the XML comes from anyone) from an ``application/gzip``,
  ``application/zip`` or XML part (``extract_report``, ``parse_report``).

No sockets here: DNS goes through ``policy.dns.Resolver``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import zipfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Final, Protocol
from xml.etree.ElementTree import Element, SubElement, tostring  # noqa: S405 - building, not parsing

from defusedxml import ElementTree as SafeTree

from policy.checks.authentication import (
    AuthResults,
    DmarcResult,
    normalise_domain,
    organizational_domain,
)
from policy.dns import DnsTempError, Resolver

MAX_REPORT_XML: Final = 20 * 1024 * 1024
"""Largest uncompressed report we parse (a zip/gzip bomb stops here)."""
MAX_RECORDS: Final = 50_000


class ReportFormatError(ValueError):
    """A received aggregate report we cannot read."""


@dataclass(frozen=True, slots=True)
class DkimAuth:
    domain: str
    selector: str
    result: str


@dataclass(frozen=True, slots=True)
class SpfAuth:
    domain: str
    scope: str
    """``mfrom`` or ``helo`` (appendix C ``SPFDomainScope``)."""
    result: str


@dataclass(frozen=True, slots=True)
class PolicyPublished:
    domain: str
    adkim: str = "r"
    aspf: str = "r"
    p: str = "none"
    sp: str = "none"
    pct: int = 100


@dataclass(frozen=True, slots=True)
class Evaluation:
    """One message's DMARC evaluation, as an appendix C ``record`` counts it."""

    policy_domain: str
    """Where the DMARC record was found: the report is for this domain."""
    header_from: str
    source_ip: str
    disposition: str
    dkim: str
    """Aligned DKIM verdict: ``pass`` or ``fail``."""
    spf: str
    override: str = ""
    """``trusted_forwarder`` (ARC override) or ""."""
    override_comment: str = ""
    dkim_results: tuple[DkimAuth, ...] = ()
    spf_results: tuple[SpfAuth, ...] = ()
    published: PolicyPublished = field(default_factory=lambda: PolicyPublished(""))
    rua: tuple[str, ...] = ()
    ri: int = 86400

    def key(self) -> str:
        """Identity of the aggregated row: equal evaluations are counted together."""
        parts = [self.policy_domain, self.header_from, self.source_ip, self.disposition, self.dkim,
                 self.spf, self.override, self.override_comment]
        parts += [f"d:{d.domain}/{d.selector}/{d.result}" for d in self.dkim_results]
        parts += [f"s:{s.domain}/{s.scope}/{s.result}" for s in self.spf_results]
        return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()


def evaluation_json(evaluation: Evaluation) -> str:
    """The evaluation as JSON text (how it is stored until reported)."""
    return json.dumps(asdict(evaluation), ensure_ascii=False, sort_keys=True)


def evaluation_from_json(text: str) -> Evaluation:
    data = json.loads(text)
    return Evaluation(
        policy_domain=data["policy_domain"], header_from=data["header_from"], source_ip=data["source_ip"],
        disposition=data["disposition"], dkim=data["dkim"], spf=data["spf"],
        override=data.get("override", ""), override_comment=data.get("override_comment", ""),
        dkim_results=tuple(DkimAuth(**d) for d in data.get("dkim_results", ())),
        spf_results=tuple(SpfAuth(**s) for s in data.get("spf_results", ())),
        published=PolicyPublished(**data["published"]),
        rua=tuple(data.get("rua", ())), ri=int(data.get("ri", 86400)),
    )


class EvaluationObserver(Protocol):
    """Receives every recorded DMARC evaluation (the wiring passes one to the
    MX). ``observe`` is called on the event loop after the message's checks,
    must not block and must not raise."""

    def observe(self, evaluation: Evaluation) -> None: ...


def evaluation_from(results: AuthResults) -> Evaluation | None:
    """The evaluation to record for ``results``; None when the author domain
    asked for no aggregate reports (no record, no ``rua``) or DMARC could not
    be evaluated (permerror/temperror: nothing to report)."""
    dmarc = results.dmarc
    record = dmarc.record
    if record is None or not record.rua or dmarc.record_domain is None or dmarc.from_domain is None:
        return None
    if dmarc.result not in (DmarcResult.PASS, DmarcResult.FAIL):
        return None
    dkim = tuple(
        DkimAuth(d.domain, d.selector, str(d.result)) for d in results.dkim if d.domain
    )
    spf = (SpfAuth(results.spf.domain, "mfrom" if results.spf.scope == "mailfrom" else "helo",
                   str(results.spf.result)),) if results.spf.domain else ()
    return Evaluation(
        policy_domain=dmarc.record_domain,
        header_from=dmarc.from_domain,
        source_ip=results.ip,
        disposition=results.disposition,
        dkim="pass" if dmarc.dkim_aligned else "fail",
        spf="pass" if dmarc.spf_aligned else "fail",
        override="trusted_forwarder" if results.arc_override else "",
        override_comment=f"arc=pass as.d={results.arc_override}" if results.arc_override else "",
        dkim_results=dkim,
        spf_results=spf,
        published=PolicyPublished(dmarc.record_domain, record.adkim, record.aspf, record.policy,
                                  record.subdomain_policy, record.pct),
        rua=record.rua,
        ri=record.ri,
    )


# -- the report we send ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AggregateReport:
    org_name: str
    email: str
    report_id: str
    begin: int
    """Seconds since the epoch, UTC (appendix C ``DateRangeType``)."""
    end: int
    published: PolicyPublished
    rows: tuple[tuple[Evaluation, int], ...]
    extra_contact_info: str = ""


def _text(parent: Element, name: str, value: object) -> Element:
    node = SubElement(parent, name)
    node.text = str(value)
    return node


def report_xml(report: AggregateReport) -> bytes:
    """The ``feedback`` document of appendix C, elements in schema order.
    No XML namespace: what the large reporters send and every parser reads."""
    root = Element("feedback")
    _text(root, "version", "1.0")
    meta = SubElement(root, "report_metadata")
    _text(meta, "org_name", report.org_name)
    _text(meta, "email", report.email)
    if report.extra_contact_info:
        _text(meta, "extra_contact_info", report.extra_contact_info)
    _text(meta, "report_id", report.report_id)
    dates = SubElement(meta, "date_range")
    _text(dates, "begin", report.begin)
    _text(dates, "end", report.end)
    pub = SubElement(root, "policy_published")
    _text(pub, "domain", report.published.domain)
    _text(pub, "adkim", report.published.adkim)
    _text(pub, "aspf", report.published.aspf)
    _text(pub, "p", report.published.p)
    _text(pub, "sp", report.published.sp)
    _text(pub, "pct", report.published.pct)
    for evaluation, count in report.rows:
        record = SubElement(root, "record")
        row = SubElement(record, "row")
        _text(row, "source_ip", evaluation.source_ip)
        _text(row, "count", count)
        evaluated = SubElement(row, "policy_evaluated")
        _text(evaluated, "disposition", evaluation.disposition)
        _text(evaluated, "dkim", evaluation.dkim)
        _text(evaluated, "spf", evaluation.spf)
        if evaluation.override:
            reason = SubElement(evaluated, "reason")
            _text(reason, "type", evaluation.override)
            if evaluation.override_comment:
                _text(reason, "comment", evaluation.override_comment)
        identifiers = SubElement(record, "identifiers")
        _text(identifiers, "header_from", evaluation.header_from)
        auth = SubElement(record, "auth_results")
        for d in evaluation.dkim_results:
            node = SubElement(auth, "dkim")
            _text(node, "domain", d.domain)
            if d.selector:
                _text(node, "selector", d.selector)
            _text(node, "result", d.result)
        spf_results = evaluation.spf_results or (SpfAuth(evaluation.header_from, "mfrom", "none"),)
        for s in spf_results:  # appendix C: at least one spf element
            node = SubElement(auth, "spf")
            _text(node, "domain", s.domain)
            _text(node, "scope", s.scope)
            _text(node, "result", s.result)
    body: bytes = tostring(root, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body


def report_filename(receiver: str, domain: str, begin: int, end: int, unique: str = "") -> str:
    """Section 7.2.1.1: ``receiver "!" policy-domain "!" begin "!" end [ "!" unique-id ]
    "." extension``, here always ``.xml.gz``."""
    parts = [receiver, domain, str(begin), str(end)] + ([unique] if unique else [])
    return "!".join(parts) + ".xml.gz"


def report_subject(domain: str, submitter: str, report_id: str) -> str:
    """Section 7.2.1.1: the Subject of a report message."""
    return f"Report Domain: {domain} Submitter: {submitter} Report-ID: <{report_id}>"


_SIZE_UNITS: Final = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


@dataclass(frozen=True, slots=True)
class Destination:
    address: str
    max_size: int | None
    """Largest report message the destination accepts (section 6.2 ``!size``)."""

    @property
    def domain(self) -> str:
        return normalise_domain(self.address.rpartition("@")[2])


MAX_DESTINATIONS: Final = 10
"""Report destinations used from one record: whoever sends us mail writes the
record of its From domain, and each destination costs a DNS check and a report."""


def parse_rua(uris: Iterable[str]) -> list[Destination]:
    """The ``mailto:`` destinations of a ``rua`` list (section 6.2, 6.3), the first
    ``MAX_DESTINATIONS``; other schemes and malformed entries are skipped."""
    found: list[Destination] = []
    for uri in uris:
        if len(found) >= MAX_DESTINATIONS:
            break
        uri = uri.strip()
        if uri[:7].lower() != "mailto:":
            continue
        address, bang, size = uri[7:].partition("!")
        address = address.split("?", 1)[0].strip()
        if "@" not in address or not address.rpartition("@")[0]:
            continue
        limit: int | None = None
        if bang:
            digits = size.rstrip("kmgtKMGT")
            unit = size[len(digits):].lower()
            if not digits.isdigit() or unit not in _SIZE_UNITS:
                continue
            limit = int(digits) * _SIZE_UNITS[unit]
        found.append(Destination(address, limit))
    return found


async def destination_verified(resolver: Resolver, policy_domain: str, destination: Destination) -> bool:
    """Section 7.1: a destination outside the policy domain's organizational
    domain must publish ``<policy-domain>._report._dmarc.<dest-domain>`` TXT
    starting ``v=DMARC1``. A DNS failure is "not now" (False)."""
    dest = destination.domain
    if organizational_domain(dest) == organizational_domain(policy_domain):
        return True
    try:
        answers = await resolver.query(f"{normalise_domain(policy_domain)}._report._dmarc.{dest}", "TXT")
    except DnsTempError:
        return False
    return any(a.replace(" ", "").upper().startswith("V=DMARC1") for a in answers)


# -- reports we receive ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReceivedRow:
    source_ip: str
    count: int
    disposition: str
    dkim: str
    spf: str
    header_from: str


@dataclass(frozen=True, slots=True)
class ReceivedReport:
    org_name: str
    email: str
    report_id: str
    begin: int
    end: int
    domain: str
    policy: str
    rows: tuple[ReceivedRow, ...]


def _bounded_gunzip(data: bytes) -> bytes:
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
        out: bytes = f.read(MAX_REPORT_XML + 1)
    if len(out) > MAX_REPORT_XML:
        raise ReportFormatError("report too large")
    return out


def _bounded_unzip(data: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        names = [n for n in z.namelist() if n.lower().endswith(".xml")]
        if not names:
            raise ReportFormatError("zip without an XML report")
        with z.open(names[0]) as f:
            out: bytes = f.read(MAX_REPORT_XML + 1)
    if len(out) > MAX_REPORT_XML:
        raise ReportFormatError("report too large")
    return out


def decompress(data: bytes) -> bytes:
    """XML from a gzip, zip or plain attachment (RFC 7489 section 7.2.1.1)."""
    try:
        if data[:2] == b"\x1f\x8b":
            return _bounded_gunzip(data)
        if data[:4] == b"PK\x03\x04":
            return _bounded_unzip(data)
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ReportFormatError(f"cannot decompress: {exc}") from None
    if len(data) > MAX_REPORT_XML:
        raise ReportFormatError("report too large")
    return data


def extract_report(message: bytes) -> bytes:
    """The report XML of a report message: its first gzip, zip or XML part."""
    parsed: Message = message_from_bytes(message)
    for part in parsed.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        name = (part.get_filename() or "").lower()
        if (ctype in ("application/gzip", "application/x-gzip", "application/zip",
                      "application/x-zip-compressed", "text/xml", "application/xml")
                or name.endswith((".xml.gz", ".zip", ".xml"))):
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes) and payload:
                return decompress(payload)
    raise ReportFormatError("no report attachment")


def _child_text(node: object, path: str, default: str = "") -> str:
    found = node.find(path)  # type: ignore[attr-defined]
    if found is None or found.text is None:
        return default
    return str(found.text).strip()


def _strip_namespaces(root: object) -> None:
    for node in root.iter():  # type: ignore[attr-defined]
        if isinstance(node.tag, str) and "}" in node.tag:
            node.tag = node.tag.rsplit("}", 1)[1]


def parse_report(xml: bytes) -> ReceivedReport:
    """An appendix C ``feedback`` document (with or without the schema's
    namespace); ``ReportFormatError`` when it is not one."""
    try:
        root = SafeTree.fromstring(xml)
    except Exception as exc:  # noqa: BLE001 - defusedxml raises several kinds
        raise ReportFormatError(f"not XML: {exc.__class__.__name__}") from None
    _strip_namespaces(root)
    if root.tag != "feedback":
        raise ReportFormatError(f"not a DMARC report (root {root.tag!r})")
    meta = root.find("report_metadata")
    pub = root.find("policy_published")
    if meta is None or pub is None:
        raise ReportFormatError("report_metadata or policy_published missing")
    try:
        begin = int(_child_text(meta, "date_range/begin", "0"))
        end = int(_child_text(meta, "date_range/end", "0"))
    except ValueError:
        raise ReportFormatError("bad date_range") from None
    rows: list[ReceivedRow] = []
    for record in root.findall("record")[:MAX_RECORDS]:
        count_text = _child_text(record, "row/count", "0")
        if not count_text.isdigit():
            raise ReportFormatError("bad count")
        rows.append(ReceivedRow(
            source_ip=_child_text(record, "row/source_ip")[:64],
            count=int(count_text),
            disposition=_child_text(record, "row/policy_evaluated/disposition", "none")[:16],
            dkim=_child_text(record, "row/policy_evaluated/dkim", "fail")[:16],
            spf=_child_text(record, "row/policy_evaluated/spf", "fail")[:16],
            header_from=_child_text(record, "identifiers/header_from")[:255].lower(),
        ))
    return ReceivedReport(
        org_name=_child_text(meta, "org_name")[:255],
        email=_child_text(meta, "email")[:255],
        report_id=_child_text(meta, "report_id")[:255],
        begin=begin,
        end=end,
        domain=_child_text(pub, "domain")[:255].lower(),
        policy=_child_text(pub, "p", "none")[:16],
        rows=tuple(rows),
    )


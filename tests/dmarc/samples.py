"""A Google-style aggregate report about dongnai.gov.vn (the shape Google's
reports have: no XML namespace, envelope_from, several records), and helpers
shared by the DMARC tests."""

from __future__ import annotations

import gzip
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

from lxml import etree

SCHEMA = Path(__file__).with_name("rfc7489.xsd")

GOOGLE_REPORT = b"""<?xml version="1.0" encoding="UTF-8" ?>
<feedback>
  <report_metadata>
    <org_name>google.com</org_name>
    <email>noreply-dmarc-support@google.com</email>
    <extra_contact_info>https://support.google.com/a/answer/2466580</extra_contact_info>
    <report_id>1234567890123456789</report_id>
    <date_range>
      <begin>1764892800</begin>
      <end>1764979199</end>
    </date_range>
  </report_metadata>
  <policy_published>
    <domain>dongnai.gov.vn</domain>
    <adkim>r</adkim>
    <aspf>r</aspf>
    <p>quarantine</p>
    <sp>quarantine</sp>
    <pct>100</pct>
    <np>quarantine</np>
  </policy_published>
  <record>
    <row>
      <source_ip>203.113.131.5</source_ip>
      <count>42</count>
      <policy_evaluated>
        <disposition>none</disposition>
        <dkim>pass</dkim>
        <spf>pass</spf>
      </policy_evaluated>
    </row>
    <identifiers>
      <header_from>dongnai.gov.vn</header_from>
    </identifiers>
    <auth_results>
      <dkim>
        <domain>dongnai.gov.vn</domain>
        <result>pass</result>
        <selector>s202612</selector>
      </dkim>
      <spf>
        <domain>dongnai.gov.vn</domain>
        <result>pass</result>
      </spf>
    </auth_results>
  </record>
  <record>
    <row>
      <source_ip>198.51.100.66</source_ip>
      <count>7</count>
      <policy_evaluated>
        <disposition>quarantine</disposition>
        <dkim>fail</dkim>
        <spf>fail</spf>
      </policy_evaluated>
    </row>
    <identifiers>
      <envelope_from>phishing.example</envelope_from>
      <header_from>dongnai.gov.vn</header_from>
    </identifiers>
    <auth_results>
      <spf>
        <domain>phishing.example</domain>
        <result>softfail</result>
      </spf>
    </auth_results>
  </record>
</feedback>
"""


def report_message(xml: bytes, to: str, sender: str = "noreply-dmarc-support@google.com") -> bytes:
    """A report message as Google sends it (application/gzip attachment)."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = "Report domain: dongnai.gov.vn Submitter: google.com Report-ID: 1234567890123456789"
    msg["Date"] = "Sat, 05 Dec 2026 08:00:00 +0000"
    msg["Message-ID"] = "<1234567890123456789@google.com>"
    msg.set_content("This is an aggregate report from Google.")
    msg.add_attachment(gzip.compress(xml), maintype="application", subtype="gzip",
                       filename="google.com!dongnai.gov.vn!1764892800!1764979199.xml.gz")
    return msg.as_bytes(policy=SMTP)


def schema_errors(xml: bytes) -> list[str]:
    """Validation errors of ``xml`` against RFC 7489 appendix C ([] when valid)."""
    schema = etree.XMLSchema(etree.parse(str(SCHEMA)))
    doc = etree.fromstring(xml)
    return [] if schema.validate(doc) else [str(e) for e in schema.error_log]

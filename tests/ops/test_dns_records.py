"""``mailserver dns records`` as an operator runs it (subprocess): the zone text parses
as a zone (dnspython) and holds MX, SPF, the DKIM key of the key store, DMARC, the
RFC 6186 SRV records from the public endpoints, and the autoconfiguration names."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import dns.rdatatype
import dns.zone

from mailserver.config import load
from pki.dkim import key_directory
from pki.keystore import DkimKeyStore


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailserver", "--config", str(config), *args],
        capture_output=True, text=True, timeout=120, check=False,
    )


def _config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "mailserver.toml"
    path.write_text(
        f'[server]\ndata_dir = "{tmp_path / "data"}"\nhostname = "mail.dongnai.gov.vn"\n'
        f'domains = ["dongnai.gov.vn", "bienhoa.dongnai.gov.vn"]\n{extra}'
        '[web]\npublic_url = "https://thu.dongnai.gov.vn"\n',
        encoding="utf-8",
    )
    return path


def _txt(zone: dns.zone.Zone, name: str) -> list[str]:
    rdataset = zone.get_rdataset(name, dns.rdatatype.TXT)
    assert rdataset is not None, name
    return [b"".join(r.strings).decode() for r in rdataset]


def test_records_form_a_zone_with_every_record(tmp_path: Path) -> None:
    config = _config(tmp_path, 'public_imap = "imap.dongnai.gov.vn:993"\n')
    assert cli(config, "dkim", "keygen", "--domain", "dongnai.gov.vn").returncode == 0
    done = cli(config, "dns", "records", "--domain", "dongnai.gov.vn")
    assert done.returncode == 0, done.stderr
    assert "bienhoa" not in done.stdout
    zone = dns.zone.from_text(done.stdout, origin="dongnai.gov.vn.", relativize=False, check_origin=False)
    (mx,) = zone.get_rdataset("dongnai.gov.vn.", dns.rdatatype.MX)
    assert (mx.preference, mx.exchange.to_text()) == (10, "mail.dongnai.gov.vn.")
    assert _txt(zone, "dongnai.gov.vn.") == ["v=spf1 mx -all"]
    (key,) = DkimKeyStore(key_directory(load(config).dkim, tmp_path / "data")).keys("dongnai.gov.vn")
    assert _txt(zone, key.dns_name + ".") == [key.txt]  # the 255-octet strings joined again
    (dmarc,) = _txt(zone, "_dmarc.dongnai.gov.vn.")
    assert dmarc.startswith("v=DMARC1; p=quarantine") and "mailto:postmaster@dongnai.gov.vn" in dmarc

    def srv(name: str) -> tuple[int, str]:
        (rr,) = zone.get_rdataset(f"{name}._tcp.dongnai.gov.vn.", dns.rdatatype.SRV)
        return rr.port, rr.target.to_text()

    assert srv("_imaps") == (993, "imap.dongnai.gov.vn.")
    assert srv("_submissions") == (465, "mail.dongnai.gov.vn.")
    assert srv("_submission") == (587, "mail.dongnai.gov.vn.")
    assert srv("_pop3") == (0, ".") and srv("_imap") == (0, ".")
    assert srv("_autodiscover") == (443, "thu.dongnai.gov.vn.")
    for name in ("autoconfig", "autodiscover"):
        (cname,) = zone.get_rdataset(f"{name}.dongnai.gov.vn.", dns.rdatatype.CNAME)
        assert cname.target.to_text() == "thu.dongnai.gov.vn."


def test_every_domain_json_and_missing_dkim(tmp_path: Path) -> None:
    config = _config(tmp_path)
    done = cli(config, "dns", "records", "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert {r["domain"] for r in rows} == {"dongnai.gov.vn", "bienhoa.dongnai.gov.vn"}
    mx = [r for r in rows if r["type"] == "MX"]
    assert [(r["name"], r["value"]) for r in mx] == [
        ("dongnai.gov.vn.", "10 mail.dongnai.gov.vn."),
        ("bienhoa.dongnai.gov.vn.", "10 mail.dongnai.gov.vn.")]
    assert not any("_domainkey" in r["name"] for r in rows)
    text = cli(config, "dns", "records").stdout
    assert "mailserver dkim keygen --domain bienhoa.dongnai.gov.vn" in text


def test_not_a_local_domain(tmp_path: Path) -> None:
    done = cli(_config(tmp_path), "dns", "records", "--domain", "example.org")
    assert done.returncode == 1
    assert "not a local domain" in done.stderr and "Traceback" not in done.stderr

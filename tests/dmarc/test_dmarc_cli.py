"""``mailserver report dmarc`` as an operator runs it (a subprocess over the
data directory): ``--send-now`` queues the pending reports for the rua,
``--import`` reads a received report file, and the summary prints it."""

from __future__ import annotations

import asyncio
import gzip
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from mailserver.config import load
from pki.dkim import key_directory
from pki.keystore import DkimKeyStore
from policy.aggregate import DkimAuth, Evaluation, PolicyPublished, SpfAuth, evaluation_json
from storage import open_store
from storage.dmarc import dmarc_for
from tests.dmarc.samples import GOOGLE_REPORT
from tests.ops.conftest import cli, server_config


def _config(tmp_path: Path) -> Path:
    path = server_config(tmp_path, dmarc={"rua": "dmarc@dongnai.gov.vn"})
    text = path.read_text(encoding="utf-8")
    text += (
        "\n[dns.static]\n"
        '"_dmarc.partner.test TXT" = ["v=DMARC1; p=reject; rua=mailto:dmarc@reports.example"]\n'
        '"partner.test._report._dmarc.reports.example TXT" = ["v=DMARC1"]\n'
    )
    path.write_text(text, encoding="utf-8")
    return path


async def _seed(config_path: Path) -> None:
    config = load(config_path)
    keys = DkimKeyStore(key_directory(config.dkim, config.data_dir))
    keys.generate("dongnai.gov.vn", "s1", "rsa", retire_after=date.today() + timedelta(days=30))
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(config.storage_url, config.maildir)
    await store.start()
    try:
        e = Evaluation(
            policy_domain="partner.test", header_from="partner.test", source_ip="203.0.113.5",
            disposition="reject", dkim="fail", spf="fail",
            dkim_results=(DkimAuth("partner.test", "k", "fail"),),
            spf_results=(SpfAuth("forger.example", "mfrom", "fail"),),
            published=PolicyPublished("partner.test", p="reject", sp="reject"),
            rua=("mailto:dmarc@reports.example",),
        )
        await dmarc_for(store).count_evaluations(
            [("partner.test", e.key(), evaluation_json(e), 5)], datetime.now(UTC)
        )
    finally:
        await store.close()


def test_send_now_import_and_summary(tmp_path: Path) -> None:
    config = _config(tmp_path)
    asyncio.run(_seed(config))
    sent = cli(config, "report", "dmarc", "--send-now")
    assert sent.returncode == 0, sent.stderr
    assert "partner.test -> dmarc@reports.example (1 records, 5 messages" in sent.stdout
    queued = cli(config, "queue", "list", "--json")
    assert queued.returncode == 0, queued.stderr
    (entry,) = json.loads(queued.stdout)
    assert json.dumps(entry).count("dmarc@reports.example") >= 1
    again = cli(config, "report", "dmarc", "--send-now")
    assert again.returncode == 0 and "0 report(s) queued" in again.stderr

    report = tmp_path / "google.com!dongnai.gov.vn!1764892800!1764979199.xml.gz"
    report.write_bytes(gzip.compress(GOOGLE_REPORT))
    imported = cli(config, "report", "dmarc", "--import", str(report))
    assert imported.returncode == 0 and "imported" in imported.stdout, imported.stderr
    twice = cli(config, "report", "dmarc", "--import", str(report))
    assert "already imported" in twice.stdout
    summary = cli(config, "report", "dmarc", "--json")
    rows = {r["source_ip"]: r for r in json.loads(summary.stdout)}
    assert rows["203.113.131.5"]["messages"] == 42 and rows["203.113.131.5"]["failed"] == 0
    assert rows["198.51.100.66"]["failed"] == 7 and rows["198.51.100.66"]["reporters"] == ["google.com"]
    table = cli(config, "report", "dmarc")
    assert "198.51.100.66\t7\t0\t7\tgoogle.com" in table.stdout

    junk = tmp_path / "junk.xml"
    junk.write_text("<html/>")
    bad = cli(config, "report", "dmarc", "--import", str(junk))
    assert bad.returncode != 0 and "not a DMARC aggregate report" in bad.stderr
    assert "Traceback" not in bad.stderr

"""``mailserver domain|alias|forward`` and ``account show`` as an operator runs
them (subprocess over one data dir): changes, listings, the audit log and clear
refusals."""

from __future__ import annotations

from pathlib import Path

from tests.clients.test_cli_directory import cli, cli_json, conf

__all__ = ["conf"]

DEC = ("--decision", "Số 9/QĐ-UBND", "--actor", "admin")


def test_domain_alias_forward_commands(conf: Path) -> None:
    cli(conf, "account", "add", "annv@dongnai.gov.vn", "--name", "Nguyễn Văn An")
    cli(conf, "account", "add", "binhtt@dongnai.gov.vn", "--name", "Trần Thị Bình")
    out = cli(conf, "domain", "add", "dongnai.vn", "--alias-of", "dongnai.gov.vn", *DEC).stdout
    assert "x@dongnai.vn -> x@dongnai.gov.vn" in out and out.index("tên miền") < out.index("alias domain")
    cli(conf, "domain", "add", "binhphuoc.gov.vn", *DEC)
    listed = cli_json(conf, "domain", "list")
    assert [(d["domain"], d["alias_of"]) for d in listed] == [
        ("dongnai.gov.vn", None), ("binhphuoc.gov.vn", None), ("dongnai.vn", "dongnai.gov.vn")]
    # Added domains sign and publish their DNS records like the configured one.
    cli(conf, "dkim", "keygen", "--domain", "binhphuoc.gov.vn")
    zone = cli(conf, "dns", "records").stdout
    assert "binhphuoc.gov.vn" in zone and "dongnai.vn" in zone
    # Another local domain takes accounts; an alias domain does not.
    cli(conf, "account", "add", "lanhdao@binhphuoc.gov.vn", "--name", "Lãnh đạo")
    bad = cli(conf, "account", "add", "x@dongnai.vn", "--name", "X", ok=False)
    assert bad.returncode == 1 and "not a local domain" in bad.stderr
    bad = cli(conf, "domain", "remove", "binhphuoc.gov.vn", ok=False)
    assert bad.returncode == 1 and "hộp thư" in bad.stderr and "Traceback" not in bad.stderr
    bad = cli(conf, "domain", "add", "dongnai.vn", ok=False)
    assert bad.returncode == 1 and "dongnai.vn" in bad.stderr
    bad = cli(conf, "domain", "add", "not a domain", ok=False)
    assert bad.returncode == 1 and "not a valid domain" in bad.stderr

    added = cli_json(conf, "alias", "add", "vanthu@dongnai.gov.vn", "annv@dongnai.gov.vn",
                     "binhtt@dongnai.vn", *DEC)
    assert [(a["alias"], a["target"]) for a in added] == [
        ("vanthu@dongnai.gov.vn", "annv@dongnai.gov.vn"), ("vanthu@dongnai.gov.vn", "binhtt@dongnai.gov.vn")]
    bad = cli(conf, "alias", "add", "x@dongnai.gov.vn", "khongco@dongnai.gov.vn", ok=False)
    assert bad.returncode == 1 and "reaches no mailbox" in bad.stderr
    bad = cli(conf, "alias", "add", "annv@dongnai.gov.vn", "binhtt@dongnai.gov.vn", ok=False)
    assert bad.returncode == 1 and "mailbox in use" in bad.stderr
    cli(conf, "alias", "remove", "vanthu@dongnai.gov.vn", "binhtt@dongnai.gov.vn", *DEC)
    assert [a["target"] for a in cli_json(conf, "alias", "list")] == ["annv@dongnai.gov.vn"]

    cli(conf, "forward", "set", "annv@dongnai.gov.vn", "--to", "an.nha@example.org", "--keep-copy", *DEC)
    bad = cli(conf, "forward", "set", "annv@dongnai.gov.vn", "--to", "binhtt@dongnai.gov.vn", ok=False)
    assert bad.returncode == 1 and "use an alias" in bad.stderr
    assert cli_json(conf, "forward", "list")[0]["to"] == "an.nha@example.org"
    shown = cli_json(conf, "account", "show", "annv@dongnai.gov.vn")
    assert shown["aliases"] == ["vanthu@dongnai.gov.vn"]
    assert shown["alias_domain_addresses"] == ["annv@dongnai.vn"]
    assert shown["forward"] == {"to": "an.nha@example.org", "keep_copy": True}
    text = cli(conf, "account", "show", "annv@dongnai.gov.vn").stdout
    assert "forward: an.nha@example.org (keep copy)" in text
    cli(conf, "forward", "clear", "annv@dongnai.gov.vn", *DEC)
    assert cli_json(conf, "account", "show", "annv@dongnai.gov.vn")["forward"] is None
    bad = cli(conf, "forward", "clear", "annv@dongnai.gov.vn", ok=False)
    assert bad.returncode == 1 and "has no forward" in bad.stderr

    audit = cli(conf, "audit").stdout
    for action in ("domain.add", "alias.add", "alias.remove", "forward.set", "forward.clear"):
        assert action in audit, action
    assert "Số 9/QĐ-UBND" in audit

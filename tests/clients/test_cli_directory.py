"""The directory commands as an operator runs them: `python -m mailserver --config
FILE directory|agency|passwd|account|audit …` in a subprocess over one data dir."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    path = tmp_path / "mailserver.toml"
    path.write_text(f'[server]\ndata_dir = "{tmp_path / "data"}"\n[directory]\noffboard_grace_days = 0\n')
    return path


def cli(
    config: Path, *args: str, stdin: str | None = None, ok: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "mailserver", "--config", str(config), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def cli_json(config: Path, *args: str, stdin: str | None = None) -> Any:
    return json.loads(cli(config, *args, "--json", stdin=stdin).stdout)


def test_directory_agency_passwd_audit(conf: Path, tmp_path: Path) -> None:
    dec = ("--decision", "Số 15/QĐ-UBND", "--actor", "admin.stttt")
    out = cli_json(conf, "agency", "add", "STTTT", "--name", "Sở Thông tin và Truyền thông", *dec)
    assert out["address"] == "stttt@dongnai.gov.vn" and out["must_change_password"]
    cli(conf, "agency", "add", "ubndbienhoa", "--name", "UBND thành phố Biên Hòa", "--parent", "stttt")
    refused = cli(conf, "agency", "add", "postmaster", "--name", "x", ok=False)
    assert refused.returncode == 1 and "reserved" in refused.stderr

    # add-person, text output: address and one-time password.
    proc = cli(
        conf,
        "directory",
        "add-person",
        "--name",
        "Nguyễn Văn An",
        "--agency",
        "stttt",
        "--position",
        "Giám đốc",
        "--phone",
        "0251 3822 123",
        *dec,
    )
    assert "created annv@dongnai.gov.vn" in proc.stdout
    match = re.search(r"initial password: (\S+)", proc.stdout)
    assert match
    initial = match.group(1)
    out = cli_json(
        conf,
        "directory",
        "add-person",
        "--family",
        "Nguyễn Hoàng",
        "--given",
        "Bảo Ngọc",
        "--agency",
        "stttt",
    )
    assert out["address"] == "baongocnh@dongnai.gov.vn"
    again = cli(conf, "directory", "add-person", "--name", "Nguyen Van An", "--agency", "stttt", ok=False)
    assert again.returncode == 1 and "Điều 4" in again.stderr

    # import: good file (dry run first), then a broken one.
    good = tmp_path / "good.csv"
    good.write_bytes(
        "\ufeffho_ten,ho,ten_dem,ten,ma_co_quan,chuc_vu,dien_thoai\n"
        "Trần Thị Bích Ngọc,,,,stttt,Chuyên viên,0909 123 456\n"
        ",Điểu,,K'Lứt,ubndbienhoa,,\n".encode()
    )
    dry = cli_json(conf, "directory", "import", str(good), "--dry-run")
    assert [r["address"] for r in dry["rows"]] == ["ngocttb@dongnai.gov.vn", "klutd@dongnai.gov.vn"]
    assert cli_json(conf, "directory", "search", "ngoc tran")["persons"] == []
    done = cli_json(conf, "directory", "import", str(good))
    assert [(r["line"], r["address"]) for r in done["rows"]] == [
        (2, "ngocttb@dongnai.gov.vn"),
        (3, "klutd@dongnai.gov.vn"),
    ]
    bad = tmp_path / "bad.csv"
    bad.write_text("ho_ten,ma_co_quan\nLê Văn Tám,stttt\nLý Hùng,khong-co\n,stttt\n", encoding="utf-8")
    proc = cli(conf, "directory", "import", str(bad), ok=False)
    assert proc.returncode == 1
    assert f"{bad}:3:" in proc.stderr and f"{bad}:4:" in proc.stderr and "nothing imported" in proc.stderr
    assert cli_json(conf, "directory", "search", "le van tam")["persons"] == []

    # search, accents optional.
    found = cli_json(conf, "directory", "search", "nguyen", "van", "an")
    assert [p["address"] for p in found["persons"]] == ["annv@dongnai.gov.vn"]
    assert "annv@dongnai.gov.vn" in cli(conf, "directory", "search", "giam doc").stdout

    # passwd from stdin: a weak one is refused, a good one clears must-change.
    weak = cli(conf, "passwd", "annv@dongnai.gov.vn", stdin=f"{initial}\nshort\n", ok=False)
    assert weak.returncode == 1 and "10" in weak.stderr
    cli(conf, "passwd", "annv@dongnai.gov.vn", stdin=f"{initial}\nMot-mat-khau-rat-dai-2026\n")
    shown = cli_json(conf, "account", "show", "annv@dongnai.gov.vn")
    assert shown["must_change_password"] is False
    reset = cli_json(conf, "account", "reset-password", "annv@dongnai.gov.vn")
    assert (
        reset["must_change_password"]
        and cli_json(conf, "account", "show", "annv@dongnai.gov.vn")["must_change_password"]
    )
    assert cli_json(conf, "accounts", "warn-expiring") == {"warned": []}

    # agency head, delegates, handover.
    cli(conf, "agency", "set-head", "stttt", "annv@dongnai.gov.vn", *dec)
    out = cli_json(conf, "agency", "delegate", "stttt", "ngocttb@dongnai.gov.vn")
    assert out == {**out, "rights": "lrswipte", "may_send": True}
    out = cli_json(conf, "agency", "delegate", "stttt", "klutd", "--rights", "lr")
    assert (out["address"], out["rights"], out["may_send"]) == ("klutd@dongnai.gov.vn", "lr", False)
    shown = cli_json(conf, "agency", "show", "stttt")
    assert shown["head"]["address"] == "annv@dongnai.gov.vn"
    assert [d["address"] for d in shown["delegations"]] == ["klutd@dongnai.gov.vn", "ngocttb@dongnai.gov.vn"]
    cli(conf, "agency", "revoke", "stttt", "klutd@dongnai.gov.vn")
    assert cli(conf, "agency", "revoke", "stttt", "klutd@dongnai.gov.vn", ok=False).returncode == 1
    out = cli_json(conf, "agency", "handover", "stttt", "baongocnh@dongnai.gov.vn", *dec)
    assert out["address"] == "stttt@dongnai.gov.vn" and out["initial_password"]
    shown = cli_json(conf, "agency", "show", "stttt")
    assert shown["head"]["address"] == "baongocnh@dongnai.gov.vn"
    listing = cli_json(conf, "agency", "list")
    assert [(a["code"], a["parent"]) for a in listing] == [("stttt", None), ("ubndbienhoa", "stttt")]

    # transfer, offboard, purge.
    cli(conf, "directory", "transfer", "klutd@dongnai.gov.vn", "--agency", "stttt", *dec)
    off = cli_json(conf, "directory", "offboard", "klutd@dongnai.gov.vn", *dec)
    assert Path(off["archive"]).is_file() and "/archives/stttt/" in off["archive"]
    purged = cli_json(conf, "directory", "purge")
    assert purged["purged"] == ["klutd@dongnai.gov.vn"]
    retry = cli(
        conf,
        "directory",
        "add-person",
        "--name",
        "Điểu K'Lứt",
        "--agency",
        "stttt",
        "--local-part",
        "klutd",
        ok=False,
    )
    assert retry.returncode == 1 and "never re-issued" in retry.stderr
    tomb = cli(conf, "account", "add", "klutd@dongnai.gov.vn", ok=False)
    assert tomb.returncode == 1 and "retired" in tomb.stderr

    # audit: every change, with actor and decision.
    log = cli_json(conf, "audit")
    actions = [e["action"] for e in log]
    for action in (
        "agency.add",
        "person.add",
        "password.change",
        "password.reset",
        "agency.set-head",
        "agency.delegate",
        "agency.revoke",
        "agency.handover",
        "person.transfer",
        "address.offboarded",
        "address.retired",
    ):
        assert action in actions, action
    first = log[0]
    assert (first["actor"], first["decision"], first["subject"]) == ("admin.stttt", "Số 15/QĐ-UBND", "stttt")
    assert cli_json(conf, "audit", "--since", "2999-01-01") == []
    text = cli(conf, "audit", "--subject", "klutd@dongnai.gov.vn").stdout
    assert "person.transfer" in text and "Số 15/QĐ-UBND" in text


def test_export_formats(conf: Path) -> None:
    cli(conf, "agency", "add", "stttt", "--name", "Sở Thông tin và Truyền thông")
    cli(
        conf,
        "directory",
        "add-person",
        "--name",
        "Trần Thị Bích Ngọc",
        "--agency",
        "stttt",
        "--position",
        "Phó Giám đốc, phụ trách; CNTT",
        "--phone",
        "0251 3822 123",
    )

    agencies_only = json.loads(cli(conf, "directory", "export", "--format", "json").stdout)
    assert [e["address"] for e in agencies_only] == ["stttt@dongnai.gov.vn"]
    everyone = json.loads(cli(conf, "directory", "export", "--format", "json", "--include-persons").stdout)
    assert {e["address"] for e in everyone} == {"stttt@dongnai.gov.vn", "ngocttb@dongnai.gov.vn"}

    rows = list(
        csv.DictReader(
            io.StringIO(cli(conf, "directory", "export", "--format", "csv", "--include-persons").stdout)
        )
    )
    assert [(r["kind"], r["address"]) for r in rows] == [
        ("agency", "stttt@dongnai.gov.vn"),
        ("person", "ngocttb@dongnai.gov.vn"),
    ]
    assert rows[1]["name"] == "Trần Thị Bích Ngọc"

    vcard = subprocess.run(
        [
            sys.executable,
            "-m",
            "mailserver",
            "--config",
            str(conf),
            "directory",
            "export",
            "--format",
            "vcard",
            "--include-persons",
        ],
        capture_output=True,
        timeout=120,
        check=True,
    ).stdout
    assert b"\r\n" in vcard and b"\n" not in vcard.replace(b"\r\n", b"")
    lines = vcard.decode().split("\r\n")
    # Unfold (RFC 6350 section 3.2) and check every content line.
    unfolded: list[str] = []
    for line in lines:
        if line.startswith(" "):
            unfolded[-1] += line[1:]
        elif line:
            unfolded.append(line)
    assert all(len(line.encode()) <= 75 for line in lines)
    assert unfolded.count("BEGIN:VCARD") == 2 == unfolded.count("END:VCARD")
    assert unfolded.count("VERSION:4.0") == 2
    for line in unfolded:
        assert re.match(r"^[A-Z-]+(;[A-Za-z-]+=[^:;]+)*:", line), line
    assert "FN:Trần Thị Bích Ngọc" in unfolded
    assert "N:Trần;Ngọc;Thị Bích;;" in unfolded
    assert "TITLE:Phó Giám đốc\\, phụ trách\\; CNTT" in unfolded
    assert "EMAIL;TYPE=work:ngocttb@dongnai.gov.vn" in unfolded
    assert "KIND:org" in unfolded

    ldif = cli(conf, "directory", "export", "--format", "ldif", "--include-persons").stdout
    assert ldif.startswith("version: 1\n")
    entries = [block for block in ldif.split("\n\n")[1:] if block.strip()]
    assert len(entries) == 2
    for block in entries:
        assert block.splitlines()[0].startswith("dn: mail=")
        assert "objectClass: inetOrgPerson" in block
    person = next(b for b in entries if "ngocttb" in b)
    assert "dn: mail=ngocttb@dongnai.gov.vn,ou=people,dc=dongnai,dc=gov,dc=vn" in person
    cn = next(line for line in person.splitlines() if line.startswith("cn:: "))
    assert base64.b64decode(cn[5:]).decode() == "Trần Thị Bích Ngọc"

    out_file = conf.parent / "danhba.vcf"
    cli(conf, "directory", "export", "--format", "vcard", "--output", str(out_file))
    assert out_file.read_bytes().startswith(b"BEGIN:VCARD\r\nVERSION:4.0\r\n")

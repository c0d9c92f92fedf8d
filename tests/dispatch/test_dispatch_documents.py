"""Issue 16, dispatch of documents as agencies write them: "Nơi nhận" as a Word
list, notes after names, short forms and aliases, "Như trên" / "Như Điều 3",
subject from the document, the issuer's copy in Sent, a refusal said once. The
operator's commands run through the CLI (``mailserver.cli.main`` in this
process, or ``python -m mailserver`` where stderr must be exactly what an
operator sees); the agencies read their mail over IMAP (imaplib)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import imaplib
import json
from email.header import decode_header, make_header
from pathlib import Path

import pytest

from mailserver.app import App
from mailserver.cli import main
from mailserver.dispatch.groups import GroupStore
from tests.conftest import make_config
from tests.dispatch.docs import PASSWORD, make_document, run_cli, seed_province

NOI_NHAN = [
    "Như trên;",
    "Sở TTTT (để biết);",
    "Bộ TT&TT (b/c);",
    "UBND h. Long Thành (để thực hiện);",
    "UBND tp. Biên Hòa;",
    "Sở KHĐT (thay b/c);",
    "Lưu: VT, KGVX.",
]


@pytest.fixture
def province(tmp_path: Path) -> Path:
    config = seed_province(tmp_path)
    groups = GroupStore(tmp_path / "data")
    groups.add("bo-tttt", "Bộ Thông tin và Truyền thông")
    groups.add_member("bo-tttt", "vanthu@mic.gov.vn")
    return config


def cli(config: Path, *args: str) -> int:
    return main(["--config", str(config), *args])


@pytest.mark.parametrize(("numbered", "direct"), [(False, False), (True, False), (False, True), (True, True)])
def test_word_list_with_notes_and_short_forms(
    province: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], numbered: bool, direct: bool
) -> None:
    """Bulleted and numbered lists, by style and by the toolbar's numbering
    properties: no typed "-", yet every recipient is read, notes and all."""
    doc = make_document(tmp_path / "cv.docx", recipients=NOI_NHAN, addressees=["Sở Tài chính;"],
                        numbered=numbered, direct=direct)
    assert cli(province, "dispatch", str(doc), "--from", "ubndtinh", "--from-document", "--dry-run") == 0
    out, err = capsys.readouterr()
    assert out.split() == [
        "stc@dongnai.gov.vn", "stttt@dongnai.gov.vn", "vanthu@mic.gov.vn", "ubndlongthanh@dongnai.gov.vn",
        "ubndbienhoa@dongnai.gov.vn", "skhdt@dongnai.gov.vn",
    ]
    assert "Bộ TT&TT (b/c);  →  Bộ Thông tin và Truyền thông (bo-tttt)" in err
    assert "UBND h. Long Thành (để thực hiện);  →  Ủy ban nhân dân huyện Long Thành (ubndlongthanh)" in err
    assert "Như trên;  →  Kính gửi: Sở Tài chính (stc)" in err


def test_a_block_that_gives_no_recipient_is_an_error(
    province: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Only the issuer's own file copy: nothing to send, and the dry run says so.
    only_archive = make_document(tmp_path / "luu.docx", recipients=["Lưu: VT."])
    assert cli(province, "dispatch", str(only_archive), "--from", "ubndtinh", "--from-document",
               "--dry-run") == 1
    out, err = capsys.readouterr()
    assert out == "" and "no recipient" in err and "không có nơi nhận" in err
    # A heading followed by prose: nothing readable as a recipient line.
    import docx

    prose = docx.Document()
    prose.add_paragraph("Nơi nhận:")
    prose.add_paragraph("Các cơ quan có liên quan")
    prose.save(str(tmp_path / "prose.docx"))
    assert cli(province, "dispatch", str(tmp_path / "prose.docx"), "--from", "ubndtinh",
               "--from-document", "--dry-run") == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "Word bulleted or numbered list" in err and err.index("mục") < err.index("block")


def test_aliases_through_the_cli(province: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = make_document(tmp_path / "cv.docx", typed=True,
                        recipients=["Sở Thông tin - Truyền thông Đồng Nai;", "Lưu: VT."])
    assert cli(province, "dispatch", str(doc), "--from", "ubndtinh", "--from-document", "--dry-run") == 1
    err = capsys.readouterr().err
    assert "✗ Sở Thông tin - Truyền thông Đồng Nai;" in err and "agency alias add" in err
    assert cli(province, "agency", "alias", "add", "stttt", "Sở Thông tin - Truyền thông Đồng Nai") == 0
    assert "alias added" in capsys.readouterr().out
    # One name, one agency: another agency's alias or name is refused.
    assert cli(province, "agency", "alias", "add", "stc", "Sở Thông tin - Truyền thông Đồng Nai") == 1
    assert "stttt" in capsys.readouterr().err
    assert cli(province, "agency", "alias", "add", "stc", "Sở Kế hoạch và Đầu tư") == 1
    assert "skhdt" in capsys.readouterr().err
    assert cli(province, "agency", "alias", "list", "--json") == 0
    assert [(a["agency"], a["name"]) for a in json.loads(capsys.readouterr().out)] == [
        ("stttt", "Sở Thông tin - Truyền thông Đồng Nai")
    ]
    assert cli(province, "dispatch", str(doc), "--from", "ubndtinh", "--from-document", "--dry-run") == 0
    assert capsys.readouterr().out.split() == ["stttt@dongnai.gov.vn"]
    assert cli(province, "agency", "alias", "remove", "stttt", "sở thông tin truyền thông đồng nai") == 0
    assert cli(province, "agency", "alias", "list", "stttt") == 0
    assert capsys.readouterr().out.strip().endswith("alias removed: Sở Thông tin - Truyền thông Đồng Nai")
    assert cli(province, "agency", "alias", "remove", "stttt", "Sở TTTT") == 1
    assert "no alias" in capsys.readouterr().err
    assert cli(province, "audit", "--json") == 0
    actions = [e["action"] for e in json.loads(capsys.readouterr().out)]
    assert "agency.alias-add" in actions and "agency.alias-remove" in actions


def test_nhu_dieu_3_expands_to_the_article(province: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    decision = make_document(
        tmp_path / "qd.docx", number="Số: 70/2026/QĐ-UBND",
        title=["QUYẾT ĐỊNH", "Về việc ban hành Quy chế sử dụng hệ thống thư điện tử",
               "trong các cơ quan nhà nước của tỉnh Đồng Nai"],
        articles=[
            "Điều 1. Ban hành kèm theo Quyết định này Quy chế sử dụng hệ thống thư điện tử.",
            "Điều 2. Quyết định này có hiệu lực kể từ ngày ký.",
            "Điều 3. Chánh Văn phòng Ủy ban nhân dân tỉnh, Giám đốc Sở Tài chính, Chủ tịch UBND huyện "
            "Nhơn Trạch và Thủ trưởng các cơ quan, đơn vị liên quan chịu trách nhiệm thi hành "
            "Quyết định này./.",
        ],
        recipients=["Như Điều 3;", "Sở TT&TT;", "Lưu: VT, KGVX."],
    )
    assert cli(province, "dispatch", str(decision), "--from", "ubndtinh", "--from-document", "--dry-run") == 0
    out, err = capsys.readouterr()
    assert out.split() == ["vpubnd@dongnai.gov.vn", "stc@dongnai.gov.vn", "ubndnhontrach@dongnai.gov.vn",
                           "stttt@dongnai.gov.vn"]
    assert ("Như Điều 3;  →  Điều 3: Văn phòng Ủy ban nhân dân tỉnh (vpubnd), Sở Tài chính (stc), "
            "Ủy ban nhân dân huyện Nhơn Trạch (ubndnhontrach)") in err
    assert "Subject: Số 70/2026/QĐ-UBND - Quyết định về việc ban hành Quy chế sử dụng hệ thống thư điện tử " \
           "trong các cơ quan nhà nước của tỉnh Đồng Nai" in err
    # An article the document does not have, a "Như trên" without "Kính gửi": the
    # reason, and never the advice to skip the main addressees.
    broken = make_document(tmp_path / "qd2.docx", title=["QUYẾT ĐỊNH", "Về việc thử"],
                           articles=["Điều 1. Thử."], recipients=["Như Điều 3;", "Như trên;", "Lưu: VT."])
    assert cli(province, "dispatch", str(broken), "--from", "ubndtinh", "--from-document", "--dry-run") == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "the document has no article Điều 3" in err and 'no "Kính gửi:" line' in err
    assert "--skip" not in err and "nothing sent" in err


def test_policy_refusal_said_once_without_log_lines(province: Path, tmp_path: Path) -> None:
    secret = make_document(tmp_path / "mat.docx", recipients=["Sở TT&TT;"], extra="Độ mật: TỐI MẬT")
    proc = run_cli(province, "dispatch", str(secret), "--from", "ubndtinh", "--to", "stttt", "--unsigned")
    assert proc.returncode == 1
    lines = [x for x in proc.stderr.splitlines() if x.strip() and not x.startswith("  ")]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("mailserver: chính sách từ chối gửi văn bản / refused by policy (550 5.7.1)")
    assert proc.stderr.count("Classified marking") == 1
    assert " INFO " not in proc.stderr and " WARNING " not in proc.stderr
    assert not (tmp_path / "data" / "dispatch").exists()


Fetched = tuple[list[str], bytes, email.message.EmailMessage]


def imap_messages(port: int, user: str, folder: str) -> list[Fetched]:
    """(flags, raw, parsed) of every message of ``folder``, read with imaplib."""
    out: list[Fetched] = []
    with imaplib.IMAP4("127.0.0.1", port) as imap:
        imap.login(user, PASSWORD)
        typ, _ = imap.select(folder, readonly=True)
        assert typ == "OK", folder
        _, data = imap.fetch("1:*", "(FLAGS BODY.PEEK[])")
        for item in data:
            if isinstance(item, tuple):
                flags = imaplib.ParseFlags(item[0])
                message = email.message_from_bytes(item[1], policy=email.policy.default)
                assert isinstance(message, email.message.EmailMessage)
                out.append(([f.decode() for f in flags], item[1], message))
        imap.logout()
    return out


async def test_dispatch_end_to_end_read_over_imap(province: Path, tmp_path: Path) -> None:
    """While the server runs, the operator dispatches a công văn whose number and
    summary are only in the document; the recipients and the issuer's Sent folder
    hold it, subject "Số … - V/v …" letter for letter (RFC 2047, spaces kept)."""
    summary = ("V/v triển khai sử dụng hệ thống thư điện tử công vụ và chữ ký số",
               "trong các cơ quan hành chính nhà nước của tỉnh Đồng Nai năm 2026")
    doc = make_document(tmp_path / "cong-van-1234.docx", recipients=NOI_NHAN, summary=summary,
                        addressees=["Sở Tài chính;", "UBND huyện Nhơn Trạch."])
    subject = "Số 1234/UBND-KGVX - " + " ".join(summary)
    config = make_config(tmp_path / "data")
    async with App(config) as app:
        proc = await asyncio.to_thread(run_cli, province, "dispatch", str(doc), "--from", "ubndtinh",
                                       "--from-document", "--unsigned", "--json")
        assert proc.returncode == 0, proc.stderr
        record = json.loads(proc.stdout)
        assert record["number"] == "1234/UBND-KGVX" and record["subject"] == subject
        assert record["sent_copy"] == "Sent"
        statuses = {r["address"]: r["status"] for r in record["recipients"]}
        assert statuses["vanthu@mic.gov.vn"] == "queued"
        assert {a for a, s in statuses.items() if s == "delivered"} == {
            "stc@dongnai.gov.vn", "ubndnhontrach@dongnai.gov.vn", "stttt@dongnai.gov.vn",
            "ubndlongthanh@dongnai.gov.vn", "ubndbienhoa@dongnai.gov.vn", "skhdt@dongnai.gov.vn",
        }
        port = app.addresses["imap"][1]
        for user in ("stc@dongnai.gov.vn", "ubndbienhoa@dongnai.gov.vn"):
            [(_, _, received)] = await asyncio.to_thread(imap_messages, port, user, "INBOX")
            assert str(received["Subject"]) == subject
            assert received["X-Document-Number"] == "1234/UBND-KGVX"
            sender = received["From"].addresses[0]
            assert sender.addr_spec == "ubndtinh@dongnai.gov.vn"
            [attachment] = list(received.iter_attachments())
            assert attachment.get_filename() == "cong-van-1234.docx"
        [(flags, raw, copy)] = await asyncio.to_thread(imap_messages, port, "ubndtinh@dongnai.gov.vn", "Sent")
        assert "\\Seen" in flags and str(copy["Subject"]) == subject
        assert await asyncio.to_thread(imap_messages, port, "ubndtinh@dongnai.gov.vn", "INBOX") == []
    # Header lines of at most 76 characters, CRLF only, and the display name
    # decodes exactly with the stdlib's RFC 2047 decoder (section 6.2).
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii() and b"\n" not in head.replace(b"\r\n", b"")
    fields = email.message_from_bytes(raw, policy=email.policy.compat32)
    display = str(fields["From"]).rsplit("<", 1)[0]
    assert str(make_header(decode_header(display))).strip() == "Ủy ban nhân dân tỉnh Đồng Nai"


def test_a_full_issuer_mailbox_does_not_undo_the_dispatch(
    province: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The recipients have the document even when the issuer's own mailbox is too
    full for its copy: the record says the copy is missing, and why."""
    assert cli(province, "account", "set-quota", "ubndtinh@dongnai.gov.vn", "1K") == 0
    doc = make_document(tmp_path / "cv.docx", recipients=["Sở TT&TT;", "Lưu: VT."])
    capsys.readouterr()
    assert cli(province, "dispatch", str(doc), "--from", "ubndtinh", "--from-document", "--unsigned") == 0
    out, err = capsys.readouterr()
    assert "stttt@dongnai.gov.vn" in out and "delivered" in out
    assert "the issuer's copy could not be filed: 552 5.2.2 mailbox full" in err
    assert cli(province, "dispatch", "list") == 0
    dispatch_id = capsys.readouterr().out.split()[0]
    assert cli(province, "dispatch", "status", dispatch_id, "--json") == 0
    record = json.loads(capsys.readouterr().out)
    assert record["sent_copy"] == "" and record["sent_copy_error"] == "552 5.2.2 mailbox full"

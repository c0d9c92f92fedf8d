"""Unit tests per check and for the pipeline's failure handling."""

from __future__ import annotations

import asyncio
import io
import zipfile
from pathlib import Path
from typing import ClassVar

import pytest

from policy import codes
from policy.bayes import Bayes
from policy.checks import Check, MessageView, Resources
from policy.checks.sender import SenderCheck
from policy.clients import clamd_scan, spamd_check
from policy.context import Direction, EnvelopeInfo, PolicyContext, SessionInfo
from policy.extract import legacy
from policy.extract.walk import EICAR, Limits, analyse
from policy.markings import scan_name, scan_subject, scan_text
from policy.pipeline import Pipeline
from policy.settings import PolicySettings
from policy.verdict import Action, Verdict
from storage.quarantine import FileQuarantine, NoSuchEntry
from tests.policy import corpus


def ctx(sender: str = "a@example.org", direction: Direction = Direction.INBOUND) -> PolicyContext:
    return PolicyContext(SessionInfo("192.0.2.1", session_id="t"), EnvelopeInfo(sender, ["b@dongnai.gov.vn"]),
                         direction, local_domains=("dongnai.gov.vn",))


def pipeline(tmp_path: Path, **kw: object) -> Pipeline:
    return Pipeline.from_settings(PolicySettings(workers=0, **kw), data_dir=tmp_path,  # type: ignore[arg-type]
                                  local_domains=["dongnai.gov.vn"])


# -- legacy encodings ------------------------------------------------------------
@pytest.mark.parametrize(("encoded", "encoding", "text"), [
    ("MËT", "tcvn3", "MẬT"), ("TèI MËT", "tcvn3", "TỐI MẬT"), ("TUYÖT MËT", "tcvn3", "TUYỆT MẬT"),
    ("Céng hoµ x· héi chñ nghÜa ViÖt Nam", "tcvn3", "Cộng hoà xã hội chủ nghĩa Việt Nam"),
    ("§éc lËp - Tù do - H¹nh phóc", "tcvn3", "Độc lập - Tự do - Hạnh phúc"),
    ("MAÄT", "vni", "MẬT"), ("TOÁI MAÄT", "vni", "TỐI MẬT"),
    ("Coäng hoøa xaõ hoäi chuû nghóa Vieät Nam", "vni", "Cộng hòa xã hội chủ nghĩa Việt Nam"),
    ("Ñoäc laäp - Töï do - Haïnh phuùc", "vni", "Độc lập - Tự do - Hạnh phúc"),
    ("ngöôøi, öôùc, quyeát ñònh", "vni", "người, ước, quyết định"),
])
def test_legacy_decoding(encoded: str, encoding: str, text: str) -> None:
    assert legacy.decode(encoded, encoding) == text


def test_legacy_round_trip_and_detection() -> None:
    text = "Ủy ban nhân dân tỉnh Đồng Nai quyết định về việc sử dụng thư điện tử"
    assert legacy.detect(legacy.encode_tcvn3(text).decode("latin-1")) == "tcvn3"
    assert legacy.detect(legacy.encode_vni(text).decode("latin-1")) == "vni"
    assert legacy.detect(text) is None  # Unicode is never decoded twice
    assert legacy.decode(legacy.encode_vni(text).decode("latin-1"), "vni") == text


# -- markings --------------------------------------------------------------------
@pytest.mark.parametrize("line", ["MẬT", "TỐI MẬT", "[TUYỆT MẬT]", "Độ mật: Mật", "MẬT - KHẨN",
                                  "Số: 5/BC\t\tTỐI MẬT", "Độ khẩn: Khẩn   Độ mật: Tuyệt mật"])
def test_stamp_lines(line: str) -> None:
    assert scan_text(line, structural=False)


@pytest.mark.parametrize("line", ["bảo mật", "mật khẩu", "bí mật", "mật độ", "mật ong", "mật mã", "thân mật",
                                  "giải mật", "không phải văn bản mật", "trừ những văn bản mật", "mật",
                                  "tài liệu mật phải được quản lý theo quy định", "MẶT TRẬN", "tiền mặt",
                                  "tối đa", "BẢO MẬT", "Độ mật: Thường", "ĐÃ GIẢI MẬT", "Mật"])
def test_ordinary_words_do_not_match(line: str) -> None:
    assert not scan_text(line, structural=False)


def test_subjects_and_names() -> None:
    assert scan_subject("[MẬT] Báo cáo") and scan_subject("Re: (Tối mật) kế hoạch")
    assert not scan_subject("Hướng dẫn đổi mật khẩu") and not scan_subject("MẶT TRẬN TỔ QUỐC")
    assert scan_name("QUYET DINH TOI MAT.docx") and scan_name("BÁO CÁO TUYỆT MẬT.pdf")
    assert not scan_name("quyet dinh toi mat.docx")  # accent-stripped only in capitals
    assert not scan_name("MAT TRAN TO QUOC.docx") and not scan_name("TIEN MAT.xlsx")


@pytest.mark.parametrize("name", [
    "TOI MAT.docx", "TOI_MAT_Bao_cao.docx", "Ke hoach TUYET-MAT.pdf", "MAT.pdf", "MAT_KeHoach2025.xlsx",
    "Bao cao (MAT).docx", "[MAT] ke hoach.pdf", "bao-cao-MAT.pdf", "TOIMAT_2025.docx", "QD 12-MAT.docx",
    "Bao cao MAT.docx",
])
def test_accent_stripped_names(name: str) -> None:
    assert scan_name(name)


@pytest.mark.parametrize("name", [
    "MAT TRAN TO QUOC.docx", "TIEN MAT.xlsx", "Phieu chi tien MAT.xlsx", "DS_MAT_HANG.xlsx",
    "GIAI_PHONG_MAT_BANG.pdf", "Giai phong MAT bang.pdf", "Export MAT file.txt", "MAT-file-export.txt",
    "Hop MAT cuoi nam.docx", "KE HOACH MAT BANG.docx", "MAT_KHAU.txt", "Báo cáo MẶT HÀNG.docx",
    "quyet dinh toi mat.docx", "BE MAT DUONG.pdf", "Vang MAT.xlsx",
])
def test_accent_stripped_names_that_are_not_markings(name: str) -> None:
    assert not scan_name(name)


def test_titles_and_title_case_stamps() -> None:
    assert scan_name("TOI MAT - So lieu quy II", "title") and scan_name("Tuyệt mật", "title")
    assert not scan_name("MAT, simulation data", "title") and not scan_name("Hướng dẫn bảo mật", "title")
    header = ["ỦY BAN NHÂN DÂN", "TỈNH ĐỒNG NAI", "Số: 12/BC-UBND"]
    assert scan_text("\n".join([*header, "Mật", "BÁO CÁO", "Về tình hình"]), structural=False)
    assert scan_text("Số ký hiệu: 37/KH\nĐộ mật:\nMật\nĐộ khẩn: Khẩn", structural=False)
    # "Mật" is also a given name: after a sign-off, as the last line, in a name column.
    assert not scan_text("Chào anh Hùng,\nEm gửi anh file.\nTrân trọng,\nMật", structural=False)
    assert not scan_text("BÁO CÁO\nNgười lập\nMật", structural=True)
    assert not scan_text("Họ và tên đệm\nTên\nTrần Thị\nMật\nChuyên viên", structural=True)
    assert not scan_text("Tên\nMật\nAn", structural=True, cells=True)
    # The levels listed in a guide, one per line or in a table with a column beside them.
    assert not scan_text("Các độ mật:\n- Mật\n- Tối mật\n- Tuyệt mật", structural=True)
    assert not scan_text("Độ mật\nKý hiệu\nMật\nC\nTối mật\nB\nTuyệt mật\nA", structural=True)
    assert not scan_text("Độ mật gồm:\nMẬT\nTỐI MẬT\nTUYỆT MẬT", structural=False)
    # Without a document header around it, a lone title-case line in mail text is not a stamp.
    assert not scan_text("Chào chị,\nMật\nlà tên em ạ", structural=False)


def test_spreadsheet_header_footer_and_properties() -> None:
    sheet = corpus.xlsx([["a"]], header='&L&"Times New Roman,Bold"&14TUYỆT MẬT&RTrang &P', sheet="Số liệu",
                        title="TOI MAT - So lieu")
    analysis = analyse(corpus.message("x", attachments=[("a.xlsx", sheet, corpus.XLSX)]), Limits())
    wheres = {where for where, _ in analysis.markings}
    assert 'attachment "a.xlsx" (header/footer)' in wheres and 'attachment "a.xlsx" (properties)' in wheres
    odf = corpus.ods([["a"]], header="TỐI MẬT", sheet="MẬT", user_defined=("Độ mật", "Tối mật"))
    analysis = analyse(corpus.message("x", attachments=[("a.ods", odf, corpus.ODS)]), Limits())
    assert {w for w, _ in analysis.markings} == {
        'attachment "a.ods" (header/footer)',
        'attachment "a.ods" (sheet name)',
        'attachment "a.ods" (properties)',
    }


# -- limits ------------------------------------------------------------------------
def bomb() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zero.bin", b"\0" * (50 * 1024 * 1024))
    return out.getvalue()


async def test_zip_bomb_is_refused_not_unpacked(tmp_path: Path) -> None:
    data = corpus.message("Hồ sơ", attachments=[("hoso.zip", bomb(), "application/zip")])
    outcome = await pipeline(tmp_path).check_data(ctx(), data)
    assert outcome.action is Action.REJECT and outcome.reply == codes.S554_CONTENT_LIMITS
    assert "zip bomb" in outcome.reasons[0]


async def test_deep_nesting_is_refused(tmp_path: Path) -> None:
    data = b"inner"
    for level in range(12):
        data = corpus.zipped({f"l{level}.zip": data})
    message = corpus.message("Hồ sơ", attachments=[("deep.zip", data, "application/zip")])
    analysis = analyse(message, Limits(max_depth=5))
    assert analysis.refused is not None and "nesting" in analysis.refused
    outcome = await pipeline(tmp_path).check_data(ctx(), message)
    assert outcome.action is Action.REJECT


# -- failure handling ----------------------------------------------------------------
class Crashing(Check):
    name: ClassVar[str] = "crashing"

    async def data(self, ctx: PolicyContext, message: MessageView) -> Verdict | None:
        raise RuntimeError("boom")


class Slow(Check):
    name: ClassVar[str] = "slow"

    async def data(self, ctx: PolicyContext, message: MessageView) -> Verdict | None:
        await asyncio.sleep(10)
        return None


@pytest.mark.parametrize("check_cls", [Crashing, Slow])
async def test_failing_check_gives_451_never_accept(check_cls: type[Check], tmp_path: Path) -> None:
    settings = PolicySettings(workers=0, check_timeout=0.2)
    pipe = Pipeline(settings, [check_cls(Resources(settings, tmp_path))])
    outcome = await pipe.check_data(ctx(), corpus.message("Xin chào", "Nội dung"))
    assert outcome.action is Action.TEMPFAIL and not outcome.accepted and not outcome.quarantine
    assert outcome.reply.code == 451 and outcome.reply.enhanced == "4.3.0"


async def test_later_reject_wins_over_a_crash(tmp_path: Path) -> None:
    settings = PolicySettings(workers=0)
    pipe = Pipeline.from_settings(settings, data_dir=tmp_path)
    pipe.checks.insert(0, Crashing(Resources(settings, tmp_path)))
    outcome = await pipe.check_data(ctx(), corpus.message("[MẬT] Báo cáo"))
    assert outcome.action is Action.REJECT and outcome.decided_by and outcome.decided_by.check == "classified"


async def test_process_pool_path(tmp_path: Path) -> None:
    pipe = Pipeline.from_settings(PolicySettings(workers=1), data_dir=tmp_path)
    try:
        outcome = await pipe.check_data(ctx(), corpus.message("Báo cáo", "\n".join(corpus.stamped("MẬT"))))
    finally:
        await pipe.close()
    assert outcome.action is Action.REJECT and outcome.reply == codes.S550_CLASSIFIED


# -- overrides, allow lists, headers ---------------------------------------------------
async def test_action_overrides(tmp_path: Path) -> None:
    message = corpus.message("[MẬT] Báo cáo")
    quarantined = await pipeline(tmp_path, classified={"action": "quarantine"}).check_data(ctx(), message)
    assert quarantined.quarantine and quarantined.reply.code == 250 and quarantined.reasons
    ignored = await pipeline(tmp_path, classified={"action": "ignore"}).check_data(ctx(), message)
    assert ignored.accepted and not ignored.quarantine and b"/ignored" in ignored.header_bytes()


async def test_allow_sender_and_x_policy_header(tmp_path: Path) -> None:
    pipe = pipeline(tmp_path, classified={"allow_senders": ["@gateway.dongnai.gov.vn"]})
    outcome = await pipe.check_data(ctx("vt@gateway.dongnai.gov.vn"), corpus.message("[MẬT] Báo cáo"))
    assert outcome.accepted and b"classified=allowed" in outcome.header_bytes()
    legacy_msg = corpus.message("Cũ", attachments=[("a.txt", legacy.encode_tcvn3(
        "Cộng hoà xã hội chủ nghĩa Việt Nam, Độc lập - Tự do - Hạnh phúc"), "text/plain")])
    tagged = await pipe.check_data(ctx(), legacy_msg)
    assert tagged.accepted and b"X-Legacy-Encoding: tcvn3; parts=1" in tagged.header_bytes()
    assert pipe.stats["legacy.tcvn3"] == 1


async def test_block_list_at_mail_from(tmp_path: Path) -> None:
    pipe = pipeline(tmp_path, spam={"block_senders": ["@spam.example"]})
    outcome = await pipe.check_mail_from(ctx("x@spam.example"))
    assert outcome.action is Action.REJECT and outcome.reply == codes.S550_SENDER_BLOCKED


def test_unknown_option_is_an_error() -> None:
    with pytest.raises(ValueError, match="policy.spam.nope"):
        PolicySettings(spam={"nope": 1})
    with pytest.raises(ValueError, match="unknown check"):
        PolicySettings(checks=["classified", "antivirus"])


# -- spam ------------------------------------------------------------------------------
def test_bayes_learns(tmp_path: Path) -> None:
    bayes = Bayes(tmp_path / "b.sqlite")
    for i in range(6):
        bayes.learn(corpus.message("Vay tiền nhanh", f"vay tiền nhanh lãi suất thấp giải ngân {i}"), True)
        bayes.learn(corpus.message("Lịch họp", f"lịch họp giao ban sở thông tin truyền thông {i}"), False)
    from policy.bayes import message_tokens

    spam_p = bayes.probability(message_tokens(corpus.message("x", "vay tiền nhanh giải ngân")))
    ham_p = bayes.probability(message_tokens(corpus.message("x", "lịch họp giao ban sở")))
    assert spam_p is not None and ham_p is not None and spam_p > 0.9 > 0.1 > ham_p
    bayes.close()


async def test_learn_entry_point(tmp_path: Path) -> None:
    pipe = pipeline(tmp_path)
    await pipe.learn(corpus.message("Vay", "vay tiền nhanh"), True)
    spam_check = next(c for c in pipe.checks if c.name == "spam")
    assert spam_check.bayes.totals() == (1, 0)  # type: ignore[attr-defined]
    await pipe.close()


# -- fake daemons on loopback -------------------------------------------------------------
async def fake_server(handler: object) -> tuple[asyncio.AbstractServer, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)  # type: ignore[arg-type]
    port = server.sockets[0].getsockname()[1]
    return server, f"127.0.0.1:{port}"


async def fake_clamd(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    assert await reader.readexactly(10) == b"zINSTREAM\0"
    data = b""
    while True:
        size = int.from_bytes(await reader.readexactly(4), "big")
        if size == 0:
            break
        data += await reader.readexactly(size)
    writer.write(b"stream: Eicar-Signature FOUND\0" if EICAR in data else b"stream: OK\0")
    await writer.drain()
    writer.close()


async def test_clamd_instream(tmp_path: Path) -> None:
    server, address = await fake_clamd_server()
    try:
        assert await clamd_scan(address, b"hello" * 30000, 5) is None
        assert await clamd_scan(address, b"x" * 70000 + EICAR, 5) == "Eicar-Signature"
        pipe = Pipeline.from_settings(PolicySettings(workers=0, clamd=address,
                                                     malware={"block_extensions": []}), data_dir=tmp_path)
        # EICAR hidden from the built-in scan by base64-in-text: clamd decides.
        outcome = await pipe.check_data(ctx(), corpus.message("Hi", "plain text"))
        assert outcome.accepted
        server.close()
        await server.wait_closed()
        down = await pipe.check_data(ctx(), corpus.message("Hi", "plain text"))
        assert down.action is Action.TEMPFAIL  # clamd configured but unreachable: never a pass
    finally:
        server.close()


async def fake_clamd_server() -> tuple[asyncio.AbstractServer, str]:
    return await fake_server(fake_clamd)


async def test_spamd_client() -> None:
    async def spamd(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read()
        spam = b"lottery" in data
        writer.write(b"SPAMD/1.1 0 EX_OK\r\nSpam: %s ; %s / 5.0\r\n\r\n" % (
            b"True" if spam else b"False", b"15.2" if spam else b"0.3"))
        await writer.drain()
        writer.close()

    server, address = await fake_server(spamd)
    try:
        result = await spamd_check(address, b"Subject: x\r\n\r\nlottery", 5)
        assert result.is_spam and result.score == 15.2
        assert not (await spamd_check(address, b"Subject: x\r\n\r\nhello", 5)).is_spam
    finally:
        server.close()


# -- quarantine store --------------------------------------------------------------------
def test_file_quarantine(tmp_path: Path) -> None:
    q = FileQuarantine(tmp_path / "quarantine")
    entry = q.put(b"Subject: x\r\n\r\nbody", sender="a@example.org", recipients=["b@dongnai.gov.vn"],
                  reasons=["classified: MẬT"])
    assert [e.id for e in q.list()] == [entry.id]
    meta, data = q.get(entry.id)
    assert data.endswith(b"body") and meta.reasons == ["classified: MẬT"]
    q.delete(entry.id)
    assert q.list() == []
    with pytest.raises(NoSuchEntry):
        q.get("../../etc/passwd")


async def test_spam_phrases_are_searched_in_the_first_scan_size_characters(tmp_path: Path) -> None:
    """Like SpamAssassin's body_part_scan_size: phrases past [policy.spam] scan_size
    characters are not searched (the cost of the search grows with the text)."""
    phrase = "vay tiền nhanh, quà tặng miễn phí"
    early = corpus.message("Thông báo", phrase + "\n" + "Nội dung bình thường. " * 4000)
    late = corpus.message("Thông báo", "Nội dung bình thường. " * 4000 + "\n" + phrase)

    async def report(pipe: Pipeline, data: bytes) -> str:
        outcome = await pipe.check_data(ctx(), data)
        header = outcome.header_bytes().decode()
        return header.split("X-Spam-Report: ", 1)[1].split("\r\n", 1)[0]

    default, wide = pipeline(tmp_path), pipeline(tmp_path, spam={"scan_size": 200_000})
    try:
        assert await report(default, early) == await report(wide, early) == await report(wide, late)
        assert "LOAN=1" in await report(wide, late) and "PRIZE=1" in await report(wide, late)
        beyond = await report(default, late)
        assert "LOAN" not in beyond and "PRIZE" not in beyond
    finally:
        await default.close()
        await wide.close()
    with pytest.raises(ValueError, match="scan_size"):
        PolicySettings(spam={"scan_size": 0})


# -- relay and sender rules (policy/checks/sender.py) ---------------------------------
def _ours(domain: str) -> bool:
    return domain.lower() == "dongnai.gov.vn"


async def _only_annv(address: str) -> bool:
    return address.lower() == "annv@dongnai.gov.vn"


@pytest.mark.parametrize(
    ("sender", "may_relay", "may_send_as", "expected"),
    [
        ("", False, None, None),  # the null reverse-path (RFC 5321 section 4.5.5)
        ("x@example.org", False, None, None),
        ("annv@dongnai.gov.vn", False, None, codes.S553_SENDER_NOT_ALLOWED),  # ours, from outside
        ("annv@dongnai.gov.vn", True, None, None),  # a relay_networks client
        ("annv@dongnai.gov.vn", True, _only_annv, None),  # submission, the account's own
        ("binh@dongnai.gov.vn", True, _only_annv, codes.S553_SENDER_NOT_OWNED),
        ("", True, _only_annv, None),  # an MDN (RFC 8098 section 2.1)
    ],
)
async def test_sender_rules_at_mail_from(
    tmp_path: Path, sender: str, may_relay: bool, may_send_as: object, expected: codes.Reply | None
) -> None:
    check = SenderCheck(Resources(PolicySettings(), tmp_path))
    context = PolicyContext(SessionInfo("192.0.2.1"), EnvelopeInfo(sender), may_relay=may_relay,
                            is_local=_ours, may_send_as=may_send_as)  # type: ignore[arg-type]
    verdict = await check.mail_from(context)
    assert (verdict.reply if verdict is not None else None) == expected


@pytest.mark.parametrize(
    ("rcpt", "may_relay", "refused"),
    [("a@dongnai.gov.vn", False, False), ("a@DongNai.gov.vn", False, False), ("postmaster", False, False),
     ("a@example.org", False, True), ("a@[127.0.0.1]", False, True), ("a@example.org", True, False)],
)
async def test_relay_rule_at_rcpt(tmp_path: Path, rcpt: str, may_relay: bool, refused: bool) -> None:
    check = SenderCheck(Resources(PolicySettings(), tmp_path))
    context = PolicyContext(SessionInfo("192.0.2.1"), may_relay=may_relay, is_local=_ours)
    verdict = await check.rcpt(context, rcpt)
    assert (verdict is not None and verdict.reply == codes.S554_RELAY_DENIED) == refused


async def test_every_pipeline_runs_the_sender_rules_first(tmp_path: Path) -> None:
    settings = PolicySettings(workers=0, checks=["spam", "sender"])
    configured = Pipeline.from_settings(settings, data_dir=tmp_path)
    assert [c.name for c in configured.checks] == ["sender", "spam"]
    bare = Pipeline(PolicySettings(workers=0), [])
    outcome = await bare.check_rcpt(PolicyContext(SessionInfo("192.0.2.1")), "a@example.org")
    assert outcome.action is Action.REJECT and outcome.reply == codes.S554_RELAY_DENIED

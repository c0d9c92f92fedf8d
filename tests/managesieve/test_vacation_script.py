"""The portal's out-of-office as a managed Sieve script (mailserver/ops/vacation.py),
run by the real engine over a real SQLite store: it answers inside its dates,
keeps the user's own filters (included), and turning it off restores them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailserver.ops import vacation
from mailserver.ops.sieve import SieveLimits
from mailserver.sieve.engine import SieveEngine
from mailserver.sieve.message import MessageView
from mailserver.sieve.settings import SieveSettings
from storage.api import MailStore
from storage.sieve import sieve_scripts_for
from storage.sievestate import MemorySieveState

OWNER = "annv@dongnai.gov.vn"
FILTER = 'require "fileinto";\nif header :contains "subject" "Báo cáo" { fileinto "Báo cáo"; }\n'
MESSAGE = (
    "From: Đối tác <doitac@partner.test>\r\nTo: annv@dongnai.gov.vn\r\n"
    "Subject: =?utf-8?b?QsOhbyBjw6FvIHRow6FuZw==?=\r\nMessage-ID: <1@partner.test>\r\n\r\nNội dung\r\n"
).encode()


async def _evaluate(store: MailStore, tmp_path: Path, now: datetime):  # type: ignore[no-untyped-def]
    engine = SieveEngine(SieveSettings(), sieve_scripts_for(store), MemorySieveState(), global_dir=tmp_path)
    return await engine.evaluate(
        OWNER, MessageView(MESSAGE), sender="doitac@partner.test", recipient=OWNER, now=now
    )


async def test_vacation_wraps_the_users_script(store: MailStore, tmp_path: Path) -> None:
    await store.create_account(OWNER, "Nguyễn Văn An", "$argon2id$fake")
    scripts = sieve_scripts_for(store)
    await scripts.put_script(OWNER, "lọc thư", FILTER)
    await scripts.set_active(OWNER, "lọc thư")
    settings = vacation.validate(
        "2026-12-10", "2026-12-20", "Vắng mặt", 'Tôi đi công tác "Hà Nội".\nLiên hệ chị Bình.', "3"
    )
    saved = await vacation.turn_on(scripts, OWNER, settings, SieveLimits(), "+07:00")
    assert saved.previous == "lọc thư"
    state = await vacation.current(scripts, OWNER)
    assert state.active and state.settings == saved
    assert (await scripts.get_script(OWNER, "lọc thư")).text == FILTER  # type: ignore[union-attr]

    # Inside the dates (the last day in the province's zone included): a reply, and still filed.
    inside = await _evaluate(store, tmp_path, datetime(2026, 12, 20, 16, 0, tzinfo=UTC))  # 23:00 +07
    assert inside is not None and inside.vacation is not None
    assert inside.vacation.subject == "Vắng mặt" and inside.vacation.seconds == 3 * 86400
    assert 'Tôi đi công tác "Hà Nội".' in inside.vacation.reason
    assert [f.folder for f in inside.keep] == ["Báo cáo"]
    # After it (00:30 on the 21st in +07): no reply, the user's filter alone.
    after = await _evaluate(store, tmp_path, datetime(2026, 12, 20, 17, 30, tzinfo=UTC))
    assert after is not None and after.vacation is None and [f.folder for f in after.keep] == ["Báo cáo"]

    # Saving again keeps including the user's script, not itself.
    again = await vacation.turn_on(
        scripts, OWNER, replace(settings, subject="Nghỉ phép"), SieveLimits(), "+07:00"
    )
    assert again.previous == "lọc thư"

    assert await vacation.turn_off(scripts, OWNER)
    active = await scripts.active_script(OWNER)
    assert active is not None and active.name == "lọc thư"
    off = await vacation.current(scripts, OWNER)
    assert not off.active and off.settings is not None and off.settings.subject == "Nghỉ phép"
    assert not await vacation.turn_off(scripts, OWNER)


async def test_vacation_without_a_previous_script(store: MailStore, tmp_path: Path) -> None:
    await store.create_account(OWNER, "Nguyễn Văn An", "$argon2id$fake")
    scripts = sieve_scripts_for(store)
    settings = vacation.validate("2026-12-10", "2026-12-20", "", "Vắng mặt", "7")
    await vacation.turn_on(scripts, OWNER, settings, SieveLimits(), "+07:00")
    inside = await _evaluate(store, tmp_path, datetime(2026, 12, 15, 3, 0, tzinfo=UTC))
    assert inside is not None and inside.vacation is not None and inside.implicit_keep
    assert await vacation.turn_off(scripts, OWNER)
    assert await scripts.active_script(OWNER) is None


@pytest.mark.parametrize(
    ("start", "end", "message", "days", "error"),
    [
        ("2026-12-20", "2026-12-10", "x", "7", "before the start"),
        ("20/12/2026", "2026-12-30", "x", "7", "Invalid date"),
        ("2026-12-10", "2026-12-20", "   ", "7", "needs a message"),
        ("2026-12-10", "2026-12-20", "x", "0", "1 to 90"),
        ("2026-12-10", "2026-12-20", "x", "abc", "Invalid number"),
        ("2026-12-10", "2026-12-20", "x" * 6000, "7", "longer than"),
    ],
)
def test_validation(start: str, end: str, message: str, days: str, error: str) -> None:
    with pytest.raises(vacation.VacationError, match=error):
        vacation.validate(start, end, "Vắng mặt", message, days)

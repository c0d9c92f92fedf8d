"""Usage report and check compliance against a scripted history of deliveries,
logins and agency-mailbox opens (Decision 70/2009 Điều 13, Điều 6 khoản 6)."""

from __future__ import annotations

import asyncio
import csv
import imaplib
import io
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import update

from mailserver.app import App
from mailserver.auth import hash_password
from mailserver.config import Config
from mailserver.directory.service import DirectoryService
from mailserver.ops.report import (
    build_check_report,
    build_usage_report,
    render_checks,
    render_csv,
    render_json,
    render_table,
    working_days,
)
from mailserver.ops.report_html import render_usage_html
from storage import open_store
from storage.activity import activity_for
from storage.api import MailStore
from storage.directory import By, open_directory
from storage.sql import models
from storage.sql.directory_models import DirAgency
from storage.sql.store import SqlMailStore
from tests.conftest import make_config

BY = By("tester", "Số 1/QĐ-UBND")
PASSWORD = "Mat-khau-kiem-tra-2026"
VN = timezone(timedelta(hours=7))


def mail(sender: str, to: str, mid: str, subject: str = "Công văn") -> bytes:
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{mid}>\r\n\r\nNội dung.\r\n"
    ).encode()


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """March 2025, local time (+07:00)."""
    return datetime(2025, 3, day, hour, minute, tzinfo=VN)


@pytest.fixture
async def history(tmp_path: Path, backend_url: str) -> AsyncIterator[tuple[Config, MailStore]]:
    config = make_config(tmp_path / "data", backend_url)
    config = replace(config, accounts=replace(config.accounts, max_password_age_days=60))
    config.data_dir.mkdir(parents=True)
    store = open_store(config.storage_url, config.maildir)
    await store.start()
    try:
        svc = DirectoryService(store, open_directory(store), config)
        stttt = await svc.add_agency("stttt", "Sở Thông tin và Truyền thông", None, by=BY)
        await svc.add_agency("ubndbienhoa", "UBND thành phố Biên Hòa", None, by=BY)
        an = await svc.add_person("Nguyễn Văn An", "stttt", by=BY)
        binh = await svc.add_person("Trần Thị Bình", "stttt", by=BY)
        chi = await svc.add_person("Lê Minh Chí", "ubndbienhoa", by=BY)
        ids = {}
        for name, issued in (("an", an), ("binh", binh), ("chi", chi), ("stttt", stttt)):
            account = await store.get_account(issued.address)
            assert account is not None
            ids[name] = account
        # Creation and password dates in the past, as if the accounts were old; the
        # Biên Hòa agency was created on Wednesday 5 March, in the period.
        assert isinstance(store, SqlMailStore)
        async with store.db.write() as conn:
            accounts = models.Account.__table__
            agencies = DirAgency.__table__
            await conn.execute(update(accounts).values(created_at=datetime(2025, 1, 1, tzinfo=UTC)))
            await conn.execute(update(agencies).values(created_at=datetime(2025, 1, 1, tzinfo=UTC)))
            await conn.execute(update(agencies).where(agencies.c.code == "ubndbienhoa")
                               .values(created_at=at(5, 10)))
            await conn.execute(
                update(accounts).where(accounts.c.id == ids["an"].id)
                .values(password_changed_at=datetime(2025, 2, 1, tzinfo=UTC))
            )
        a, b, c = ids["an"].address, ids["binh"].address, ids["chi"].address
        sent = {acc.id: (await store.get_folder(acc.id, "Sent")).id for acc in ids.values()}
        # 1. external -> An (received external)
        await store.deliver([ids["an"].id], mail("x@gmail.com", a, "m1@gmail.com"), internal_date=at(4, 9))
        # 2. An -> Binh, with An's Sent copy (one internal sent, one internal received)
        await store.deliver([ids["binh"].id], mail(a, b, "m2@dongnai"), internal_date=at(4, 10))
        await store.append(ids["an"].id, sent[ids["an"].id], mail(a, b, "m2@dongnai"),
                           internal_date=at(4, 10))
        # 3. An -> outside (sent external, only the Sent copy)
        await store.append(ids["an"].id, sent[ids["an"].id], mail(a, "y@yahoo.com", "m3@dongnai"),
                           internal_date=at(5, 11))
        # 4. Binh -> Chi without a Sent copy (sending seen from Chi's copy)
        await store.deliver([ids["chi"].id], mail(b, c, "m4@dongnai"), internal_date=at(6, 14))
        # 5. after the period: not counted
        await store.deliver([ids["an"].id], mail("x@gmail.com", a, "m5@gmail.com"), internal_date=at(10, 9))
        # 6. the same message twice in Chi's mailbox (a COPY): counted once
        await store.deliver([ids["chi"].id], mail("z@example.org", c, "m6@example.org"),
                            internal_date=at(7, 8))
        await store.deliver([ids["chi"].id], mail("z@example.org", c, "m6@example.org"),
                            internal_date=at(7, 8))
        await store.record_login(ids["an"].id, datetime(2025, 3, 4, tzinfo=UTC))
        await store.record_login(ids["stttt"].id, datetime(2025, 3, 5, tzinfo=UTC))
        activity = activity_for(store)
        opens = [
            at(3, 8), at(3, 16),          # Monday: 2 (checked)
            at(4, 6),                     # Tuesday 06:00 local = Monday 23:00 UTC: 1 (not checked)
            at(5, 8), at(5, 12), at(5, 17),  # Wednesday: 3
            at(7, 9), at(7, 23, 30),      # Friday: 2 (23:30 local is still Friday)
            at(8, 9), at(8, 10),          # Saturday: not a working day
        ]
        for when in opens:
            assert await activity.record_mailbox_open(ids["stttt"].id, when, by=ids["an"].id)
        # A personal mailbox's INBOX is not an agency mailbox: nothing recorded.
        assert not await activity.record_mailbox_open(ids["an"].id, at(3, 9))
        yield config, store
    finally:
        await store.close()


async def test_usage_report_matches_the_scripted_history(history: tuple[Config, MailStore]) -> None:
    config, store = history
    report = await build_usage_report(
        config, store, open_directory(store), activity_for(store), date(2025, 3, 3), date(2025, 3, 9),
        now=datetime(2025, 6, 1, tzinfo=UTC),
    )
    rows = {r.address.split("@")[0]: r for r in report.accounts}
    an = next(r for k, r in rows.items() if k.startswith("an"))
    binh = next(r for k, r in rows.items() if k.startswith("binh"))
    chi = next(r for k, r in rows.items() if k.startswith("chi"))
    assert (an.sent_internal, an.sent_external, an.received_internal, an.received_external) == (1, 1, 0, 1)
    assert (binh.sent_internal, binh.sent_external, binh.received_internal, binh.received_external) == (
        1, 0, 1, 0)
    assert (chi.sent_internal, chi.received_internal, chi.received_external) == (0, 1, 1)
    assert not an.never_logged_in and binh.never_logged_in and chi.never_logged_in
    # Password age at the end of the period (2025-03-09 17:00 UTC).
    assert an.password_age_days == 36 and not an.password_expired
    assert binh.password_age_days == 67 and binh.password_expired
    assert an.storage_bytes == (await store.quota((await store.get_account(an.address)).id)).storage_used
    assert an.agency_code == "stttt" and chi.agency_code == "ubndbienhoa"

    agencies = {a.code: a for a in report.agencies}
    st = agencies["stttt"]
    assert (st.accounts, st.active, st.never_logged_in) == (3, 2, 1)
    assert (st.sent_internal, st.sent_external, st.received_internal, st.received_external) == (2, 1, 1, 1)
    assert (st.working_days, st.days_checked) == (5, 3)
    assert [n for _, n in st.opens_by_day] == [2, 1, 3, 0, 2]
    assert st.passwords_expired == 2  # Bình and the agency mailbox itself (67 days > 60)
    bh = agencies["ubndbienhoa"]
    # Working days count from the agency's creation (Wednesday): 5, 6 and 7 March.
    assert (bh.working_days, bh.days_checked, bh.accounts) == (3, 0, 2)
    assert [d.day for d, _ in bh.opens_by_day] == [5, 6, 7]
    assert report.totals["accounts"] == 5

    one = await build_usage_report(
        config, store, open_directory(store), activity_for(store), date(2025, 3, 3), date(2025, 3, 9),
        agency="stttt", now=datetime(2025, 6, 1, tzinfo=UTC),
    )
    assert [a.code for a in one.agencies] == ["stttt"] and len(one.accounts) == 3

    data = json.loads(render_json(report))
    assert data["agencies"][0]["check_rate"] == pytest.approx(0.6)
    table = list(csv.reader(io.StringIO(render_csv(report))))
    assert table[0][0] == "agency_code" and len(table) == 1 + 5
    html = render_usage_html(report)
    assert "<svg" in html and "Báo cáo khai thác" in html and "Điều 13" in html
    assert "src=" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")


async def test_report_is_written_for_people(history: tuple[Config, MailStore]) -> None:
    """Issue 16: the text table fits 120 columns, sizes read KB/MB/GB, times are in
    province time with the zone, charts name agencies, and the check rule is stated."""
    config, store = history
    svc = DirectoryService(store, open_directory(store), config)
    long_name = "Ban Quản lý các Khu công nghiệp tỉnh Đồng Nai và các đơn vị sự nghiệp trực thuộc Ban"
    kcn = await svc.add_agency("bqlkcndongnai", long_name, None, by=BY)
    box = await store.get_account(kcn.address)
    assert box is not None
    big = b"From: x@example.org\r\nSubject: ho so\r\n\r\n" + b"a" * 3_000_000 + b"\r\n"
    await store.deliver([box.id], big, internal_date=at(4, 9))
    await store.record_login(box.id, datetime(2025, 3, 4, 2, 30, tzinfo=UTC))  # 09:30 in Đồng Nai
    report = await build_usage_report(
        config, store, open_directory(store), activity_for(store), date(2025, 3, 3), date(2025, 3, 9),
        now=datetime(2025, 6, 1, tzinfo=UTC),
    )
    text = render_table(report)
    widths = [len(line) for line in text.splitlines()]
    assert max(widths) <= 120, [line for line in text.splitlines() if len(line) > 120]
    assert "2.9 MB" in text and "bytes)" not in text.split("\n\n")[1]
    assert "2025-03-04 09:30" in text and "UTC+07:00" in text
    assert "BODY.PEEK" in text and "mbsync" in text  # the rule is documented
    assert "Ban Quản lý các Khu công nghiệp" in text and kcn.address in text
    html = render_usage_html(report)
    charts = html[html.index("<svg"):html.rindex("</svg>")]
    assert "Sở Thông tin và Truyền thông" in charts and "UBND thành phố Biên Hòa" in charts
    assert ">stttt<" not in charts and ">ubndbienhoa<" not in charts
    assert 'viewBox="0 0 ' in charts
    assert "2.9 MB" in html and "MiB" not in html and "KiB" not in html
    assert "2025-03-04 09:30" in html and "2025-06-01 07:00 +07:00" in html
    assert "BODY.PEEK" in html
    rows = list(csv.DictReader(io.StringIO(render_csv(report))))
    row = next(r for r in rows if r["address"] == kcn.address)
    assert row["storage_bytes"] == str(len(big)) and row["last_access_at"] == "2025-03-04T09:30:00+07:00"


async def test_check_report_lists_mailboxes_not_checked_twice(history: tuple[Config, MailStore]) -> None:
    config, store = history
    tuesday = await build_check_report(config, open_directory(store), activity_for(store), date(2025, 3, 4))
    assert {a.code for a in tuesday.unchecked} == {"stttt", "ubndbienhoa"}
    assert next(a for a in tuesday.agencies if a.code == "stttt").opens == 1
    wednesday = await build_check_report(config, open_directory(store), activity_for(store), date(2025, 3, 5))
    assert [a.code for a in wednesday.unchecked] == ["ubndbienhoa"]
    assert "ubndbienhoa" in render_checks(wednesday) and "Điều 6 khoản 6" in render_checks(wednesday)


def test_working_days_skip_weekends() -> None:
    assert working_days(date(2025, 3, 1), date(2025, 3, 9)) == [date(2025, 3, d) for d in (3, 4, 5, 6, 7)]


MBSYNC_RC = """IMAPAccount head
Host 127.0.0.1
Port {port}
User {user}
Pass {password}
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account head

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel shared
Far :remote:
Near :local:
Patterns Shared/stttt/INBOX
Create Near
SyncState *
"""


@pytest.mark.skipif(shutil.which("mbsync") is None, reason="mbsync not installed")
async def test_checks_count_human_attention_not_background_sync(tmp_path: Path) -> None:
    """Issue 16 (Điều 6 khoản 6): SELECT, BODY.PEEK and an mbsync run are no check;
    reading a body or changing a flag is, once per person per hour; the agency
    mailbox's last access includes its head's shared access."""
    config = make_config(tmp_path / "data")
    async with App(config) as app:
        svc = DirectoryService(app.store, open_directory(app.store), config)
        agency = await svc.add_agency("stttt", "Sở Thông tin và Truyền thông", None, by=BY)
        head = await svc.add_person("Nguyễn Văn An", "stttt", by=BY)
        clerk = await svc.add_person("Trần Thị Bình", "stttt", by=BY)
        await svc.set_head("stttt", head.address, by=BY)
        await svc.delegate("stttt", clerk.address, by=BY)
        ids = {}
        for address in (head.address, clerk.address, agency.address):
            account = await app.store.get_account(address)
            assert account is not None
            await app.store.set_password(account.id, hash_password(PASSWORD), must_change_password=False)
            ids[address] = account.id
        for n in range(2):
            await app.store.deliver([ids[agency.address]], mail("dan@example.org", agency.address, f"q{n}@x"))
            await app.store.deliver([ids[head.address]], mail("dan@example.org", head.address, f"p{n}@x"))
        port = app.addresses["imap"][1]
        activity = activity_for(app.store)
        window = (datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC) + timedelta(hours=1))

        async def checks() -> list[tuple[int, datetime]]:
            return await activity.mailbox_opens(*window)

        def imap(user: str, *steps: tuple[str, ...]) -> None:
            with imaplib.IMAP4("127.0.0.1", port) as m:
                m.login(user, PASSWORD)
                for step in steps:
                    typ, data = getattr(m, step[0])(*step[1:])
                    assert typ == "OK", (step, data)

        shared = '"Shared/stttt/INBOX"'
        # Opening and peeking, as a sync client does: no check.
        await asyncio.to_thread(imap, head.address, ("select", shared), ("fetch", "1:*", "(BODY.PEEK[])"),
                                ("select", shared, True), ("fetch", "1:*", "(FLAGS BODY.PEEK[HEADER])"))
        assert await checks() == []
        local = tmp_path / "mbsync"
        local.mkdir()
        rc = tmp_path / "mbsyncrc"
        rc.write_text(MBSYNC_RC.format(port=port, user=head.address, password=PASSWORD, local=local))
        for _ in range(2):
            run = await asyncio.to_thread(
                subprocess.run, ["mbsync", "-c", str(rc), "-a"], capture_output=True, timeout=60,
                env={**os.environ, "HOME": str(tmp_path)},
            )
            assert run.returncode == 0, run.stderr.decode() + run.stdout.decode()
        pulled = [p for p in local.rglob("*") if p.is_file() and p.parent.name in ("cur", "new")]
        assert len(pulled) == 2  # mbsync did read both messages
        assert await checks() == []
        # The agency mailbox never logged in itself, but its head used it.
        report = await build_usage_report(config, app.store, open_directory(app.store), activity,
                                          date.today() - timedelta(days=1), date.today() + timedelta(days=1))
        row = next(r for r in report.accounts if r.address == agency.address)
        assert row.last_login_at is None and not row.never_logged_in and row.last_access_at is not None
        assert next(a for a in report.agencies if a.code == "stttt").never_logged_in == 1  # Bình only

        # The head reads a message (\Seen set): one check; reading more within the hour: still one.
        await asyncio.to_thread(imap, head.address, ("select", shared), ("fetch", "1", "(BODY[])"),
                                ("fetch", "2", "(BODY[TEXT])"))
        await asyncio.to_thread(imap, head.address, ("select", shared, True), ("fetch", "1:*", "(BODY[])"))
        assert [(a, when.tzinfo is not None) for a, when in await checks()] == [(ids[agency.address], True)]
        # The delegate flags a message: another person, another check.
        await asyncio.to_thread(imap, clerk.address, ("select", shared),
                                ("store", "1", "+FLAGS", "(\\Flagged)"))
        # Reading one's own INBOX is no agency check.
        await asyncio.to_thread(imap, head.address, ("select", "INBOX"), ("fetch", "1:*", "(BODY[])"))
        assert [a for a, _ in await checks()] == [ids[agency.address]] * 2
        today = datetime.now(VN).date()
        checked = await build_check_report(config, open_directory(app.store), activity, today)
        assert next(a for a in checked.agencies if a.code == "stttt").opens == 2
        assert "BODY.PEEK" in render_checks(checked) and "mbsync" in render_checks(checked)

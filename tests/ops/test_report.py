"""Usage report and check compliance against a scripted history of deliveries,
logins and agency-mailbox opens (Decision 70/2009 Điều 13, Điều 6 khoản 6)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from imapclient import IMAPClient
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
    working_days,
)
from mailserver.ops.report_html import render_usage_html
from storage import open_store
from storage.activity import activity_for
from storage.api import MailStore
from storage.directory import By, open_directory
from storage.sql import models
from storage.sql.store import SqlMailStore
from tests.conftest import make_config

BY = By("tester", "Số 1/QĐ-UBND")
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
        # Creation and password dates in the past, as if the accounts were old.
        assert isinstance(store, SqlMailStore)
        async with store._write() as conn:
            accounts = models.Account.__table__
            await conn.execute(update(accounts).values(created_at=datetime(2025, 1, 1, tzinfo=UTC)))
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
    assert (bh.working_days, bh.days_checked, bh.accounts) == (5, 0, 2)
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


async def test_imap_select_of_the_agency_inbox_is_recorded(tmp_path: Path) -> None:
    config = make_config(tmp_path / "data")
    async with App(config) as app:
        svc = DirectoryService(app.store, open_directory(app.store), config)
        agency = await svc.add_agency("stttt", "Sở Thông tin và Truyền thông", None, by=BY)
        mailbox = await app.store.get_account(agency.address)
        assert mailbox is not None
        await app.store.set_password(mailbox.id, hash_password("Mat-khau-co-quan-2026"),
                                     must_change_password=False)
        person = await svc.add_person("Nguyễn Văn An", "stttt", by=BY)
        own = await app.store.get_account(person.address)
        assert own is not None
        await app.store.set_password(own.id, hash_password("Mat-khau-ca-nhan-2026"),
                                     must_change_password=False)
        port = app.addresses["imap"][1]

        def session(user: str, password: str, folders: list[tuple[str, bool]]) -> None:
            with IMAPClient("127.0.0.1", port=port, ssl=False, timeout=30) as client:
                client.login(user, password)
                for folder, readonly in folders:
                    client.select_folder(folder, readonly=readonly)

        import asyncio

        await asyncio.to_thread(session, agency.address, "Mat-khau-co-quan-2026",
                                [("INBOX", False), ("INBOX", True), ("Sent", False)])
        await asyncio.to_thread(session, person.address, "Mat-khau-ca-nhan-2026", [("INBOX", False)])
        opens = await activity_for(app.store).mailbox_opens(datetime.now(UTC) - timedelta(hours=1),
                                                            datetime.now(UTC) + timedelta(hours=1))
        assert [account for account, _ in opens] == [mailbox.id, mailbox.id]

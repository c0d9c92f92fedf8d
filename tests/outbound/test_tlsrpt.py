"""TLS-RPT (RFC 8460) around the server: reports others send to our rua are
accepted without a mailbox, parsed and shown in /admin/tlsrpt and by the CLI;
``mailserver report tlsrpt --send-now`` queues our reports; the portal serves our
MTA-STS policy (RFC 8461 section 3.3) for each local domain."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import aiosmtplib

from mailserver.app import App
from mailserver.auth import hash_password
from mailserver.smtp.mtasts import parse_policy
from mailserver.smtp.tlsrpt import build_report, parse_report_message, report_message
from storage.queue import open_queue
from storage.tlsrpt import TlsResult, open_tlsrpt
from tests.ops.conftest import cli, server_config
from tests.web.helpers import OPERATOR, OPERATOR_PASSWORD, csrf_of, portal_config

START = datetime(2026, 12, 4, tzinfo=UTC)


def google_report() -> bytes:
    """A report as a large provider sends one about mail it delivered to us."""
    rows = [TlsResult(START, "dongnai.gov.vn", "sts", ("version: STSv1", "mode: testing",
                      "mx: mx.test.dongnai.gov.vn", "max_age: 604800"), "mx.test.dongnai.gov.vn",
                      "203.0.113.5", "success")] * 5 + [
        TlsResult(START, "dongnai.gov.vn", "sts", ("version: STSv1",), "mx.test.dongnai.gov.vn",
                  "203.0.113.5", "certificate-expired")] * 2
    report = build_report(rows, domain="dongnai.gov.vn", organization="Google LLC",
                          contact="smtp-tls-reporting@google.com", report_id="2026-12-04T00:00:00Z_dongnai",
                          start=START, end=START + timedelta(days=1))
    return report_message(report, domain="dongnai.gov.vn", submitter="google.com",
                          sender="noreply-smtp-tls-reporting@google.com",
                          recipients=["tlsrpt@dongnai.gov.vn"], now=START + timedelta(days=1))


def test_report_round_trip() -> None:
    parsed = parse_report_message(google_report())
    assert parsed.organization == "Google LLC" and parsed.policy_domains == ("dongnai.gov.vn",)
    assert (parsed.success, parsed.failure) == (5, 2) and parsed.start == START


async def test_reports_received_shown_in_admin_and_cli(tmp_path: Path) -> None:
    config = portal_config(tmp_path / "data")
    async with App(config) as app:
        await app.store.create_account(OPERATOR, "Vận hành", hash_password(OPERATOR_PASSWORD),
                                       must_change_password=False)
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=app.addresses["smtp"][1], start_tls=False)
        await smtp.connect()
        try:
            # No mailbox tlsrpt@ exists: the address is the report sink (tlsrpt.rua default).
            await smtp.sendmail("noreply-smtp-tls-reporting@google.com", ["tlsrpt@dongnai.gov.vn"],
                                google_report())
            junk = b"From: x@example.com\r\nSubject: hello\r\n\r\nnot a report\r\n"
            await smtp.sendmail("x@example.com", ["tlsrpt@dongnai.gov.vn"], junk)
        finally:
            await smtp.quit()
        (got,) = await app.tlsrpt.received()
        assert got.organization == "Google LLC" and (got.success, got.failure) == (5, 2)
        assert json.loads(got.body)["report-id"] == "2026-12-04T00:00:00Z_dongnai"

        base = f"http://127.0.0.1:{app.addresses['web'][1]}"
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            # Our own MTA-STS policy, per local domain (RFC 8461 section 3.3).
            async with http.get(f"{base}/.well-known/mta-sts.txt",
                                headers={"Host": "mta-sts.dongnai.gov.vn"}, allow_redirects=False) as resp:
                assert resp.status == 200 and resp.content_type == "text/plain"
                policy = parse_policy(await resp.text())
            assert policy.mode == "testing" and policy.mx == ("mx.test.dongnai.gov.vn",)
            assert policy.max_age == 604800
            async with http.get(f"{base}/.well-known/mta-sts.txt",
                                headers={"Host": "mta-sts.example.com"}) as resp:
                assert resp.status == 404
            # The operators' page.
            async with http.get(f"{base}/admin/login") as resp:
                token = csrf_of(await resp.text())
            async with http.post(f"{base}/admin/login", data={
                "csrf": token, "address": OPERATOR, "password": OPERATOR_PASSWORD, "totp": "",
            }) as resp:
                assert resp.status == 200
            async with http.get(f"{base}/admin/tlsrpt") as resp:
                html = await resp.text()
                assert resp.status == 200
            assert "Google LLC" in html and "tlsrpt@dongnai.gov.vn" in html and "Báo cáo TLS" in html

    toml = server_config(tmp_path)
    result = await asyncio.to_thread(cli, toml, "report", "tlsrpt", "--received", "--json")
    assert result.returncode == 0, result.stderr
    (listed,) = json.loads(result.stdout)
    assert listed["organization"] == "Google LLC" and listed["failure"] == 2


async def test_cli_send_now_queues_a_report(tmp_path: Path) -> None:
    toml = server_config(tmp_path)
    with toml.open("a", encoding="utf-8") as fh:
        fh.write('\n[dns.static]\n"_smtp._tls.example.net TXT" = '
                 '["v=TLSRPTv1; rua=mailto:tls@example.net,https://example.net/tlsrpt"]\n')
    data = tmp_path / "data"
    data.mkdir(parents=True, exist_ok=True)
    url = f"sqlite+aiosqlite:///{(data / 'mailserver.db').resolve()}"
    store = open_tlsrpt(url)
    await store.start()
    now = datetime.now(UTC)
    await store.record([
        TlsResult(now, "example.net", "no-policy-found", (), "mx.example.net", "192.0.2.1", "success"),
        TlsResult(now, "example.net", "sts", ("mode: enforce",), "mx.example.net", "192.0.2.1",
                  "starttls-not-supported"),
        TlsResult(now, "quiet.example", "no-policy-found", (), "mx.quiet.example", "192.0.2.2", "success"),
    ])
    await store.close()

    pending = await asyncio.to_thread(cli, toml, "report", "tlsrpt", "--json")
    assert pending.returncode == 0, pending.stderr
    assert {(p["domain"], p["result"], p["count"]) for p in json.loads(pending.stdout)} == {
        ("example.net", "success", 1), ("example.net", "starttls-not-supported", 1),
        ("quiet.example", "success", 1),
    }
    result = await asyncio.to_thread(cli, toml, "report", "tlsrpt", "--send-now", "--json")
    assert result.returncode == 0, result.stderr
    (sent,) = json.loads(result.stdout)
    assert sent["domain"] == "example.net" and sent["rua"] == ["tls@example.net"]
    types = {p["policy"]["policy-type"]: p["summary"] for p in sent["report"]["policies"]}
    assert types == {
        "no-policy-found": {"total-successful-session-count": 1, "total-failure-session-count": 0},
        "sts": {"total-successful-session-count": 0, "total-failure-session-count": 1},
    }
    queue = open_queue(url, data / "queue")
    await queue.start()
    try:
        (queued,) = await queue.list()
        assert [r.address for r in queued.recipients] == ["tls@example.net"]
        assert queued.origin == "tlsrpt" and queued.sender == "postmaster@dongnai.gov.vn"
    finally:
        await queue.close()
    again = await asyncio.to_thread(cli, toml, "report", "tlsrpt", "--send-now", "--json")
    assert again.returncode == 0 and json.loads(again.stdout) == [], "every row reported once"


def test_dns_records_publish_mta_sts_tlsrpt_and_tlsa(tmp_path: Path) -> None:
    from dataclasses import replace
    from datetime import date

    from cryptography import x509

    from mailserver.ops.dnsrecords import mta_sts_id, records, zone_text
    from mailserver.smtp.mtasts import parse_txt
    from mailserver.smtp.outbound_settings import MtaStsSettings
    from mailserver.smtp.tlsrpt import parse_tlsrpt_txt
    from pki.dane import association, parse_tlsa
    from pki.tls import ensure_certificate
    from tests.conftest import make_config

    config = make_config(tmp_path / "data")
    ensure_certificate(config.tls_cert, config.tls_key, config.server.hostname)
    by_name = {(r.name, r.type): r.value for r in records(config, "dongnai.gov.vn", date(2026, 12, 5))}
    txt = by_name[("_mta-sts.dongnai.gov.vn.", "TXT")].strip('"')
    assert parse_txt([txt]) == mta_sts_id(config)
    assert ("mta-sts.dongnai.gov.vn.", "CNAME") in by_name
    rua = parse_tlsrpt_txt([by_name[("_smtp._tls.dongnai.gov.vn.", "TXT")].strip('"')])
    assert rua == ["mailto:tlsrpt@dongnai.gov.vn"]
    tlsa = parse_tlsa(by_name[("_25._tcp.mx.test.dongnai.gov.vn.", "TLSA")])
    cert = x509.load_pem_x509_certificate(config.tls_cert.read_bytes())
    assert tlsa is not None and (tlsa.usage, tlsa.selector, tlsa.mtype) == (3, 1, 1)
    assert tlsa.data == association(cert, 1, 1)
    # The id follows the policy; one TLSA line for two domains.
    enforce = replace(config, mta_sts=MtaStsSettings(mode="enforce"))
    assert mta_sts_id(enforce) != mta_sts_id(config)
    zone = zone_text(config, ["dongnai.gov.vn", "dongnai.vn"], date(2026, 12, 5))
    assert zone.count(" TLSA 3 1 1 ") == 1
    assert not any(r.name.startswith("_mta-sts") for r in records(
        replace(config, mta_sts=MtaStsSettings(mode="none")), "dongnai.gov.vn", date(2026, 12, 5)))


async def test_store_on_both_backends(tmp_path: Path, backend_url: str) -> None:
    store = open_tlsrpt(backend_url or f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    await store.start()
    try:
        now = datetime.now(UTC)
        row = TlsResult(now, "a.example", "no-policy-found", (), "mx", "192.0.2.1", "success")
        await store.record([row, row])
        first, second = await store.unreported(now + timedelta(seconds=1))
        await store.mark_reported([first.id], now - timedelta(days=40))
        assert await store.purge(now - timedelta(days=31)) == 1
        assert [r.id for r in await store.results(now - timedelta(days=1))] == [second.id]
        got = parse_report_message(google_report())
        ident = await store.add_received(got)
        (back,) = await store.received()
        assert back.id == ident and back.start == got.start and back.policy_domains == got.policy_domains
    finally:
        await store.close()


async def test_https_rua_gets_the_report_by_post(tmp_path: Path) -> None:
    """RFC 8460 section 5.2: POST of the gzip JSON to an https rua (host through
    the resolver, certificate checked against outbound.ca_file)."""
    import gzip
    import ssl
    from dataclasses import replace

    from aiohttp import web

    from mailserver.smtp.outbound_settings import OutboundSettings
    from mailserver.smtp.tlsrpt import send_reports
    from pki.tls import server_context
    from tests.conftest import make_config
    from tests.tlsca import TestCa

    ca = TestCa(tmp_path / "ca")
    issued = ca.issue("reports.post.example")
    posts: list[tuple[str, bytes]] = []

    async def receive(request: web.Request) -> web.Response:
        posts.append((request.content_type, await request.read()))
        return web.Response(status=201)

    application = web.Application()
    application.router.add_post("/v1/tlsrpt", receive)
    runner = web.AppRunner(application, access_log=None)
    await runner.setup()
    context: ssl.SSLContext = server_context(issued.cert, issued.key)
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context).start()
    port = int(runner.addresses[0][1])
    try:
        static = {
            "_smtp._tls.post.example TXT": [
                f"v=TLSRPTv1;rua=https://reports.post.example:{port}/v1/tlsrpt,https://reports.post.example:{port}/gone"
            ],
            "reports.post.example A": ["127.0.0.1"],
        }
        config = make_config(tmp_path / "data", dns_static=static)
        config = replace(config, outbound=OutboundSettings(ca_file=str(ca.pem)))
        async with App(config) as app:
            now = datetime.now(UTC)
            await app.tlsrpt.record([TlsResult(now, "post.example", "no-policy-found", (), "mx.post.example",
                                               "192.0.2.9", "success")])
            assert app.outbound is not None
            (sent,) = await send_reports(config, app.tlsrpt, app.resolver, app.outbound,
                                         until=now + timedelta(seconds=1))
            assert sent.recipients == () and sent.posted == (f"https://reports.post.example:{port}/v1/tlsrpt",)
            assert await app.queue.list() == [], "no mailto: nothing queued"
    finally:
        await runner.cleanup()
    ((ctype, body),) = posts
    assert ctype == "application/tlsrpt+gzip"
    report = json.loads(gzip.decompress(body))
    assert report["policies"][0]["policy"]["policy-domain"] == "post.example"


def _report_mail(payload: bytes, ctype: str = "application/tlsrpt+gzip") -> bytes:
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["Subject"] = "Report Domain: dongnai.gov.vn Submitter: x.example Report-ID: <1>"
    msg.set_content("report")
    maintype, subtype = ctype.split("/")
    msg.add_attachment(payload, maintype=maintype, subtype=subtype, filename="r.json.gz")
    return msg.as_bytes()


def test_unreadable_reports_are_clear_errors() -> None:
    import gzip

    import pytest

    from mailserver.smtp.tlsrpt import ReportError

    good = {"organization-name": "X", "report-id": "1", "policies": [],
            "date-range": {"start-datetime": "2026-12-04T00:00:00Z", "end-datetime": "2026-12-05T00:00:00Z"}}
    assert parse_report_message(_report_mail(gzip.compress(json.dumps(good).encode()))).organization == "X"
    def packed(doc: object) -> bytes:
        return _report_mail(gzip.compress(json.dumps(doc).encode()))

    bad_counts = {"policy": {"policy-domain": "a"}, "summary": {"total-successful-session-count": "many"}}
    bad = [
        _report_mail(b"not gzip at all"),
        _report_mail(gzip.compress(b"{not json")),
        packed({"policies": "x"}),
        packed(good | {"date-range": {"start-datetime": "yesterday"}}),
        packed(good | {"policies": [bad_counts]}),
        b"From: a@b\r\nSubject: no report\r\n\r\nhello\r\n",
    ]
    for message in bad:
        with pytest.raises(ReportError):
            parse_report_message(message)


async def test_daily_loop_reports_yesterday_once_per_cluster_day(tmp_path: Path) -> None:
    """The daily run reports the previous UTC day's results, claiming the day in
    the cluster job ledger (one node per day); today's results wait."""
    from dataclasses import replace

    from mailserver.cluster import Cluster
    from mailserver.smtp.outbound_settings import TlsRptSettings
    from mailserver.smtp.tlsrpt import report_loop
    from tests.conftest import make_config
    from tests.outbound.conftest import eventually

    static = {"_smtp._tls.example.net TXT": ["v=TLSRPTv1; rua=https://127.0.0.1:9/nowhere"]}
    config = replace(make_config(tmp_path / "data", dns_static=static),
                     tlsrpt=TlsRptSettings(send_hour=0))
    async with App(config) as app:
        assert app.outbound is not None
        now = datetime.now(UTC)
        yesterday = TlsResult(now - timedelta(days=1), "example.net", "no-policy-found", (), "mx.example.net",
                              "192.0.2.1", "success")
        today = replace(yesterday, at=now)
        await app.tlsrpt.record([yesterday, today])
        cluster = Cluster(app.store)  # type: ignore[arg-type]
        loop = asyncio.create_task(report_loop(config, app.tlsrpt, app.resolver, app.outbound, cluster,
                                               interval=3600))
        try:
            async def reported() -> bool:
                return len(await app.tlsrpt.unreported(now + timedelta(seconds=1))) == 1

            await eventually(reported, "yesterday's results reported")
        finally:
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)
        left = await app.tlsrpt.unreported(now + timedelta(seconds=1))
        assert [r.at for r in left] == [now], "today's result waits for tomorrow's report"
        # The day is claimed: another node (or a restart) does not report it again.
        other = Cluster(app.store)  # type: ignore[arg-type]
        other.node = "other-node"
        ran: list[bool] = []

        async def job() -> None:
            ran.append(True)

        slot = now.date().isoformat()  # named by the end of the period reported: today 00:00 UTC
        assert not await other.run_once("tlsrpt-reports", slot, job) and ran == []


async def test_a_failed_post_is_tried_again_with_back_off_for_a_day(tmp_path: Path) -> None:
    """RFC 8460 section 5.4: a report an https rua refused is posted again later
    (exponential back-off), and given up 24 hours after the first attempt."""
    import ssl
    from dataclasses import replace

    from aiohttp import web

    from mailserver.smtp.outbound_settings import OutboundSettings
    from mailserver.smtp.tlsrpt import FIRST_RETRY, PostRetries, send_reports
    from pki.tls import server_context
    from tests.conftest import make_config
    from tests.tlsca import TestCa

    ca = TestCa(tmp_path / "ca")
    issued = ca.issue("reports.retry.example")
    answers = [503, 201]  # the flaky one refuses once; "/down" always
    seen: list[str] = []

    async def flaky(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.Response(status=answers.pop(0))

    async def down(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.Response(status=500)

    application = web.Application()
    application.router.add_post("/flaky", flaky)
    application.router.add_post("/down", down)
    runner = web.AppRunner(application, access_log=None)
    await runner.setup()
    context: ssl.SSLContext = server_context(issued.cert, issued.key)
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context).start()
    port = int(runner.addresses[0][1])
    base = f"https://reports.retry.example:{port}"
    try:
        static = {
            "_smtp._tls.retry.example TXT": [f"v=TLSRPTv1;rua={base}/flaky,{base}/down"],
            "reports.retry.example A": ["127.0.0.1"],
        }
        config = make_config(tmp_path / "data", dns_static=static)
        config = replace(config, outbound=OutboundSettings(ca_file=str(ca.pem)))
        async with App(config) as app:
            now = datetime.now(UTC)
            await app.tlsrpt.record([TlsResult(now, "retry.example", "no-policy-found", (),
                                               "mx.retry.example", "192.0.2.9", "success")])
            assert app.outbound is not None
            retries = PostRetries()
            (sent,) = await send_reports(config, app.tlsrpt, app.resolver, app.outbound,
                                         until=now + timedelta(seconds=1), now=now, retries=retries)
            assert sent.posted == () and len(retries) == 2
            ca_file, timeout = config.outbound.ca_file, 10.0
            # Not due yet: nothing is sent.
            assert await retries.run_due(app.resolver, ca_file, timeout, now + timedelta(seconds=10)) == []
            assert seen == ["/flaky", "/down"]
            later = now + timedelta(seconds=FIRST_RETRY + 1)
            assert await retries.run_due(app.resolver, ca_file, timeout, later) == [f"{base}/flaky"]
            assert len(retries) == 1  # "/down" waits twice as long now
            due = retries.next_due()
            assert due is not None and due - later == timedelta(seconds=2 * FIRST_RETRY)
            while len(retries):  # each failure doubles the wait, until a day has passed
                due = retries.next_due()
                assert due is not None and due - now <= timedelta(hours=24)
                await retries.run_due(app.resolver, ca_file, timeout, due)
            assert seen.count("/flaky") == 2 and 6 <= seen.count("/down") <= 12
    finally:
        await runner.cleanup()


def test_a_tlsrpt_record_names_at_most_ten_destinations() -> None:
    from mailserver.smtp.tlsrpt import MAX_RUAS, parse_tlsrpt_txt

    ruas = ",".join(f"https://r{n}.example/v1" for n in range(500))
    first = [f"https://r{n}.example/v1" for n in range(MAX_RUAS)]
    assert parse_tlsrpt_txt([f"v=TLSRPTv1; rua={ruas}"]) == first
    assert MAX_RUAS == 10

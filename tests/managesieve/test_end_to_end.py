"""What issue 20 is done with, end to end over real sockets: a script uploaded
with sieve-connect files mail into a folder (seen with imaplib), and the
out-of-office set on the portal (over HTTP) answers the sender once while the
user's filter keeps filing; turned off, it answers no more."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import aiohttp

from storage.sieve import sieve_scripts_for
from tests.clients.test_sieve_delivery import PARTNER, Setup, imap_folder, marked, server, setup
from tests.clients.test_submission import ANNV, PASSWORD, eventually, queue_empty, remote, remote_tls
from tests.conftest import RunningServer
from tests.routing.conftest import mx_send

from .test_sieve_connect import sieve_connect

__all__ = ["remote", "remote_tls", "server", "setup"]

FILTER = (
    'require ["fileinto", "mailbox"];\n'
    'if header :contains "subject" "Báo cáo" { fileinto :create "Báo cáo"; }\n'
)
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def _portal_vacation(base: str, on: bool) -> None:
    today = date.today()
    async with aiohttp.ClientSession(base, cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        page = await (await http.get("/account/login?next=/vacation")).text()
        token = CSRF.search(page).group(1)  # type: ignore[union-attr]
        signed = await http.post(
            "/account/login", data={"csrf": token, "address": ANNV, "password": PASSWORD, "next": "/vacation"}
        )
        page = await signed.text()
        assert signed.status == 200 and "Vắng mặt / Out of office" in page
        token = CSRF.search(page).group(1)  # type: ignore[union-attr]
        data = {"csrf": token, "action": "off"}
        if on:
            data = {
                "csrf": token,
                "action": "on",
                "start": (today - timedelta(days=1)).isoformat(),
                "end": (today + timedelta(days=2)).isoformat(),
                "subject": "Vắng mặt / Out of office",
                "message": "Tôi đi công tác. / I am away.",
                "days": "7",
            }
        done = await http.post("/vacation", data=data)
        assert done.status == 200 and ("Đang bật / On" if on else "Đang tắt / Off") in await done.text()


async def test_sieve_connect_script_and_portal_vacation(
    setup: Setup, server: RunningServer, tmp_path: Path
) -> None:
    remote = setup.remote
    local = tmp_path / "loc.sieve"
    local.write_text(FILTER, encoding="utf-8")
    port = server.port("managesieve")
    status, out = await sieve_connect(
        port, ANNV, "--upload", "--localsieve", str(local), "--remotesieve", "lọc", password=PASSWORD
    )
    assert status == 0, out
    status, out = await sieve_connect(port, ANNV, "--activate", "--remotesieve", "lọc", password=PASSWORD)
    assert status == 0, out

    host, web_port = server.app.addresses["web"]
    await _portal_vacation(f"http://{host}:{web_port}", on=True)
    active = await sieve_scripts_for(server.app.store).active_script(ANNV)
    assert active is not None and active.name == "portal-vacation"

    first = marked(PARTNER, [ANNV], "Báo cáo tuần 49", "Message-ID: <e2e1@partner.test>")
    assert await mx_send(server, PARTNER, [ANNV], first) == {}

    async def replied() -> bool:
        return len(remote.messages) >= 1

    await eventually(replied, "the vacation reply reached partner.test")
    assert remote.messages[0].rcpt_tos == [PARTNER] and b"auto-replied" in remote.messages[0].content
    filed = await imap_folder(server, ANNV, '"B&AOE-o c&AOE-o"')  # "Báo cáo" in modified UTF-7
    assert len(filed) == 1 and b"<e2e1@partner.test>" in filed[0][1]

    # Off again: the user's own script is active, mail is still filed, no more replies.
    await _portal_vacation(f"http://{host}:{web_port}", on=False)
    active = await sieve_scripts_for(server.app.store).active_script(ANNV)
    assert active is not None and active.name == "lọc"
    later = marked("khac@partner.test", [ANNV], "Báo cáo tuần 50", "Message-ID: <e2e2@partner.test>")
    assert await mx_send(server, "khac@partner.test", [ANNV], later) == {}

    async def filed_twice() -> bool:
        return len(await imap_folder(server, ANNV, '"B&AOE-o c&AOE-o"')) == 2

    await eventually(filed_twice, "the second report was filed")
    # A reply would have been queued at delivery, before the filing seen above.
    await eventually(lambda: queue_empty(server), "queue drained")
    assert len(remote.messages) == 1

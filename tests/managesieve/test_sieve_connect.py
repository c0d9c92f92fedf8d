"""ManageSieve with the real client ``sieve-connect`` (Debian package) over
STARTTLS: upload, list, activate, download, check, deactivate, delete; and an
agency mailbox's script managed by its head through the SASL authorization
identity (--authzid)."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from storage.sieve import sieve_scripts_for
from tests.conftest import RunningServer

pytestmark = pytest.mark.skipif(shutil.which("sieve-connect") is None, reason="sieve-connect not installed")

USER = "annv@dongnai.gov.vn"
PASSWORD = "S3cret-pass-word"
SCRIPT = 'require "fileinto";\nif header :contains "subject" "Báo cáo" { fileinto "Báo cáo"; }\n'


async def sieve_connect(port: int, user: str, *args: str, password: str = PASSWORD) -> tuple[int, str]:
    """Run sieve-connect with the password on a pipe; (exit status, output)."""
    read_fd, write_fd = os.pipe()
    os.write(write_fd, password.encode() + b"\n")
    os.close(write_fd)
    try:
        proc = await asyncio.create_subprocess_exec(
            "sieve-connect",
            "--server",
            "127.0.0.1",
            "--port",
            str(port),
            "--user",
            user,
            "--passwordfd",
            str(read_fd),
            "--notlsverify",
            "--authmech",
            "PLAIN",
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            pass_fds=(read_fd,),
        )
    finally:
        os.close(read_fd)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode("utf-8", "replace")


async def test_sieve_connect_round_trip(server: RunningServer, tmp_path: Path) -> None:
    await server.add_account(USER, PASSWORD)
    port = server.port("managesieve")
    scripts = sieve_scripts_for(server.app.store)
    local = tmp_path / "loc.sieve"
    local.write_text(SCRIPT, encoding="utf-8")

    status, out = await sieve_connect(
        port, USER, "--upload", "--localsieve", str(local), "--remotesieve", "lọc"
    )
    assert status == 0, out
    stored = await scripts.get_script(USER, "lọc")
    assert stored is not None and stored.text == SCRIPT and not stored.active

    status, out = await sieve_connect(port, USER, "--activate", "--remotesieve", "lọc")
    assert status == 0, out
    active = await scripts.active_script(USER)
    assert active is not None and active.name == "lọc"

    status, out = await sieve_connect(port, USER, "--list")
    assert status == 0 and '"lọc" ACTIVE' in out, out

    fetched = tmp_path / "fetched.sieve"
    status, out = await sieve_connect(
        port, USER, "--download", "--remotesieve", "lọc", "--localsieve", str(fetched)
    )
    assert status == 0, out
    assert fetched.read_text(encoding="utf-8") == SCRIPT

    status, out = await sieve_connect(port, USER, "--checkscript", "--localsieve", str(local))
    assert status == 0, out

    # The active script is refused deletion; after deactivating it goes.
    status, out = await sieve_connect(port, USER, "--delete", "--remotesieve", "lọc")
    assert status != 0 and "ACTIVE" in out.upper(), out
    assert await scripts.get_script(USER, "lọc") is not None
    status, out = await sieve_connect(port, USER, "--deactivate")
    assert status == 0, out
    status, out = await sieve_connect(port, USER, "--delete", "--remotesieve", "lọc")
    assert status == 0, out
    assert await scripts.list_scripts(USER) == []

    status, out = await sieve_connect(port, USER, "--list", password="wrong-password")
    assert status != 0 and "Authentication failed" in out, out


async def test_agency_script_managed_by_its_head_and_admin_delegates(
    server: RunningServer, tmp_path: Path
) -> None:
    from mailserver.directory.passwords import change_password
    from mailserver.directory.service import DirectoryService
    from storage.directory import By, open_directory

    by = By("tccb", "Số 77/QĐ-UBND")
    store = server.app.store
    svc = DirectoryService(store, open_directory(store), server.config)
    await svc.add_agency("stttt", "Sở Thông tin và Truyền thông", None, by=by)
    people = []
    for name in ("Nguyễn Văn An", "Trần Thị Bình", "Lê Văn Cường"):
        issued = await svc.add_person(name, "stttt", by=by)
        await change_password(
            store, svc.directory, server.config.accounts, issued.address, issued.password, PASSWORD
        )
        people.append(issued.address)
    head, reader, admin = people
    await svc.set_head("stttt", head, by=by)
    await svc.delegate("stttt", reader, by=by)  # the default rights: no "a"
    await svc.delegate("stttt", admin, "lrswipkxtea", by=by)
    agency = "stttt@dongnai.gov.vn"
    port = server.port("managesieve")
    local = tmp_path / "agency.sieve"
    local.write_text(SCRIPT, encoding="utf-8")
    scripts = sieve_scripts_for(store)

    status, out = await sieve_connect(
        port, head, "--authzid", agency, "--upload", "--localsieve", str(local), "--remotesieve", "văn thư"
    )
    assert status == 0, out
    assert [s.name for s in await scripts.list_scripts(agency)] == ["văn thư"]
    assert await scripts.list_scripts(head) == []  # not the head's own

    status, out = await sieve_connect(
        port, admin, "--authzid", agency, "--activate", "--remotesieve", "văn thư"
    )
    assert status == 0, out
    active = await scripts.active_script(agency)
    assert active is not None and active.name == "văn thư"

    status, out = await sieve_connect(port, reader, "--authzid", agency, "--list")
    assert status != 0 and "Not authorized" in out, out

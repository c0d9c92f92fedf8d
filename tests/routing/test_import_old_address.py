"""``directory import`` with the ``dia_chi_cu`` column: staff of a merged province
keep receiving at their old address (an alias of the one the naming rule
issues), and their owners may send as it; a bad old address fails the whole
file with its line."""

from __future__ import annotations

import pytest

from mailserver.directory.addressing import Addressing
from mailserver.directory.service import DirectoryService, ImportFailed, Issued
from storage.directory import open_directory
from tests.clients.test_submission import inbox_messages, message, parse
from tests.conftest import RunningServer
from tests.routing.conftest import BY, mx_send

Routed = tuple[RunningServer, Addressing]
PARTNER = "doitac@partner.test"

CSV = (
    "ho_ten,ma_co_quan,chuc_vu,dia_chi_cu\n"
    "Nguyễn Văn Tâm,skhcn,Chuyên viên,tamnv@binhphuoc.gov.vn\n"
    "Lê Thị Hoa,skhcn,Kế toán,\n"
)


async def test_old_addresses_become_aliases_of_the_issued_ones(routed: Routed) -> None:
    server, routes = routed
    service = DirectoryService(server.app.store, open_directory(server.app.store), server.config)
    await service.add_agency("skhcn", "Sở Khoa học và Công nghệ", None, by=BY)
    # The old domain is not ours yet: the row says so and nothing is created.
    with pytest.raises(ImportFailed) as failed:
        await service.import_csv(CSV.encode(), by=BY)
    assert [e.line for e in failed.value.errors] == [2]
    assert "mailserver domain add" in failed.value.errors[0].message
    assert await service.directory.list_persons(agency_code="skhcn") == []

    await routes.add_domain("binhphuoc.gov.vn", None, by=BY)
    twice = CSV + "Trần Văn Tư,skhcn,,tamnv@binhphuoc.gov.vn\n"
    with pytest.raises(ImportFailed) as failed:
        await service.import_csv(twice.encode(), by=BY)
    assert [e.line for e in failed.value.errors] == [4] and "line 2" in failed.value.errors[0].message

    issued = await service.import_csv(CSV.encode(), by=BY)
    assert all(isinstance(i, Issued) for i in issued)
    tam = issued[0].address
    assert tam.endswith("@dongnai.gov.vn") and tam != "tamnv@binhphuoc.gov.vn"
    assert [(a.alias, a.target) for a in await routes.aliases()] == [("tamnv@binhphuoc.gov.vn", tam)]

    assert await mx_send(server, PARTNER, ["TamNV@binhphuoc.gov.vn"],
                         message(PARTNER, ["tamnv@binhphuoc.gov.vn"], "Gửi địa chỉ cũ")) == {}
    (got,) = await inbox_messages(server, tam)
    assert "Gửi địa chỉ cũ" in str(parse(got)["Subject"])
    account = await server.app.store.get_account(tam)
    hoa = await server.app.store.get_account(issued[1].address)
    assert account is not None and hoa is not None
    assert await server.app.sender_policy.may_send_as(account, "tamnv@binhphuoc.gov.vn")
    assert not await server.app.sender_policy.may_send_as(hoa, "tamnv@binhphuoc.gov.vn")

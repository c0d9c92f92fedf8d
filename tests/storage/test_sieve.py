"""Contract suite of the Sieve script store (``storage.sieve``) on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from storage.api import Account
from storage.sieve import (
    NoSuchScript,
    NoSuchScriptOwner,
    ScriptActive,
    ScriptExists,
    TooManyScripts,
    sieve_scripts_for,
)
from storage.sql.store import SqlMailStore

from .conftest import StoreFactory

SCRIPT = 'require "fileinto";\nif header :contains "subject" "Báo cáo" { fileinto "Báo cáo"; }\n'


async def test_put_get_list(store: SqlMailStore, alice: Account) -> None:
    scripts = sieve_scripts_for(store)
    assert await scripts.list_scripts(alice.address) == []
    assert await scripts.active_script(alice.address) is None
    await scripts.put_script("ALICE@example.org", "lọc thư", SCRIPT)
    await scripts.put_script(alice.address, "b", "keep;")
    got = await scripts.get_script(alice.address, "lọc thư")
    assert got is not None
    assert (got.owner, got.name, got.text, got.active) == ("alice@example.org", "lọc thư", SCRIPT, False)
    assert got.updated.tzinfo is not None
    assert [s.name for s in await scripts.list_scripts(alice.address)] == ["b", "lọc thư"]
    assert await scripts.get_script(alice.address, "LỌC THƯ") is None  # names are case-sensitive


async def test_replace_keeps_active_flag(store: SqlMailStore, alice: Account) -> None:
    scripts = sieve_scripts_for(store)
    await scripts.put_script(alice.address, "main", "keep;")
    await scripts.set_active(alice.address, "main")
    await scripts.put_script(alice.address, "main", "discard;")
    active = await scripts.active_script(alice.address)
    assert active is not None and active.text == "discard;"


async def test_one_active_at_most(store: SqlMailStore, alice: Account, bob: Account) -> None:
    scripts = sieve_scripts_for(store)
    for name in ("a", "b"):
        await scripts.put_script(alice.address, name, "keep;")
    await scripts.put_script(bob.address, "a", "keep;")
    await scripts.set_active(alice.address, "a")
    await scripts.set_active(bob.address, "a")
    await scripts.set_active(alice.address, "b")
    assert [(s.name, s.active) for s in await scripts.list_scripts(alice.address)] == [
        ("a", False),
        ("b", True),
    ]
    await scripts.set_active(alice.address, "b")  # again: unchanged
    assert (await scripts.active_script(alice.address)).name == "b"  # type: ignore[union-attr]
    with pytest.raises(NoSuchScript):
        await scripts.set_active(alice.address, "missing")
    assert (await scripts.active_script(alice.address)).name == "b"  # type: ignore[union-attr]
    await scripts.set_active(alice.address, None)
    assert await scripts.active_script(alice.address) is None
    # Bob's scripts are his own.
    assert (await scripts.active_script(bob.address)).name == "a"  # type: ignore[union-attr]


async def test_delete(store: SqlMailStore, alice: Account) -> None:
    scripts = sieve_scripts_for(store)
    await scripts.put_script(alice.address, "a", "keep;")
    await scripts.set_active(alice.address, "a")
    with pytest.raises(ScriptActive):
        await scripts.delete_script(alice.address, "a")
    with pytest.raises(NoSuchScript):
        await scripts.delete_script(alice.address, "b")
    await scripts.set_active(alice.address, None)
    await scripts.delete_script(alice.address, "a")
    assert await scripts.list_scripts(alice.address) == []


async def test_rename(store: SqlMailStore, alice: Account) -> None:
    scripts = sieve_scripts_for(store)
    await scripts.put_script(alice.address, "a", "keep;")
    await scripts.put_script(alice.address, "b", "discard;")
    await scripts.set_active(alice.address, "a")
    with pytest.raises(ScriptExists):
        await scripts.rename_script(alice.address, "a", "b")
    with pytest.raises(ScriptExists):
        await scripts.rename_script(alice.address, "a", "a")
    with pytest.raises(NoSuchScript):
        await scripts.rename_script(alice.address, "x", "y")
    await scripts.rename_script(alice.address, "a", "c")
    active = await scripts.active_script(alice.address)
    assert active is not None and (active.name, active.text) == ("c", "keep;")
    assert [s.name for s in await scripts.list_scripts(alice.address)] == ["b", "c"]


async def test_max_scripts(store: SqlMailStore, alice: Account) -> None:
    scripts = sieve_scripts_for(store)
    await scripts.put_script(alice.address, "a", "keep;", max_scripts=2)
    await scripts.put_script(alice.address, "b", "keep;", max_scripts=2)
    with pytest.raises(TooManyScripts):
        await scripts.put_script(alice.address, "c", "keep;", max_scripts=2)
    # A replacement is not a new script.
    await scripts.put_script(alice.address, "b", "discard;", max_scripts=2)
    assert len(await scripts.list_scripts(alice.address)) == 2


async def test_unknown_owner(store: SqlMailStore) -> None:
    scripts = sieve_scripts_for(store)
    with pytest.raises(NoSuchScriptOwner):
        await scripts.list_scripts("nobody@example.org")
    with pytest.raises(NoSuchScriptOwner):
        await scripts.put_script("nobody@example.org", "a", "keep;")


async def test_concurrent_puts_of_one_name(store: SqlMailStore, alice: Account) -> None:
    scripts = sieve_scripts_for(store)
    await asyncio.gather(*(scripts.put_script(alice.address, "same", f"# {i}\nkeep;") for i in range(8)))
    listed = await scripts.list_scripts(alice.address)
    assert [s.name for s in listed] == ["same"]


async def test_scripts_survive_reopen_and_go_with_the_account(make_store: StoreFactory) -> None:
    first = await make_store()
    account = await first.create_account("carol@example.org", "Carol", "$argon2id$fake")
    await sieve_scripts_for(first).put_script(account.address, "a", SCRIPT)
    await sieve_scripts_for(first).set_active(account.address, "a")
    second = await make_store()
    active = await sieve_scripts_for(second).active_script(account.address)
    assert active is not None and active.text == SCRIPT
    await second.delete_account(account.address)
    await second.create_account("carol@example.org", "Carol", "$argon2id$fake")
    assert await sieve_scripts_for(second).list_scripts("carol@example.org") == []

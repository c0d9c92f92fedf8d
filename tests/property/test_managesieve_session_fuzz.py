"""ManageSieve session fuzzing (hypothesis), sans-IO over a real SQLite store and
the real authenticator: runs of commands of every kind, in any state, with
arguments from the grammar's edges (empty, huge numbers, literals, quotes,
control characters, random bytes, lines cut short) never raise, every
response is well-formed wire text, and only LOGOUT or BYE ends a session."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailserver.auth import Authenticator, hash_password
from mailserver.config import AuthSettings
from mailserver.managesieve.parser import NEED_DATA, Parser
from mailserver.managesieve.responses import Bye
from mailserver.managesieve.session import ManageSieveDeps, Session
from mailserver.managesieve.settings import ManageSieveSettings
from mailserver.ops.sieve import SieveLimits
from storage import open_store
from storage.sieve import sieve_scripts_for

USER = "fuzz@dongnai.gov.vn"
PASSWORD = "Fuzz-pass-word-2026"
NAMES = [
    "CAPABILITY",
    "AUTHENTICATE",
    "STARTTLS",
    "LOGOUT",
    "HAVESPACE",
    "PUTSCRIPT",
    "LISTSCRIPTS",
    "SETACTIVE",
    "GETSCRIPT",
    "DELETESCRIPT",
    "RENAMESCRIPT",
    "CHECKSCRIPT",
    "NOOP",
    "UNAUTHENTICATE",
]
LOGIN = b'AUTHENTICATE "PLAIN" "' + base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()) + b'"\r\n'


def _quoted(text: str) -> bytes:
    return b'"' + text.replace("\\", "\\\\").replace('"', '\\"').encode() + b'"'


def _literal(data: bytes) -> bytes:
    return b"{%d+}\r\n" % len(data) + data


argument = st.one_of(
    st.text(max_size=12).map(_quoted),
    st.binary(max_size=30).map(_literal),
    st.sampled_from([b'"keep;"', b'"require \\"fileinto\\"; fileinto \\"A\\";"', b'"if {"', b'""', b'"s"']),
    st.integers(0, 2**33).map(lambda n: str(n).encode()),
    st.binary(max_size=8),
)
command = st.one_of(
    st.builds(
        lambda name, args, end: name.encode() + b"".join(b" " + a for a in args) + end,
        st.sampled_from(NAMES),
        st.lists(argument, max_size=3),
        st.sampled_from([b"\r\n", b"\n", b""]),
    ),
    st.just(LOGIN),
    st.binary(max_size=40),
)


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sievefuzz")

    async def create() -> None:
        store = open_store(f"sqlite+aiosqlite:///{root / 'index.db'}", root / "maildir")
        await store.start()
        await store.create_account(USER, "Fuzz", hash_password(PASSWORD), must_change_password=False)
        await store.close()

    asyncio.run(create())
    return root


async def _run(root: Path, inputs: list[bytes]) -> None:
    store = open_store(f"sqlite+aiosqlite:///{root / 'index.db'}", root / "maildir")
    await store.start()
    try:
        settings_ = ManageSieveSettings()
        deps = ManageSieveDeps(
            scripts=sieve_scripts_for(store),
            authenticator=Authenticator(
                store, AuthSettings(failure_delay=0.0, max_failures=10**6, max_failures_per_ip=10**6)
            ),
            directory=None,
            settings=settings_,
            limits=SieveLimits(max_scripts=5, max_script_size=200),
        )
        session = Session(deps, remote_ip="127.0.0.1", secure=False, starttls_available=False)
        parser = Parser(max_line=settings_.max_line, max_literal=settings_.max_preauth_literal)
        for data in inputs:
            parser.receive_data(data)
            while (event := parser.next_event()) is not NEED_DATA:
                responses = await session.handle(event)  # type: ignore[arg-type]
                assert responses or session.closed
                for response in responses:
                    wire = response.to_bytes()
                    assert wire.endswith(b"\r\n") and b"Internal server error" not in wire
                if session.closed:
                    assert isinstance(responses[-1], Bye) or responses[-1].to_bytes().startswith(b"OK")
                    return
                parser.max_literal = session.max_literal
    finally:
        await store.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(command, min_size=1, max_size=12))
def test_sessions_never_break(database: Path, inputs: list[bytes]) -> None:
    asyncio.run(_run(database, inputs))

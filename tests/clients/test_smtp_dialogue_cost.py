"""What the SMTP dialogue leaves out to cost less per connection (issue 17), and
that what it does instead gives the same results.

* ``TCP_QUICKACK`` (``mailserver/netopt.py``) only after a read that may leave
  the client waiting for our ACK: part of a command line, or mail data before
  its end. After a complete command line or the end of the data the client
  waits for our reply, which carries the ACK (a separate one was one more
  packet through both TCP stacks per command);
* sender authentication on the event loop when the resolver answers from
  memory (``dns.use_servers = false``), in a worker thread otherwise: the same
  ``authenticate_sync`` either way.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from mailserver import netopt
from mailserver.config import Config, ServerSettings
from mailserver.smtp.delivery import Client, Inbound, Transaction
from policy.checks import authentication
from policy.checks.authentication import authenticate_sync
from policy.dns import DnsResolver, StaticResolver, _NoServers, may_block
from policy.settings import DnsSettings
from storage.api import MailStore
from tests.conftest import RunningServer

ANNV = "annv@dongnai.gov.vn"


async def _reply(reader: asyncio.StreamReader) -> bytes:
    lines = []
    while True:
        line = await asyncio.wait_for(reader.readline(), 10)
        lines.append(line)
        if line[3:4] != b"-":
            return b"".join(lines)


async def _counted(calls: list[object], before: int) -> int:
    """Calls made since ``before``, once the server had the time to read what was sent."""
    deadline = time.monotonic() + 5
    while len(calls) == before and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    return len(calls) - before


async def test_quickack_only_while_the_client_may_wait_for_our_ack(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    await server.add_account(ANNV)
    calls: list[object] = []
    real = netopt.quickack

    def counting(sock: Any) -> None:
        calls.append(sock)
        real(sock)

    monkeypatch.setattr(netopt, "quickack", counting)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port("smtp"))
    try:
        assert (await _reply(reader)).startswith(b"220 ")
        del calls[:]  # netopt.tune's at the connection
        # Complete command lines: answered, never a separate ACK.
        writer.write(b"EHLO client.example.org\r\n")
        assert (await _reply(reader)).startswith(b"250-")
        writer.write(b"MAIL FROM:<vana@example.com>\r\n")
        assert (await _reply(reader)).startswith(b"250 ")
        assert calls == []
        # Half a command line: the client may hold the rest for our ACK.
        writer.write(b"RCPT TO:<annv@dong")
        await writer.drain()
        assert await _counted(calls, 0) == 1
        writer.write(b"nai.gov.vn>\r\n")
        assert (await _reply(reader)).startswith(b"250 ")
        writer.write(b"DATA\r\n")
        assert (await _reply(reader)).startswith(b"354 ")
        assert len(calls) == 1
        # Mail data before its end, complete lines or not: acknowledged at once.
        writer.write(b"Subject: x\r\n\r\nline one\r\n")
        await writer.drain()
        assert await _counted(calls, 1) == 1
        writer.write(b"line two, and the end\r\n.\r\n")
        reply = await _reply(reader)
        assert reply.startswith(b"250 "), reply
        acked = len(calls)  # 2, or 3 if the last write came in two reads
        assert acked in (2, 3)
        # A whole message with its end in one write: the reply carries the ACK.
        writer.write(b"MAIL FROM:<vana@example.com>\r\nRCPT TO:<annv@dongnai.gov.vn>\r\nDATA\r\n")
        for expected in (b"250 ", b"250 ", b"354 "):
            assert (await _reply(reader)).startswith(expected)
        writer.write(b"Subject: y\r\n\r\nbody\r\n.\r\n")
        assert (await _reply(reader)).startswith(b"250 ")
        writer.write(b"QUIT\r\n")
        assert (await _reply(reader)).startswith(b"221 ")
        assert len(calls) == acked
    finally:
        writer.close()


def test_which_resolvers_may_block() -> None:
    settings = DnsSettings(nameservers=["192.0.2.53"])
    assert may_block(DnsResolver(settings))
    assert not may_block(_NoServers())
    assert not may_block(StaticResolver({"example.org TXT": ["v=spf1 -all"]}))
    assert may_block(StaticResolver({"example.org TXT": ["v=spf1 -all"]}, DnsResolver(settings)))
    assert may_block(object())  # a resolver we know nothing of: in a thread, as before


ZONE = {
    "example.org TXT": ["v=spf1 ip4:192.0.2.0/24 -all"],
    "_dmarc.example.org TXT": ["v=DMARC1; p=reject"],
}
MESSAGE = (
    b"From: Ban tin <news@example.org>\r\nTo: annv@dongnai.gov.vn\r\nSubject: test\r\n"
    b"Message-ID: <1@example.org>\r\n\r\nXin chao.\r\n"
)


class _Blocking(StaticResolver):
    """The same answers, from a resolver that says it may wait for a server."""

    blocking = True  # type: ignore[assignment]


@pytest.mark.parametrize("ip", ["192.0.2.1", "198.51.100.9"])
async def test_sender_authentication_in_place_or_in_a_thread_agree(
    store: MailStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ip: str
) -> None:
    server = ServerSettings(hostname="mx.test", domains=["dongnai.gov.vn"], data_dir=str(tmp_path))
    config = Config(server=server)
    hops: list[object] = []
    real_to_thread = asyncio.to_thread

    async def counting_to_thread(fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        hops.append(fn)
        return await real_to_thread(fn, *args, **kwargs)

    monkeypatch.setattr(authentication.asyncio, "to_thread", counting_to_thread)
    client = Client(sid="s1", ip=ip, helo="mx.example.org")
    got = []
    for resolver, threads in ((StaticResolver(ZONE), 0), (_Blocking(ZONE), 1)):
        inbound = Inbound(config, store, resolver=resolver)
        txn = Transaction(sender="bounce@example.org")
        refusal, header = await inbound.authenticate_sender(client, txn, MESSAGE)
        assert len(hops) == threads
        got.append((refusal, header, txn.auth))
    assert got[0] == got[1]
    expected = authenticate_sync(
        StaticResolver(ZONE), ip=ip, helo="mx.example.org", sender="bounce@example.org", message=MESSAGE
    )
    assert got[0][2] == expected
    assert (got[0][0] is None) == (ip == "192.0.2.1")  # SPF fails for the other: p=reject

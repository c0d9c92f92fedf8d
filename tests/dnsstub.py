"""A tiny authoritative DNS server for tests: UDP on 127.0.0.1:0, built with
dnspython's ``dns.message``, answering from a dict. It runs in a thread so it
answers both async lookups (same event loop as the test) and sync ones.

``records`` maps ``(name, TYPE)`` to presentation-format values, e.g.
``{("example.net", "MX"): ["10 mx.example.net."], ("mx.example.net", "A"): ["127.0.0.1"]}``.
A name absent from the dict answers NXDOMAIN; a known name without the type
answers NOERROR with no records. Names in ``servfail`` answer SERVFAIL and names
in ``silent`` get no answer at all (time-outs). With ``authenticated=True`` every
answer carries the AD bit, as a validating resolver's "secure" answers do (DANE
tests); given names, only the answers for those names.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterable, Mapping

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset


def _norm(name: str) -> str:
    return name.lower().rstrip(".")


class DnsStub:
    def __init__(
        self,
        records: Mapping[tuple[str, str], list[str]],
        *,
        servfail: Iterable[str] = (),
        silent: Iterable[str] = (),
        authenticated: bool | Iterable[str] = False,
    ) -> None:
        self.authenticated: bool | set[str] = (
            authenticated if isinstance(authenticated, bool) else {_norm(n) for n in authenticated}
        )
        """Set the AD bit (a validating resolver's "secure") on every answer, or on those for these names."""
        self.records = {(_norm(n), t.upper()): list(v) for (n, t), v in records.items()}
        self.servfail = {_norm(n) for n in servfail}
        self.silent = {_norm(n) for n in silent}
        self.queries: list[tuple[str, str]] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self.port: int = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="dns-stub", daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> DnsStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()

    def _answer(self, query: dns.message.Message) -> dns.message.Message | None:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question_name = _norm(query.question[0].name.to_text())
        if self.authenticated is True or (
            isinstance(self.authenticated, set) and question_name in self.authenticated
        ):
            response.flags |= dns.flags.AD
        question = query.question[0]
        name = _norm(question.name.to_text())
        rdtype = dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, rdtype))
        if name in self.silent:
            return None
        if name in self.servfail:
            response.set_rcode(dns.rcode.SERVFAIL)
            return response
        values = self.records.get((name, rdtype))
        if values:
            response.answer.append(dns.rrset.from_text(question.name, 60, "IN", rdtype, *values))
        elif not any(n == name for n, _ in self.records):
            response.set_rcode(dns.rcode.NXDOMAIN)
        return response

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                query = dns.message.from_wire(data)
            except Exception:  # noqa: BLE001, S112 - junk datagrams are ignored
                continue
            response = self._answer(query)
            if response is not None:
                self._sock.sendto(response.to_wire(), peer)

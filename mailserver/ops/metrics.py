"""Prometheus metrics: a small registry and the HTTP endpoint ``metrics.listen``.

The text exposition format (version 0.0.4) is written by hand: counters,
gauges and histograms with labels are all the server needs, and the endpoint
is a tiny asyncio HTTP/1.0 responder (``GET /metrics``, ``GET /healthz``), so
no dependency is added. Instruments are process-wide (``REGISTRY``); values that
are cheaper to read than to track (open connections, queue size and age,
policy verdicts counted by the pipeline) are collected at scrape time from the
running ``App`` through ``collectors``.

What is measured: connections (open, by listener), IMAP commands (by command,
with a latency histogram), local deliveries (recipients, latency), messages
queued for remote delivery, queue size and age of the oldest entry, policy
verdicts by check and action, authentications by outcome (failures included)
and their latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

from mailserver.config import parse_hostport

log = logging.getLogger(__name__)

LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.labelnames = tuple(labelnames)

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]

    def samples(self) -> list[str]:
        raise NotImplementedError


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labelnames)
        self.values: dict[tuple[str, ...], float] = {}

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + amount

    def samples(self) -> list[str]:
        return [
            f"{self.name}{_labels(self.labelnames, k)} {_number(v)}" for k, v in sorted(self.values.items())
        ]


class Gauge(Counter):
    kind = "gauge"

    def set(self, *labels: str, value: float) -> None:
        self.values[labels] = value


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = (),
                 buckets: Sequence[float] = LATENCY_BUCKETS) -> None:
        super().__init__(name, help_text, labelnames)
        self.buckets = tuple(buckets)
        self.counts: dict[tuple[str, ...], list[int]] = {}
        self.sums: dict[tuple[str, ...], float] = {}

    def observe(self, value: float, *labels: str) -> None:
        counts = self.counts.setdefault(labels, [0] * (len(self.buckets) + 1))
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                counts[i] += 1
        counts[-1] += 1
        self.sums[labels] = self.sums.get(labels, 0.0) + value

    def samples(self) -> list[str]:
        out = []
        for key, counts in sorted(self.counts.items()):
            for bound, count in zip((*self.buckets, math.inf), counts, strict=True):
                le = f'le="{_number(bound)}"'
                out.append(f"{self.name}_bucket{_labels(self.labelnames, key, le)} {count}")
            out.append(f"{self.name}_sum{_labels(self.labelnames, key)} {_number(self.sums[key])}")
            out.append(f"{self.name}_count{_labels(self.labelnames, key)} {counts[-1]}")
        return out


IMAP_COMMANDS: Final = Counter(
    "mailserver_imap_commands_total", "IMAP commands run, by command.", ["command"]
)
IMAP_LATENCY: Final = Histogram(
    "mailserver_imap_command_seconds", "Time to run one IMAP command, by command.", ["command"]
)
DELIVERIES: Final = Counter(
    "mailserver_deliveries_total", "Local deliveries (one per recipient mailbox), by result.", ["result"]
)
DELIVERY_LATENCY: Final = Histogram("mailserver_delivery_seconds", "Time to store one delivery durably.")
QUEUED: Final = Counter("mailserver_outbound_queued_total", "Messages queued for remote delivery.")
AUTH: Final = Counter("mailserver_auth_total", "Authentications, by outcome (failed, throttled, ok…).",
                      ["outcome"])
AUTH_FAILURES: Final = Counter("mailserver_auth_failures_total", "Failed or throttled authentications.")
AUTH_LATENCY: Final = Histogram("mailserver_auth_seconds", "Time to answer one authentication.")

REGISTRY: Final[list[_Metric]] = [
    IMAP_COMMANDS, IMAP_LATENCY, DELIVERIES, DELIVERY_LATENCY, QUEUED, AUTH, AUTH_FAILURES, AUTH_LATENCY,
]

Collector = Callable[[], Awaitable[list[_Metric]]]
"""Builds metrics at scrape time (gauges of current state)."""


def observe_command(command: str, seconds: float) -> None:
    IMAP_COMMANDS.inc(command)
    IMAP_LATENCY.observe(seconds, command)


async def render(collectors: Sequence[Collector] = ()) -> str:
    metrics: list[_Metric] = list(REGISTRY)
    for collect in collectors:
        try:
            metrics += await collect()
        except Exception:
            # A scrape must not fail because one source is down; the rest is still useful.
            log.exception("metrics collector failed")
    lines: list[str] = []
    for metric in metrics:
        lines += metric.header()
        lines += metric.samples()
    return "\n".join(lines) + "\n"


class MetricsService:
    """``GET /metrics`` over HTTP/1.0 on ``metrics.listen`` (a Service of the App)."""

    def __init__(self, listen: str, collectors: Sequence[Collector] = ()) -> None:
        self._listen = listen
        self._collectors = list(collectors)
        self._server: asyncio.Server | None = None

    async def start(self) -> dict[str, tuple[str, int]]:
        host, port = parse_hostport(self._listen)
        self._server = await asyncio.start_server(self._handle, host, port)
        bound = self._server.sockets[0].getsockname()
        return {"metrics": (str(bound[0]), int(bound[1]))}

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2.0)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(10):
                request = await reader.readline()
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass  # headers are not needed
            parts = request.split()
            path = parts[1].decode("latin-1") if len(parts) >= 2 else ""
            if len(parts) < 2 or parts[0] != b"GET":
                status, body, ctype = "405 Method Not Allowed", "GET only\n", "text/plain"
            elif path.split("?")[0] == "/metrics":
                status, body = "200 OK", await render(self._collectors)
                ctype = "text/plain; version=0.0.4; charset=utf-8"
            elif path == "/healthz":
                status, body, ctype = "200 OK", "ok\n", "text/plain"
            else:
                status, body, ctype = "404 Not Found", "not found\n", "text/plain"
            data = body.encode()
            writer.write(
                f"HTTP/1.0 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(data)}\r\n"
                "Connection: close\r\n\r\n".encode() + data
            )
            await writer.drain()
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


class Timer:
    """``with Timer() as t: ...; t.seconds`` (monotonic)."""

    def __enter__(self) -> Timer:
        self.start = time.monotonic()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.monotonic() - self.start

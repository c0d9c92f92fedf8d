"""Side-by-side benchmark: our server against Postfix + Dovecot, same machine, same clients.

Run through ``bench/run`` (which installs the peers first). Scenarios:

1. SMTP ingest (RFC 5321) with Postfix's ``smtp-source``: 20 sessions, 4 KB and 200 KB
   messages, timed until every message file is in the Maildir; once with many messages
   per connection (``-d``) and once with one connection per message (the tool's default,
   what many sending MTAs do), against Postfix + Dovecot (LMTP) and against Postfix alone
   delivering with virtual(8); server CPU seconds per 1,000 messages beside each rate.
2. IMAP APPEND (RFC 9051 §6.3.12, LITERAL+) of the corpus; ``mbsync`` full pull into an
   empty Maildir and a no-change resync (server CPU seconds per 1,000 messages beside it);
   APPEND one at a time with Python's ``imaplib`` (synchronising literals, flags and date:
   what Thunderbird saving to Sent and imapsync do), 2,000 messages into a folder of its own.
3. ``UID FETCH 1:* (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)``; ``UID SEARCH`` on subject
   and on ``UNSEEN SINCE``.
4. N concurrent IDLE (RFC 2177) connections: server memory (RSS and PSS, whole process tree).
5. 20 clients doing mixed SELECT/FETCH/STORE for a fixed time: operations per second and
   server CPU seconds per 1,000 operations.
6. Policy scan of 5 MB .docx and .pdf attachments (ours only).

Ends with a sha256 check of every message on both servers. Writes
``bench/results/latest.json`` and ``latest.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import imaplib
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import corpus  # noqa: E402
import peers  # noqa: E402
from imapc import Imap  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
INGEST_USER = f"ingest@{peers.DOMAIN}"
SCENARIOS = ("smtp", "smtp-conn", "append", "append-imaplib", "mbsync", "fetch", "idle", "mixed", "policy")
"""``--only`` names: SMTP with connection reuse, SMTP a connection per message, and the rest."""
TIMEOUT = 1800.0
"""Upper bound on any single wait (bounded loops)."""


class Side:
    """One server under test as the scenarios see it."""

    def __init__(self, name: str, smtp_port: int, imap_port: int, ingest_dir: Callable[[], Path],
                 pids: Callable[[], list[int]], main_pid: Callable[[], int],
                 cpu_pids: Callable[[], list[int]] | None = None) -> None:
        self.name = name
        self.cpu_pids = cpu_pids or pids
        """Every process whose CPU time counts as the server's (all the chain's)."""
        self.smtp_port = smtp_port
        self.imap_port = imap_port
        self.ingest_dir = ingest_dir
        self.pids = pids
        self.main_pid = main_pid


def count_files(maildir: Path) -> int:
    return sum(len(os.listdir(maildir / sub)) for sub in ("new", "cur") if (maildir / sub).is_dir())


def wait_count(maildir: Path, want: int) -> None:
    deadline = time.monotonic() + TIMEOUT
    while count_files(maildir) < want:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{maildir}: {count_files(maildir)} of {want} messages after {TIMEOUT:.0f} s")
        time.sleep(0.02)


# -- scenario 1: SMTP ingest ------------------------------------------------------------

def smtp_ingest(side: Side, messages: int, size: int, reuse: bool = True) -> tuple[float, float]:
    """Seconds from the first connection until the last message file is in the
    Maildir, and the server's CPU seconds meanwhile. ``reuse``: ``smtp-source -d``
    (many messages per connection); else a connection per message."""
    target = side.ingest_dir()
    before = count_files(target)
    cpu_before = peers.cpu_seconds(side.cpu_pids())
    start = time.perf_counter()
    subprocess.run(
        ["smtp-source", *(["-d"] if reuse else []), "-s", "20", "-m", str(messages), "-l", str(size),
         "-f", "sender@example.org", "-t", INGEST_USER, "-M", "client.example.org",
         f"127.0.0.1:{side.smtp_port}"],
        check=True, timeout=TIMEOUT,
    )
    wait_count(target, before + messages)
    elapsed = time.perf_counter() - start
    # Processes still alive are counted directly; the ones that ended were reaped
    # by a parent in the tree (their time is in its cutime/cstime).
    return elapsed, peers.cpu_seconds(side.cpu_pids()) - cpu_before


# -- scenario 2: APPEND, mbsync ---------------------------------------------------------

async def append_all(side: Side, messages: list[corpus.Message], folder: str) -> float:
    client = await Imap.connect(side.imap_port, peers.USER, peers.PASSWORD)
    try:
        if folder != "INBOX":
            await client.command(f'CREATE "{folder}"'.encode())
        start = time.perf_counter()
        for m in messages:
            flags = "(\\Seen)" if m.seen else "()"
            await client.command(f"APPEND {folder} {flags} {m.internaldate}".encode(), m.data)
        return time.perf_counter() - start
    finally:
        await client.close()


IMAPLIB_FOLDER = "Imaplib"
"""Where the one-at-a-time APPENDs go (the corpus INBOX stays as the other scenarios want it)."""


def append_imaplib(side: Side, messages: list[corpus.Message]) -> tuple[float, float]:
    """APPEND each message with Python's ``imaplib``, the next only after the previous
    one's tagged OK: a synchronising literal (the client waits for ``+``, then writes
    the literal and its CRLF in two writes, Nagle on), ``\\Seen`` or no flags, the
    INTERNALDATE. Seconds, and the server's CPU seconds meanwhile."""
    client = imaplib.IMAP4("127.0.0.1", side.imap_port)
    try:
        client.login(peers.USER, peers.PASSWORD)
        client.create(IMAPLIB_FOLDER)  # NO if a repetition made it already: fine
        cpu_before = peers.cpu_seconds(side.cpu_pids())
        start = time.perf_counter()
        for m in messages:
            typ, data = client.append(IMAPLIB_FOLDER, "(\\Seen)" if m.seen else None, m.internaldate, m.data)
            if typ != "OK":
                raise RuntimeError(f"{side.name}: APPEND answered {typ} {data!r}")
        elapsed = time.perf_counter() - start
        cpu = peers.cpu_seconds(side.cpu_pids()) - cpu_before
    except BaseException:
        client.shutdown()
        raise
    client.logout()
    return elapsed, cpu


def mbsync(side: Side, work: Path, fresh: bool) -> float:
    near = work / f"mbsync-{side.name}"
    if fresh and near.exists():
        shutil.rmtree(near)
    near.mkdir(exist_ok=True)
    rc = work / f"mbsyncrc-{side.name}"
    rc.write_text(f"""\
IMAPAccount bench
Host 127.0.0.1
Port {side.imap_port}
User {peers.USER}
Pass {peers.PASSWORD}
SSLType None
AuthMechs LOGIN

IMAPStore far
Account bench

MaildirStore near
Path {near}/
Inbox {near}/INBOX

Channel bench
Far :far:
Near :near:
Patterns INBOX
Sync Pull
Create Near
SyncState *
""")
    start = time.perf_counter()
    # -q -q: not even the warning about a clear-text password (loopback only).
    subprocess.run(["mbsync", "-q", "-q", "-c", str(rc), "bench"], check=True, timeout=TIMEOUT)
    return time.perf_counter() - start


def check_mbsync(side: Side, work: Path, messages: list[corpus.Message]) -> int:
    """sha256 of every pulled file against the corpus: mbsync stores LF line ends and
    adds an ``X-TUID`` header field of its own, both undone before hashing."""
    want = sorted(hashlib.sha256(m.data.replace(b"\r\n", b"\n")).hexdigest() for m in messages)
    inbox = work / f"mbsync-{side.name}" / "INBOX"
    got = sorted(
        hashlib.sha256(re.sub(rb"(?m)^X-TUID: [^\n]*\n", b"", p.read_bytes().replace(b"\r\n", b"\n"),
                              count=1)).hexdigest()
        for sub in ("cur", "new") for p in (inbox / sub).iterdir()
    )
    if got != want:
        raise RuntimeError(f"{side.name}: mbsync copy differs from the corpus "
                           f"({len(got)} files, {len(set(got) & set(want))} match of {len(want)})")
    return len(got)


# -- scenario 3: FETCH and SEARCH -------------------------------------------------------

SORT_COMMANDS = (
    ("sort_arrival_s", b"UID SORT (REVERSE ARRIVAL) UTF-8 ALL"),
    ("sort_subject_s", b"UID SORT (SUBJECT) UTF-8 ALL"),
    ("sort_from_date_s", b"UID SORT (DISPLAYFROM REVERSE DATE) UTF-8 ALL"),
    ("thread_references_s", b"UID THREAD REFERENCES UTF-8 ALL"),
)

async def fetch_search(side: Side, total: int) -> dict[str, float]:
    client = await Imap.connect(side.imap_port, peers.USER, peers.PASSWORD)
    out: dict[str, float] = {}
    try:
        await client.command(b"SELECT INBOX")
        start = time.perf_counter()
        rows = await client.command(b"UID FETCH 1:* (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)")
        out["fetch_all_s"] = time.perf_counter() - start
        if len(rows) != total:
            raise RuntimeError(f"{side.name}: FETCH 1:* gave {len(rows)} rows, want {total}")
        word = corpus.SEARCH_WORD.encode()
        start = time.perf_counter()
        await client.command(b"UID SEARCH CHARSET UTF-8 SUBJECT", word)
        out["search_subject_s"] = time.perf_counter() - start
        start = time.perf_counter()
        await client.command(f"UID SEARCH UNSEEN SINCE {corpus.SINCE}".encode())
        out["search_unseen_since_s"] = time.perf_counter() - start
        # SORT and THREAD (RFC 5256) over the whole folder: what Roundcube asks on opening it.
        for key, command in SORT_COMMANDS:
            start = time.perf_counter()
            lines = await client.command(command)
            out[key] = time.perf_counter() - start
            if command.startswith(b"UID SORT") and len(lines[0].split()) - 2 != total:
                raise RuntimeError(f"{side.name}: {command.decode()} gave {len(lines[0].split()) - 2} UIDs")
    finally:
        await client.close()
    return out


# -- scenario 4: IDLE memory ------------------------------------------------------------

def memory(side: Side) -> dict[str, float]:
    rss = pss = imap_rss = 0
    main = side.main_pid()
    for pid in side.pids():
        r, p, name = peers.memory_kib(pid)
        rss += r
        pss += p
        if pid == main or name == "imap":
            imap_rss += r
    return {"rss_mib": rss / 1024, "pss_mib": pss / 1024, "imap_and_master_rss_mib": imap_rss / 1024}


async def idle_memory(side: Side, count: int) -> dict[str, float]:
    base = memory(side)
    sem = asyncio.Semaphore(50)

    async def one() -> Imap:
        async with sem:
            client = await Imap.connect(side.imap_port, peers.USER, peers.PASSWORD)
            await client.command(b"SELECT INBOX")
            client.writer.write(b"i IDLE\r\n")
            line = await client.reader.readline()
            if not line.startswith(b"+"):
                raise RuntimeError(f"{side.name}: IDLE answered {line!r}")
            return client

    start = time.perf_counter()
    clients = await asyncio.gather(*(one() for _ in range(count)))
    setup = time.perf_counter() - start
    await asyncio.sleep(2)  # let the servers settle (allocators, login processes exiting)
    loaded = memory(side)
    for c in clients:
        c.writer.close()
    await asyncio.sleep(0.5)
    return {"idle_connections": count, "setup_s": setup, **loaded,
            "rss_mib_before": base["rss_mib"]}


# -- scenario 5: mixed load -------------------------------------------------------------

async def mixed(side: Side, clients: int, seconds: float, total: int, seed: int) -> tuple[float, float]:
    """Operations per second and the server's CPU seconds per operation; LOGIN and the
    first SELECT happen before the clock starts."""
    conns = [await Imap.connect(side.imap_port, peers.USER, peers.PASSWORD) for _ in range(clients)]
    for c in conns:
        await c.command(b"SELECT INBOX")
    counts = [0] * clients
    stop_at = time.monotonic() + seconds

    async def worker(n: int, client: Imap) -> None:
        rng = random.Random(seed * 1000 + n)
        while time.monotonic() < stop_at:
            roll = rng.random()
            uid = rng.randint(1, total)
            if roll < 0.15:
                await client.command(b"SELECT INBOX")
            elif roll < 0.55:
                await client.command(b"UID FETCH %d:%d (FLAGS ENVELOPE)" % (uid, min(total, uid + 49)))
            elif roll < 0.75:
                await client.command(b"UID FETCH %d BODY.PEEK[]" % uid)
            else:
                sign = b"+" if roll < 0.875 else b"-"
                await client.command(b"UID STORE %d %sFLAGS.SILENT (\\Flagged)" % (uid, sign))
            counts[n] += 1

    cpu_before = peers.cpu_seconds(side.cpu_pids())
    start = time.perf_counter()
    try:
        await asyncio.gather(*(worker(n, c) for n, c in enumerate(conns)))
        elapsed = time.perf_counter() - start
        cpu = peers.cpu_seconds(side.cpu_pids()) - cpu_before
        return sum(counts) / elapsed, cpu / max(sum(counts), 1)
    finally:
        for c in conns:
            await c.close()


# -- final integrity check --------------------------------------------------------------

async def verify_imap(side: Side, messages: list[corpus.Message], folder: str = "INBOX") -> int:
    client = await Imap.connect(side.imap_port, peers.USER, peers.PASSWORD)
    try:
        await client.command(b"EXAMINE " + folder.encode())
        rows = await client.command(b"UID FETCH 1:* (BODY.PEEK[])")
    finally:
        await client.close()
    got = []
    for row in rows:
        head, _, rest = row.partition(b"}\r\n")
        size = int(head.rsplit(b"{", 1)[1])
        got.append(hashlib.sha256(rest[:size]).hexdigest())
    want = [m.sha256 for m in messages]
    if got != want:
        bad = sum(a != b for a, b in zip(got, want, strict=False)) + abs(len(got) - len(want))
        raise RuntimeError(f"{side.name}: {bad} of {len(want)} messages lost or corrupted in {folder} "
                           "(IMAP sha256)")
    return len(got)


def verify_ingest(side: Side, want: int) -> int:
    """Every ingested message body is smtp-source's body, byte for byte (headers differ by design)."""
    target = side.ingest_dir()
    bodies: dict[str, int] = {}
    for sub in ("new", "cur"):
        for path in (target / sub).iterdir():
            data = path.read_bytes().replace(b"\r\n", b"\n")
            body = data.split(b"\n\n", 1)[1]
            key = f"{len(body)}:{hashlib.sha256(body).hexdigest()}"
            bodies[key] = bodies.get(key, 0) + 1
    total = sum(bodies.values())
    if total != want or len(bodies) > 2:  # two sizes: the 4 KB and the 200 KB runs
        raise RuntimeError(f"{side.name}: ingest Maildir holds {total} of {want}, bodies {bodies}")
    return total


# -- driver -----------------------------------------------------------------------------

FLOORS: Final = {"floor": "aiosmtpd floor", "floor-reader": "floor, our DATA reader"}
"""bench/smtp_floor.py's two forms (``--floor``): table column titles by side name."""


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


class Recorder:
    def __init__(self) -> None:
        self.samples: dict[str, dict[str, list[float]]] = {}
        self.meta: dict[str, dict[str, str]] = {}

    def add(self, metric: str, side: str, value: float, unit: str, better: str, label: str) -> None:
        self.samples.setdefault(metric, {}).setdefault(side, []).append(value)
        self.meta[metric] = {"unit": unit, "better": better, "label": label}
        print(f"  {side:7} {label}: {value:.3f} {unit}", flush=True)

    def table(self) -> list[dict[str, Any]]:
        rows = []
        for metric, by_side in self.samples.items():
            ours, theirs = median(by_side.get("ours", [])), median(by_side.get("peer", []))
            ratio = ours / theirs if by_side.get("peer") and theirs else None
            onebox = median(by_side.get("virtual", []))
            rows.append({"metric": metric, **self.meta[metric], "ours": ours,
                         "theirs": theirs if by_side.get("peer") else None, "ratio": ratio,
                         "onebox": onebox if by_side.get("virtual") else None,
                         "ratio_onebox": ours / onebox if by_side.get("virtual") and onebox else None,
                         **{name: median(by_side[name]) if by_side.get(name) else None for name in FLOORS},
                         **{f"{name}_onebox": median(by_side[name]) / onebox
                            if by_side.get(name) and by_side.get("virtual") and onebox else None
                            for name in FLOORS},
                         "samples": by_side})
        return rows


def write_results(rows: list[dict[str, Any]], info: dict[str, Any], name: str = "latest") -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps({"info": info, "results": rows}, indent=2,
                                                     ensure_ascii=False) + "\n")
    lines = [
        f"# Benchmark {info['started']} ({'quick' if info['quick'] else 'full'})",
        "",
        f"{info['machine']}; {info['note']}",
        f"Peers: {info['peers']}. Ours: {info['ours']}. Medians of {info['reps']} repetitions.",
        "",
        "| scenario | unit | better | ours | Postfix/Dovecot | ours/theirs | Postfix one box | ours/it |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    floors = [side for side in FLOORS if any(r.get(side) is not None for r in rows)]
    for side in floors:  # bench/smtp_floor.py ran too: two more columns each
        lines[-2] += f" {FLOORS[side]} | it/one box |"
        lines[-1] += " ---: | ---: |"

    def fmt(value: float | None, digits: int) -> str:
        return "—" if value is None else f"{value:.{digits}f}"

    for r in rows:
        cells = [r["label"], r["unit"], r["better"], f"{r['ours']:.3f}", fmt(r["theirs"], 3),
                 fmt(r["ratio"], 2), fmt(r.get("onebox"), 3), fmt(r.get("ratio_onebox"), 2)]
        for side in floors:
            cells += [fmt(r.get(side), 3), fmt(r.get(f"{side}_onebox"), 2)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Integrity: {info['integrity']}", ""]
    (RESULTS / f"{name}.md").write_text("\n".join(lines))


def policy_scan(rec: Recorder, quick: bool) -> None:
    import policy_scan as ps

    from tests.policy import corpus as pcorpus

    cases = [("docx", ps.docx_typical(), "bao-cao.docx", pcorpus.DOCX),
             ("pdf", ps.pdf_typical(), "van-ban.pdf", "application/pdf")]
    for name, data, filename, ctype in cases:
        result = asyncio.run(ps.time_pipeline(name, data, filename, ctype))
        rec.add(f"policy_{name}_s", "ours", float(str(result["pipeline_median_s"])), "s", "lower",
                f"6. policy scan, 5 MB .{name}")


class Profiler:
    """py-spy on our server for one scenario; SIGINT makes it write the flame graph."""

    def __init__(self, scenario: str, pid: int, fmt: str = "flamegraph", gil: bool = False) -> None:
        self.scenario = scenario
        self.gil = gil
        self.pid = pid
        self.fmt = fmt
        self.out = RESULTS / ("profile.svg" if fmt == "flamegraph" else "profile.txt")
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Profiler:
        if shutil.which("py-spy") is None:
            print("  (py-spy not installed: no profile)")
            return self
        RESULTS.mkdir(exist_ok=True)
        self.proc = subprocess.Popen(
            ["py-spy", "record", "--rate", "200", "-o", str(self.out), "--format", self.fmt,
             "--pid", str(self.pid), "--subprocesses", "--nonblocking", *(["--gil"] if self.gil else [])],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        time.sleep(1)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            print(f"  profile of {self.scenario}: {self.out}")


def run(args: argparse.Namespace) -> int:
    q = args.quick
    only = set(args.only.split(",")) if args.only else set(SCENARIOS)
    unknown = only - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"--only: unknown scenario(s) {', '.join(sorted(unknown))}; "
                         f"known: {', '.join(SCENARIOS)}")
    if only & {"mbsync", "fetch", "mixed"}:
        only.add("append")  # they read the corpus APPEND stored
    n_corpus = args.messages or (300 if q else 10_000)
    n_small, n_big = (400, 40) if q else (5000, 500)
    n_conn_small, n_conn_big = (400, 40) if q else (3000, 300)
    if args.smtp_messages:
        n_small, n_big = n_conn_small, n_conn_big = [int(v) for v in args.smtp_messages.split(",")]
    n_idle = args.idle or (100 if q else 1000)
    n_imaplib = args.imaplib_messages or (300 if q else 2000)
    mixed_s = 5.0 if q else 30.0
    reps = args.reps
    peers.raise_nofile()
    print(f"corpus: {n_corpus} messages", flush=True)
    messages = corpus.build(n_corpus)
    one_by_one = messages[:n_imaplib] if n_imaplib <= n_corpus else corpus.build(n_imaplib)
    print(f"  {sum(len(m.data) for m in messages) / 1e6:.1f} MB", flush=True)
    root = Path(tempfile.mkdtemp(prefix="mailbench-"))
    os.chmod(root, 0o755)  # noqa: S103 - the postfix and mail users need to reach their directories
    dovecot = peers.Dovecot(root)
    postfix = peers.Postfix(root, dovecot.lmtp_port)
    smtp_wanted = bool(only & {"smtp", "smtp-conn"})
    onebox = peers.Postfix(root, maildir=True) if smtp_wanted else None
    floors = [peers.Floor(root), peers.Floor(root, our_reader=True)] if smtp_wanted and args.floor else []
    pg = os.environ.get("MAILSERVER_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
    extra: dict[str, dict[str, str]] = {}
    for item in args.set:
        key, _, value = item.partition("=")
        section, _, name = key.partition(".")
        extra.setdefault(section, {})[name] = value
    ours = peers.Ours(root, pg if args.postgres else "", extra=extra)
    rec = Recorder()
    integrity: list[str] = []
    try:
        dovecot.start()
        postfix.start()
        if onebox is not None:
            onebox.start()
        for low in floors:
            low.start()
        ours.start()
        ours._cli("account", "add", INGEST_USER, "--name", "Ingest", "--password-stdin",
                  "--no-change-required", stdin=peers.PASSWORD.encode() + b"\n")
        sides = [
            Side("peer", postfix.port, dovecot.imap_port,
                 lambda: dovecot.mail / peers.DOMAIN / "ingest" / "Maildir", dovecot.server_pids,
                 dovecot.master_pid, cpu_pids=lambda: postfix.server_pids() + dovecot.server_pids()),
            Side("ours", ours.smtp_port, ours.imap_port,
                 lambda: ours.dir / "data" / "maildir" / peers.DOMAIN / "ingest", ours.server_pids,
                 lambda: ours.proc.pid if ours.proc else 0),
        ]

        def profiled(name: str, side: Side) -> contextlib.AbstractContextManager[object]:
            if side.name == "ours" and args.profile == name:
                return Profiler(name, side.main_pid(), args.profile_format, args.profile_gil)
            return contextlib.nullcontext()

        smtp_sides = list(sides)
        if onebox is not None:
            box = onebox
            smtp_sides.insert(1, Side("virtual", box.port, 0,
                                      lambda: box.mailboxes / peers.DOMAIN / "ingest", box.server_pids,
                                      box.master_pid))
        for low in floors:
            smtp_sides.append(Side("floor-reader" if low.our_reader else "floor", low.port, 0,
                                   lambda low=low: low.mailboxes,
                                   low.server_pids, low.master_pid))
        ingested = {"peer": 0, "ours": 0, "virtual": 0, "floor": 0, "floor-reader": 0}
        runs = [(reuse, label, small, big) for reuse, label, small, big, name in (
            (True, "many per connection (-d)", n_small, n_big, "smtp"),
            (False, "a connection per message", n_conn_small, n_conn_big, "smtp-conn"),
        ) if name in only]
        if runs:
            print("1. SMTP ingest", flush=True)
        for reuse, how, small, big in runs:
            key = "smtp" if reuse else "smtp_conn"
            for _ in range(reps):
                for side in smtp_sides:
                    for count, size, tag in ((small, 4096, "4k"), (big, 200_000, "200k")):
                        if not count:
                            continue
                        with profiled("smtp" if reuse else "smtp-conn", side):
                            t, cpu = smtp_ingest(side, count, size, reuse)
                        what = f"1. SMTP, {how}, {count} × {'4 KB' if tag == '4k' else '200 KB'}, 20 sessions"
                        rec.add(f"{key}_{tag}_msgs_per_s", side.name, count / t, "msg/s", "higher", what)
                        rec.add(f"{key}_{tag}_cpu_s_per_1000", side.name, cpu * 1000 / count, "CPU s/1000",
                                "lower", f"{what}: server CPU per 1,000")
                        ingested[side.name] += count

        if "append" in only:
            print("2. IMAP APPEND and mbsync", flush=True)
        for rep in range(reps if "append" in only else 0):
            folder = "INBOX" if rep == 0 else f"Append{rep}"
            for side in sides:
                with profiled("append", side):
                    t = asyncio.run(append_all(side, messages, folder))
                rec.add("append_s", side.name, t, "s", "lower", f"2. APPEND {n_corpus} messages")
        for _ in range(reps if "mbsync" in only else 0):
            for side in sides:
                with profiled("mbsync", side):
                    t = mbsync(side, root, fresh=True)
                rec.add("mbsync_full_s", side.name, t, "s", "lower", f"2. mbsync full pull, {n_corpus}")
                cpu_before = peers.cpu_seconds(side.cpu_pids())
                with profiled("mbsync-resync", side):
                    t = mbsync(side, root, fresh=False)
                cpu = peers.cpu_seconds(side.cpu_pids()) - cpu_before
                what = f"2. mbsync no-change resync, {n_corpus}"
                rec.add("mbsync_resync_s", side.name, t, "s", "lower", what)
                rec.add("mbsync_resync_cpu_s_per_1000", side.name, cpu * 1000 / n_corpus, "CPU s/1000",
                        "lower", f"{what}: server CPU per 1,000 messages")
        for side in sides if "mbsync" in only else []:
            integrity.append(f"{side.name}: mbsync copy {check_mbsync(side, root, messages)} sha256 ok")

        if "append-imaplib" in only:
            print(f"2b. APPEND {len(one_by_one)} messages one at a time with imaplib", flush=True)
        for _ in range(reps if "append-imaplib" in only else 0):
            for side in sides:
                with profiled("append-imaplib", side):
                    t, cpu = append_imaplib(side, one_by_one)
                what = f"2b. APPEND {len(one_by_one)} one at a time, imaplib (sync literal, flags, date)"
                rec.add("append_imaplib_s", side.name, t, "s", "lower", what)
                rec.add("append_imaplib_cpu_s_per_1000", side.name, cpu * 1000 / len(one_by_one),
                        "CPU s/1000", "lower", f"{what}: server CPU per 1,000")

        if "fetch" in only:
            print("3. FETCH and SEARCH", flush=True)
        for _ in range(reps if "fetch" in only else 0):
            for side in sides:
                with profiled("fetch", side):
                    out = asyncio.run(fetch_search(side, n_corpus))
                rec.add("fetch_all_s", side.name, out["fetch_all_s"], "s", "lower",
                        "3. UID FETCH 1:* (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)")
                rec.add("search_subject_s", side.name, out["search_subject_s"], "s", "lower",
                        "3. UID SEARCH SUBJECT")
                rec.add("search_unseen_since_s", side.name, out["search_unseen_since_s"], "s", "lower",
                        "3. UID SEARCH UNSEEN SINCE")
                for key, command in SORT_COMMANDS:
                    rec.add(key, side.name, out[key], "s", "lower", "3. " + command.decode())

        if "idle" in only:
            print(f"4. {n_idle} IDLE connections", flush=True)
        for side in sides if "idle" in only else []:
            out = asyncio.run(idle_memory(side, n_idle))
            rec.add("idle_rss_mib", side.name, out["rss_mib"], "MiB", "lower",
                    f"4. RSS with {n_idle} IDLE (all server processes)")
            rec.add("idle_pss_mib", side.name, out["pss_mib"], "MiB", "lower",
                    f"4. PSS with {n_idle} IDLE (shared pages split)")
            rec.add("idle_imap_master_rss_mib", side.name, out["imap_and_master_rss_mib"], "MiB", "lower",
                    f"4. RSS with {n_idle} IDLE (imap processes + master)")
            rec.add("idle_setup_s", side.name, out["setup_s"], "s", "lower",
                    f"4. time to open {n_idle} IDLE sessions (LOGIN+SELECT)")

        if "mixed" in only:
            print(f"5. mixed load, 20 clients × {mixed_s:.0f} s", flush=True)
        for rep in range(reps if "mixed" in only else 0):
            for side in sides:
                with profiled("mixed", side):
                    ops, cpu_per_op = asyncio.run(mixed(side, 20, mixed_s, n_corpus, rep))
                rec.add("mixed_ops_per_s", side.name, ops, "ops/s", "higher",
                        "5. mixed SELECT/FETCH/STORE, 20 clients")
                rec.add("mixed_cpu_s_per_1000", side.name, cpu_per_op * 1000, "CPU s/1000", "lower",
                        "5. mixed SELECT/FETCH/STORE: server CPU per 1,000 operations")

        if "policy" in only and not args.skip_policy:
            print("6. policy scan (ours only)", flush=True)
            policy_scan(rec, q)

        print("integrity: sha256 of every message", flush=True)
        for side in sides if "append" in only else []:
            integrity.append(f"{side.name}: INBOX {asyncio.run(verify_imap(side, messages))} sha256 ok")
        for side in sides if "append-imaplib" in only else []:
            copies = asyncio.run(verify_imap(side, one_by_one * reps, IMAPLIB_FOLDER))
            integrity.append(f"{side.name}: {IMAPLIB_FOLDER} {copies} sha256 ok")
        for side in smtp_sides if runs else []:
            integrity.append(f"{side.name}: ingest {verify_ingest(side, ingested[side.name])} bodies ok")
    finally:
        for server in (ours, postfix, onebox, *floors, dovecot):
            if server is None:
                continue
            try:
                server.stop()
            except Exception as exc:  # keep stopping the others
                print(f"stopping {type(server).__name__}: {exc}", file=sys.stderr)
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    info = {
        "started": time.strftime("%Y-%m-%d %H:%M"),
        "quick": q,
        "reps": reps,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Linux {platform.release()}",
        "note": args.note,
        "peers": "Postfix " + subprocess.run(["postconf", "-dh", "mail_version"], capture_output=True,
                                             text=True).stdout.strip()
                 + " + Dovecot " + subprocess.run(["dovecot", "--version"], capture_output=True,
                                                  text=True).stdout.split()[0]
                 + " (LMTP, Maildir, mail_fsync=always)",
        "ours": f"Python {platform.python_version()}, {'PostgreSQL' if args.postgres else 'SQLite'}"
                + "".join(f", {item}" for item in args.set),
        "sizes": {"corpus": n_corpus, "imaplib": n_imaplib,
                  "smtp_4k": n_small, "smtp_200k": n_big, "smtp_conn_4k": n_conn_small,
                  "smtp_conn_200k": n_conn_big, "idle": n_idle, "mixed_seconds": mixed_s},
        "scenarios": sorted(only),
        "integrity": "; ".join(integrity),
    }
    write_results(rec.table(), info, args.out)
    print((RESULTS / f"{args.out}.md").read_text())
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run with small counts (~2 minutes)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions per scenario (median reported)")
    parser.add_argument("--messages", type=int, default=0, help="corpus size (default 10000, quick 300)")
    parser.add_argument("--idle", type=int, default=0, help="IDLE connections (default 1000, quick 100)")
    parser.add_argument("--imaplib-messages", type=int, default=0,
                        help="messages APPENDed one at a time with imaplib (default 2000, quick 300)")
    parser.add_argument("--postgres", action="store_true",
                        help="our store on PostgreSQL (MAILSERVER_BENCH_PG, default the local server)")
    parser.add_argument("--out", default="latest", help="results file name in bench/results (no suffix)")
    parser.add_argument("--only", default="",
                        help=f"comma-separated scenarios to run (default all): {','.join(SCENARIOS)}")
    parser.add_argument("--smtp-messages", default="",
                        help="N,M: messages of 4 KB and of 200 KB in each SMTP run (0 skips that size)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="extra setting for our server's config file (TOML value), e.g. smtp.processes=1")
    parser.add_argument("--profile", choices=["smtp", "smtp-conn", "append", "append-imaplib", "mbsync",
                                              "mbsync-resync", "fetch", "mixed"],
                        help="record a py-spy flame graph of our server during this scenario")
    parser.add_argument("--profile-gil", action="store_true",
                        help="sample only the thread holding the GIL (Python CPU; idle waits left out)")
    parser.add_argument("--profile-format", choices=["flamegraph", "raw", "speedscope"], default="flamegraph",
                        help="py-spy output: flamegraph (results/profile.svg) or collapsed stacks "
                             "(raw, results/profile.txt) to read with grep/sort")
    parser.add_argument("--floor", action="store_true",
                        help="SMTP scenarios also against bench/smtp_floor.py: aiosmtpd that only writes "
                             "and fsyncs each message (what any aiosmtpd server must at least do)")
    parser.add_argument("--skip-policy", action="store_true", help="leave out scenario 6")
    parser.add_argument("--keep", action="store_true", help="keep the temp directory")
    parser.add_argument("--note", default="", help="free text for the results header (e.g. machine load)")
    args = parser.parse_args()
    if args.reps < 1:
        parser.error("--reps must be at least 1")

    def terminate(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)  # unwinds through the finally that stops the servers

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())

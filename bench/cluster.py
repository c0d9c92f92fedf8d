"""Several nodes (issue 26): the same load on one node over SQLite, one node over
PostgreSQL and two nodes over one PostgreSQL database and one data directory.

Scenarios (each configuration fresh):

1. SMTP ingest with Postfix's ``smtp-source``, one connection per message, 20 sessions
   in all, 4 KB messages; with two nodes two ``smtp-source`` runs (10 sessions each)
   share the messages, one per node. Timed until every file is in the Maildir.
2. 20 IMAP clients doing mixed SELECT/FETCH/STORE for a fixed time (bench/harness.py's
   ``mixed``), after an APPEND of the corpus; with two nodes 10 clients on each.

Run: ``python3 bench/cluster.py [--messages N] [--seconds S]`` (PostgreSQL on
127.0.0.1:5432, Postfix's smtp-source installed: ``bench/run`` installs it). Writes
``bench/results/cluster.json`` and prints a Markdown table. The crash-safety check on
the cluster is ``tests/cluster/test_two_nodes.py::test_a_node_killed_under_load_loses_nothing``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import corpus  # noqa: E402
import harness  # noqa: E402
import peers  # noqa: E402

PG = "postgresql://postgres@127.0.0.1:5432/test"


class Node(peers.Ours):
    """A further node of an ``Ours``: same data directory and database, own ports."""

    def __init__(self, root: Path, first: peers.Ours, index: int) -> None:
        super().__init__(root / f"node{index}")
        self.first = first

    def start(self) -> None:
        self.dir.mkdir(parents=True)
        text = (self.first.dir / "mailserver.toml").read_text()
        for old, new in ((self.first.smtp_port, self.smtp_port), (self.first.imap_port, self.imap_port)):
            text = text.replace(f'127.0.0.1:{old}"', f'127.0.0.1:{new}"')
        lines = []
        for line in text.splitlines():
            # Every other listener on a port of its own too.
            if line.split(" = ", 1)[0].endswith("listen") and "127.0.0.1:" in line:
                port = int(line.rsplit(":", 1)[1].rstrip('"'))
                if port not in (self.smtp_port, self.imap_port):
                    line = line.rsplit(":", 1)[0] + f':{peers.free_port()}"'
            lines.append(line)
        (self.dir / "mailserver.toml").write_text("\n".join(lines) + "\n")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mailserver", "--config", str(self.dir / "mailserver.toml"), "serve"],
            cwd=peers.REPO,
            stdout=subprocess.DEVNULL,
            stderr=open(self.dir / "server.log", "wb"),  # noqa: SIM115
        )
        peers.wait_port(self.smtp_port)
        peers.wait_port(self.imap_port)

    def stop(self) -> None:
        self.db_name = ""  # the first node drops the database
        super().stop()

    @property
    def maildir(self) -> Path:
        return self.first.maildir


def side(node: peers.Ours, nodes: list[peers.Ours]) -> harness.Side:
    return harness.Side(
        "ours",
        node.smtp_port,
        node.imap_port,
        lambda: nodes[0].dir / "data" / "maildir" / peers.DOMAIN / "ingest",
        lambda: [p for n in nodes for p in n.server_pids()],
        lambda: nodes[0].server_pids()[0],
    )


def ingest(nodes: list[peers.Ours], messages: int) -> tuple[float, float]:
    """Messages per second and CPU ms per message, all nodes' processes counted."""
    sides = [side(n, nodes) for n in nodes]
    target = sides[0].ingest_dir()
    before = harness.count_files(target)
    cpu_before = peers.cpu_seconds(sides[0].cpu_pids())
    share = messages // len(nodes)
    start = time.perf_counter()
    with ThreadPoolExecutor(len(nodes)) as pool:
        runs = [
            pool.submit(
                subprocess.run,
                [
                    "smtp-source",
                    "-s",
                    str(20 // len(nodes)),
                    "-m",
                    str(share),
                    "-l",
                    "4096",
                    "-f",
                    "sender@example.org",
                    "-t",
                    harness.INGEST_USER,
                    "-M",
                    "client.example.org",
                    f"127.0.0.1:{s.smtp_port}",
                ],
                check=True,
                timeout=harness.TIMEOUT,
            )
            for s in sides
        ]
        for run in runs:
            run.result()
    harness.wait_count(target, before + share * len(nodes))
    elapsed = time.perf_counter() - start
    cpu = peers.cpu_seconds(sides[0].cpu_pids()) - cpu_before
    return share * len(nodes) / elapsed, 1000 * cpu / (share * len(nodes))


async def mixed(nodes: list[peers.Ours], total: int, seconds: float) -> float:
    results = await asyncio.gather(
        *(
            harness.mixed(side(n, nodes), 20 // len(nodes), seconds, total, seed=i)
            for i, n in enumerate(nodes)
        )
    )
    return sum(ops for ops, _ in results)


def run(label: str, root: Path, dsn: str, count: int, messages: int, seconds: float) -> dict[str, object]:
    first = peers.Ours(root / label, dsn, extra={"smtp": {"processes": "1"}})
    nodes: list[peers.Ours] = [first]
    try:
        first.start()
        first._cli(
            "account",
            "add",
            harness.INGEST_USER,
            "--name",
            "Ingest",
            "--password-stdin",  # noqa: SLF001
            "--no-change-required",
            stdin=peers.PASSWORD.encode() + b"\n",
        )
        for index in range(1, count):
            node = Node(root / label, first, index)
            node.start()
            nodes.append(node)
        rate, cpu_ms = ingest(nodes, messages)
        corpus_messages = corpus.build(2000, seed=7)
        asyncio.run(harness.append_all(side(first, nodes), corpus_messages, "INBOX"))
        ops = asyncio.run(mixed(nodes, len(corpus_messages), seconds))
        return {
            "config": label,
            "smtp_msg_s": round(rate, 1),
            "smtp_cpu_ms_msg": round(cpu_ms, 2),
            "mixed_ops_s": round(ops, 1),
        }
    finally:
        for node in reversed(nodes):
            node.stop()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--postgres", default=PG)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="mailbench-cluster-") as tmp:
        for label, dsn, count in (
            ("sqlite-1", "", 1),
            ("pg-1", args.postgres, 1),
            ("pg-2", args.postgres, 2),
        ):
            rows.append(run(label, Path(tmp), dsn, count, args.messages, args.seconds))
            print(rows[-1], flush=True)
    harness.RESULTS.mkdir(exist_ok=True)
    (harness.RESULTS / "cluster.json").write_text(json.dumps(rows, indent=2) + "\n")
    print("| configuration | SMTP msg/s (conn/msg, 4 KB) | CPU ms/msg | mixed IMAP ops/s |")
    print("| --- | --- | --- | --- |")
    for row in rows:
        print(f"| {row['config']} | {row['smtp_msg_s']} | {row['smtp_cpu_ms_msg']} | {row['mixed_ops_s']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

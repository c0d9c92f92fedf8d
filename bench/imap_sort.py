"""SORT and THREAD (RFC 5256) inside our server, without sockets: what one SORT
costs cold (fields read from the store's cached envelopes) and warm (the
service's sort cache), over the deterministic corpus of ``bench/corpus.py``.

    python bench/imap_sort.py [--messages 10000] [--data DIR]

``--data`` keeps the filled store between runs. Prints one JSON line of seconds
(medians of ``--reps``). Side by side with Dovecot over sockets: ``bench/run
--only fetch`` (scenario 3).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from array import array
from pathlib import Path

from bench import corpus
from mailserver.auth import hash_password
from mailserver.imap.commands import SortCriterion
from mailserver.imap.selected import FolderCache, Mailbox, Target
from mailserver.imap.sort import load_fields, sort_messages
from mailserver.imap.thread import references, references_of
from storage import open_store
from storage.api import Uid

USER = "bench@dongnai.gov.vn"
SORTS = {"arrival": ["ARRIVAL"], "subject": ["SUBJECT"], "displayfrom_date": ["DISPLAYFROM", "DATE"]}


async def run(count: int, data: Path, reps: int) -> dict[str, float]:
    store = open_store(f"sqlite+aiosqlite:///{data / 'index.db'}", data / "maildir")
    await store.start()
    try:
        account = await store.get_account(USER)
        if account is None:
            password = hash_password("x" * 12)
            account = await store.create_account(USER, "B", password, must_change_password=False)
            for message in corpus.build(count):
                await store.deliver([account.id], message.data)
        folder = await store.get_folder(account.id, "INBOX")
        index = await store.folder_index(account.id, folder.id)
        uids = list(index.uids)
        mb = Mailbox(folder, True, array("I", uids), Target(account.id, "INBOX", "INBOX", "lr"), 0)
        times: dict[str, list[float]] = {}

        def note(key: str, start: float) -> None:
            times.setdefault(key, []).append(time.perf_counter() - start)

        for _ in range(reps):
            for name, keys in SORTS.items():
                folders = FolderCache()  # a new service: nothing cached
                for state in ("cold", "warm"):  # the same SORT twice, as a client re-sorting
                    start = time.perf_counter()
                    fields = await load_fields(store, mb, uids, folders)
                    sort_messages(fields, [SortCriterion(k) for k in keys])
                    note(f"sort_{name}_{state}_s", start)
            start = time.perf_counter()
            heads = await store.read_headers(account.id, folder.id, [Uid(u) for u in uids])
            refs = {uid: references_of(head) for uid, head in heads}
            references(fields, refs)
            note("thread_references_headers_read_s", start)
            start = time.perf_counter()
            references(fields, refs)
            note("thread_references_warm_s", start)
        out = {key: round(statistics.median(values), 4) for key, values in times.items()}
        out["messages"] = len(uids)
        return out
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--data", type=Path, default=None)
    args = parser.parse_args()
    if args.data is not None:
        args.data.mkdir(parents=True, exist_ok=True)
        print(json.dumps(asyncio.run(run(args.messages, args.data, args.reps))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(asyncio.run(run(args.messages, Path(tmp), args.reps))))


if __name__ == "__main__":
    main()

"""Full-text index contract (storage.sql.fulltext): SQLite FTS5 and PostgreSQL tsvector/GIN."""

from __future__ import annotations

from storage.api import INBOX, Account, FlagMode, IndexJob, Uid
from storage.fulltext import build_doc, query_words
from storage.sql.store import SqlMailStore

from .conftest import StoreFactory


def _message(subject: str, body: str) -> bytes:
    return (
        f"From: Nguyễn Văn An <annv@dongnai.gov.vn>\r\nTo: alice@example.org\r\n"
        f"Subject: {subject}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    ).encode()


async def _index(store: SqlMailStore, bodies: dict[int, str]) -> list[IndexJob]:
    """Index every queued job with the given body text (the indexer's role, in miniature)."""
    jobs = await store.index_jobs(100)
    docs = [
        build_doc(
            job.message_id,
            subject=f"Công văn {job.message_id}",
            from_="Nguyễn Văn An annv@dongnai.gov.vn",
            to="alice@example.org",
            cc="Trần Thị Bình <binhtt@dongnai.gov.vn>",
            bcc="",
            bodies=[bodies.get(job.message_id, "")],
        )
        for job in jobs
    ]
    await store.save_index(docs)
    return jobs


async def test_queue_index_search_expunge(store: SqlMailStore, alice: Account) -> None:
    inbox = (await store.get_folder(alice.id, INBOX)).id
    first = await store.append(alice.id, inbox, _message("a", "x"))
    second = await store.append(alice.id, inbox, _message("b", "y"))
    status = await store.index_status()
    assert status.pending == 2 and status.indexed == 0
    # Not indexed yet: the caller is told to scan both.
    hits = await store.text_search(alice.id, inbox, "text", "dong nai")
    assert hits.uids == frozenset() and hits.unindexed == {first.uid, second.uid}

    jobs = await store.index_jobs(100)
    assert len(jobs) == 2 and all(job.size > 0 and job.path.startswith("/") for job in jobs)
    ids = {
        jobs[0].message_id: "Quyết định số 123/QĐ-UBND của UBND tỉnh Đồng Nai",
        jobs[1].message_id: "Hà Nội",
    }
    await _index(store, ids)
    status = await store.index_status()
    assert status.pending == 0 and status.indexed == 2 and status.index_bytes > 0
    assert status.message_bytes > 0

    async def uids(field: str, text: str, exact: bool = False) -> set[int]:
        found = await store.text_search(alice.id, inbox, field, text, exact=exact)
        assert found.unindexed == frozenset()
        return set(found.uids)

    assert await uids("text", "dong nai") == {first.uid}
    assert await uids("body", "quyet dinh") == {first.uid}
    assert await uids("body", "Quyết định") == {first.uid}
    assert await uids("text", "123/qd-ubnd") == {first.uid}
    assert await uids("text", "123/QĐ-UBND") == {first.uid}
    assert await uids("text", "qd-ub") == {first.uid}  # the last word is a prefix
    assert await uids("text", "ha noi") == {second.uid}
    assert await uids("text", "noi ha") == set()  # a phrase, in order
    # Header words are TEXT but not BODY.
    assert await uids("text", "nguyen van an") == {first.uid, second.uid}
    assert await uids("body", "nguyen van an") == set()
    # Exact: a query with diacritics matches only those.
    assert await uids("text", "Đồng Nai", exact=True) == {first.uid}
    assert await uids("text", "Dòng Nai", exact=True) == set()
    assert await uids("text", "Dòng Nai") == {first.uid}
    # Header substring keys, folded.
    assert await uids("subject", "cong van") == {first.uid, second.uid}
    assert await uids("from", "van an") == {first.uid, second.uid}
    assert await uids("cc", "TRAN THI") == {first.uid, second.uid}
    assert await uids("to", "binh") == set()
    assert await uids("bcc", "x") == set()
    assert await uids("subject", "100%_") == set()  # LIKE wildcards are literal

    await store.store_flags(alice.id, inbox, [first.uid], {"\\Deleted"}, FlagMode.ADD)
    await store.expunge(alice.id, inbox)
    assert await uids("text", "dong nai") == set()
    assert (await store.index_status()).indexed == 1


async def test_work_list_survives_restart(make_store: StoreFactory) -> None:
    store = await make_store()
    alice = await store.create_account("alice@example.org", "Alice", "h")
    inbox = (await store.get_folder(alice.id, INBOX)).id
    await store.append(alice.id, inbox, _message("a", "x"))
    await store.close()
    reopened = await make_store()
    assert (await reopened.index_status()).pending == 1
    assert len(await reopened.index_jobs(10)) == 1


async def test_reindex_and_copy_queue(store: SqlMailStore, alice: Account, bob: Account) -> None:
    inbox = (await store.get_folder(alice.id, INBOX)).id
    await store.append(alice.id, inbox, _message("a", "x"))
    await _index(store, {})
    assert (await store.index_status()).pending == 0
    sent = (await store.get_folder(alice.id, "Sent")).id
    await store.copy(alice.id, inbox, [Uid((await store.folder_index(alice.id, inbox)).uids[0])], sent)
    assert (await store.index_status()).pending == 1  # the copy is a new row: queued
    await _index(store, {})
    assert await store.queue_reindex(bob.id) == 0
    assert await store.queue_reindex(alice.id) == 2
    assert await store.queue_reindex() == 2
    assert (await store.index_status()).pending == 2
    # Re-indexing replaces entries, never duplicates them.
    await _index(store, {})
    assert (await store.index_status()).indexed == 2
    # An entry for a message expunged before its job was done is skipped.
    await store.save_index([build_doc(999999, subject="", from_="", to="", cc="", bcc="", bodies=[])])
    assert (await store.index_status()).indexed == 2


def _phrase_in(words: list[str], query: list[str]) -> bool:
    """The reference: ``query`` in order in ``words``, its last word a prefix (as the index answers)."""
    n = len(query)
    return any(
        words[i : i + n - 1] == query[:-1] and words[i + n - 1].startswith(query[-1])
        for i in range(len(words) - n + 1)
    )


async def test_exact_and_folded_search_agree_with_a_reference(store: SqlMailStore, alice: Account) -> None:
    """Rows whose exact words are their folded words (no diacritics) keep one copy on SQLite
    (``fulltext._sqlite_values``); what a search finds must not change: every engine's
    answer is the reference's, for exact queries (with marks on a word, and with marks
    on no word at all) and folded ones, over headers and bodies with and without diacritics."""
    inbox = (await store.get_folder(alice.id, INBOX)).id
    texts = [  # (header text, body text)
        ("Meeting notes annv@dongnai.gov.vn", "quyet dinh so 5 about the budget"),
        ("Meeting notes", "Quyết định số 5 về ngân sách"),
        ("Công văn số 12", "quyet dinh so 12 in plain ASCII"),
        ("Công văn số 13", "Quyết định số 13 and quyet dinh so 13"),
        ("Report", "Привет мир, report 2026"),
        ("DONG NAI", "ĐỒNG NAI dong nai"),
        ("", ""),
    ]
    uids = [(await store.append(alice.id, inbox, _message("x", "y"))).uid for _ in texts]
    jobs = await store.index_jobs(100)  # oldest first: in the order appended
    assert len(jobs) == len(texts)
    uid_of = {job.message_id: uid for job, uid in zip(jobs, uids, strict=True)}
    docs = [
        build_doc(job.message_id, subject=header, from_="", to="", cc="", bcc="", bodies=[body])
        for job, (header, body) in zip(jobs, texts, strict=True)
    ]
    await store.save_index(docs)
    queries = [
        "Quyết định", "quyết", "định số 5", "Đồng", "ĐỒNG NAI", "Công văn", "Привет",
        "quyet dinh \u0301", "meeting \u0300", "report \u0301", "dong nai \u0301", "ngân",
        "quyet dinh", "dong nai", "cong van so", "report", "budget", "priv",
    ]
    for query in queries:
        for exact in (True, False):
            words = query_words(query, exact_form=exact)
            if not words:
                continue
            for field in ("text", "body"):
                want = set()
                for doc in docs:
                    columns = [doc.body_exact if exact else doc.body]
                    if field == "text":
                        columns.append(doc.header_exact if exact else doc.header)
                    if any(_phrase_in(column.split(), words) for column in columns):
                        want.add(uid_of[doc.message_id])
                found = await store.text_search(alice.id, inbox, field, query, exact=exact)
                assert set(found.uids) == want, (query, exact, field)

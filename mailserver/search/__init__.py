"""Full-text search: the message documents, the background indexer and its settings.

The index lives in the store (``storage.sql.fulltext``); folding in
``storage.textfold``; IMAP SEARCH asks it through ``MailStore.text_search``
(``mailserver.imap.search``).
"""

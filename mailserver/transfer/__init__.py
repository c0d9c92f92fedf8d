"""Moving mail in and out of the store: migration from another IMAP server
(``mailserver migrate imap``), export to mbox/Maildir and import of mbox, Maildir
and ``.eml`` files (``mailserver mailbox export|import``).

Theory of operation
-------------------
Every path ends in ``destination.Destination``, which writes through the public
``MailStore`` interface only (``append`` with the source's flags and
INTERNALDATE, bytes untouched). Idempotence comes from a fingerprint of what is
already in the destination folder: (INTERNALDATE, RFC822.SIZE, Message-ID) as a
multiset, so a second run copies only what is new, and a run killed at any point
resumes without duplicates (``append`` is durable and atomic: a message is either
in the folder with its fingerprint, or not at all). The IMAP migration also keeps
a ledger of source (UIDVALIDITY, UID) pairs it copied, so a message the user
deleted here after the move is not brought back by a later run.
"""

"""User errors of IMAP commands and how store errors are answered.

RFC 9051 section 7.1 (OK/NO/BAD) and RFC 5530 response codes. Syntax errors are
the parser's ``BadCommand``; a user error is a ``UserError`` raised anywhere in a
command and answered ``NO [CODE] text`` (or BAD); anything else is a server
error, answered ``NO [SERVERBUG]`` by the driver (mox ``imapserver/error.go``).
"""

from __future__ import annotations

from mailserver.imap.responses import Tagged
from storage.api import CannotDeleteFolder, FolderExists, InvalidFolderName, NoSuchFolder, StoreError


class UserError(Exception):
    """A user mistake answered with ``NO [code] text`` (or BAD for ``status="BAD"``)."""

    def __init__(self, text: str, code: str | None = None, status: str = "NO") -> None:
        super().__init__(text)
        self.text, self.code, self.status = text, code, status

    def to_response(self, tag: str) -> Tagged:
        return Tagged(tag, self.status, self.text, self.code)


def store_error(exc: StoreError) -> UserError:
    """The answer to a refusal by the store."""
    if isinstance(exc, NoSuchFolder):
        return UserError("No such mailbox", "NONEXISTENT")
    if isinstance(exc, FolderExists):
        return UserError("Mailbox already exists", "ALREADYEXISTS")
    if isinstance(exc, InvalidFolderName):
        return UserError("Invalid mailbox name", "CANNOT")
    if isinstance(exc, CannotDeleteFolder):
        return UserError(str(exc) or "Cannot delete that mailbox", "CANNOT")
    if "quota" in type(exc).__name__.lower():
        return UserError("Over quota", "OVERQUOTA")
    return UserError("Operation refused", "CANNOT")

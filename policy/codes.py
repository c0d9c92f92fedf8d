"""Named SMTP replies: basic code (RFC 5321 section 4.2) plus enhanced status
code (RFC 3463, registered in the IANA "SMTP Enhanced Status Codes" registry).

Every reply the server sends on purpose is named here, so the text and codes
are reviewed in one place (as mox ``smtp/codes.go`` does). Reply texts are
generic on purpose: the detail of *why* goes into logs, not to the client.

A reply is a value; only the SMTP handler turns it into aiosmtpd's status
string. Constants carry their basic code in the name (``S550_NO_SUCH_USER``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Final

_ENHANCED: Final = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")


@dataclass(frozen=True, slots=True)
class Reply:
    """One SMTP reply line: ``code enhanced text``."""

    code: int
    """Three-digit basic code (RFC 5321 section 4.2.1); 4xx temporary, 5xx permanent."""
    enhanced: str
    """``class.subject.detail`` (RFC 3463 section 2); its class matches ``code``'s first digit."""
    text: str
    """Human-readable text; no CR or LF."""

    def __post_init__(self) -> None:
        if not 200 <= self.code <= 599:
            raise ValueError(f"bad SMTP reply code {self.code}")
        if not _ENHANCED.fullmatch(self.enhanced) or self.enhanced[0] != str(self.code)[0]:
            raise ValueError(f"bad enhanced status code {self.enhanced!r} for {self.code}")
        if "\r" in self.text or "\n" in self.text:
            raise ValueError("reply text must be one line")

    @property
    def positive(self) -> bool:
        return self.code < 400

    @property
    def temporary(self) -> bool:
        return 400 <= self.code < 500

    def with_text(self, text: str) -> Reply:
        """The same codes with another text (e.g. naming a queue id)."""
        return replace(self, text=text)

    def __str__(self) -> str:
        return f"{self.code} {self.enhanced} {self.text}"


# -- 2xx: success (RFC 3463 class 2) -----------------------------------------
S220_READY_TLS: Final = Reply(220, "2.0.0", "Ready to start TLS")
S221_BYE: Final = Reply(221, "2.0.0", "Bye")
S250_OK: Final = Reply(250, "2.0.0", "OK")
# X.1.0 "other address status" is what RFC 3463 section 3.2 offers for a good
# originator; X.1.5 "destination address valid".
S250_SENDER_OK: Final = Reply(250, "2.1.0", "Sender OK")
S250_RECIPIENT_OK: Final = Reply(250, "2.1.5", "Recipient OK")
S250_DELIVERED: Final = Reply(250, "2.0.0", "Message accepted for delivery")
# RFC 5321 section 3.5.3: 252 when the server will not verify; X.5.0 since the
# command was understood. Existing and unknown users get the same answer.
S252_CANNOT_VRFY: Final = Reply(
    252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery"
)
S252_CANNOT_EXPN: Final = Reply(
    252, "2.5.0", "Cannot EXPN list, but will accept message and attempt delivery"
)

# -- 4xx: temporary (RFC 3463 class 4) ---------------------------------------
# X.3.2 "System not accepting network messages" (RFC 3463 section 3.4).
S421_SHUTTING_DOWN: Final = Reply(421, "4.3.2", "Service shutting down, try again later")
# X.7.0 "Other or undefined security status", as Postfix answers both: over
# smtp.max_connections / max_connections_per_ip at connect, and after
# smtp.hard_error_limit refused recipients (harvesting); the session is closed.
S421_TOO_MANY_CONNECTIONS: Final = Reply(421, "4.7.0", "Too many connections, try again later")
S421_TOO_MANY_ERRORS: Final = Reply(421, "4.7.0", "Too many errors, closing connection")
# X.3.0 "Other or undefined mail system status": a server-side fault.
S451_LOCAL_ERROR: Final = Reply(451, "4.3.0", "Temporary local problem, please try again later")
# A trusted relay client asking for a foreign domain: there is no outbound
# queue yet, so defer rather than bounce (X.3.2, system not accepting).
S451_NO_OUTBOUND: Final = Reply(
    451, "4.3.2", "Relaying to other domains is not available on this server yet"
)
# RFC 5321 section 4.5.3.1.8 and RFC 3463 X.5.3 "Too many recipients".
S452_TOO_MANY_RECIPIENTS: Final = Reply(452, "4.5.3", "Too many recipients")
# X.2.2 "Mailbox full" (RFC 3463 section 3.3), temporary as quota may free up.
S452_MAILBOX_FULL: Final = Reply(452, "4.2.2", "Mailbox full")
S454_TLS_UNAVAILABLE: Final = Reply(454, "4.7.0", "TLS not available")

# -- 5xx: permanent (RFC 3463 class 5) ---------------------------------------
# X.5.2 "Syntax error" (RFC 3463 section 3.6).
S500_UNRECOGNIZED: Final = Reply(500, "5.5.2", "Command not recognized")
S500_LINE_TOO_LONG: Final = Reply(500, "5.5.2", "Line too long (RFC 5321 section 4.5.3.1.6)")
# X.5.4 "Invalid command arguments".
S501_SYNTAX: Final = Reply(501, "5.5.4", "Syntax error in parameters or arguments")
S502_NOT_IMPLEMENTED: Final = Reply(502, "5.5.1", "Command not implemented")
# X.5.1 "Invalid command", used for bad sequences too (RFC 3463 section 3.6).
S503_HELO_FIRST: Final = Reply(503, "5.5.1", "Send EHLO or HELO first")
S503_NESTED_MAIL: Final = Reply(503, "5.5.1", "Nested MAIL command")
S503_NEED_MAIL: Final = Reply(503, "5.5.1", "Need MAIL command first")
S503_NEED_RCPT: Final = Reply(503, "5.5.1", "Need RCPT command first")
S503_ALREADY_TLS: Final = Reply(503, "5.5.1", "TLS already active")
S503_NO_AUTH: Final = Reply(503, "5.5.1", "AUTH is not offered on this port; use submission")
# X.1.1 "Bad destination mailbox address" (RFC 3463 section 3.2).
S550_NO_SUCH_USER: Final = Reply(550, "5.1.1", "No such user here")
# RFC 5429 section 2.1.1: a Sieve reject/ereject of every recipient, refused in protocol.
S550_SIEVE_REJECTED: Final = Reply(550, "5.7.1", "Rejected by the recipient's mail filter")
# X.2.1 "Mailbox disabled, not accepting messages".
S550_MAILBOX_DISABLED: Final = Reply(550, "5.2.1", "Mailbox disabled, not accepting messages")
# Bare CR or LF in DATA (RFC 5321 section 2.3.8 allows CRLF only; accepting
# them enables SMTP smuggling). X.6.0 "Other or undefined media error".
S550_BARE_LINE_ENDING: Final = Reply(550, "5.6.0", "Bare CR or LF in message data is not allowed")
# A header section mail readers could read two ways (storage/headers.py: a line
# without colon, white space first or before a colon, two From fields): one
# reader could show a sender other than the one the checks saw. X.6.0 as above.
S550_AMBIGUOUS_HEADER: Final = Reply(
    550, "5.6.0", "Malformed header section: it could be read more than one way (RFC 5322 section 2.2)"
)
# NUL octets in the data: RFC 5321 section 2.3.8 / RFC 2045 section 2.8 (8bit and
# 7bit data never contain NUL); readers truncate or drop them, another
# two-readings trap. X.6.0 as above.
S550_NUL_IN_DATA: Final = Reply(550, "5.6.0", "NUL octets in message data are not allowed")
# X.3.4 "Message too big for system" (RFC 1870 section 6.1 uses 552).
S552_MESSAGE_TOO_BIG: Final = Reply(552, "5.3.4", "Message size exceeds fixed maximum message size")
# X.2.2 "Mailbox full", permanent form.
S552_MAILBOX_FULL: Final = Reply(552, "5.2.2", "Mailbox full")
# X.1.3 "Bad destination mailbox address syntax"; X.1.7 the sender's.
S553_BAD_RECIPIENT_SYNTAX: Final = Reply(553, "5.1.3", "Malformed recipient address")
S553_BAD_SENDER_SYNTAX: Final = Reply(553, "5.1.7", "Malformed sender address")
# A path that is not a path at all (RFC 5321 section 4.1.2: no control octets
# in a Mailbox, a closing ">" after "<"): a syntax error (501), X.1.7 for the
# sender, X.1.3 for a recipient. Control octets could forge header fields in
# Return-Path and log lines.
S501_BAD_SENDER_PATH: Final = Reply(501, "5.1.7", "Bad sender address syntax")
S501_BAD_RECIPIENT_PATH: Final = Reply(501, "5.1.3", "Bad recipient address syntax")
# X.7.1 "Delivery not authorized": only our own authenticated users send as a
# local domain, and they do so on the submission port (RFC 6409).
S553_SENDER_NOT_ALLOWED: Final = Reply(
    553, "5.7.1", "Sender address in a local domain needs authentication on the submission port"
)
# RFC 6531 section 3.5 and the X.6.7 registration: a non-ASCII address needs
# the SMTPUTF8 MAIL parameter.
S553_NEEDS_SMTPUTF8: Final = Reply(553, "5.6.7", "Non-ASCII address requires the SMTPUTF8 parameter")
S554_RELAY_DENIED: Final = Reply(554, "5.7.1", "Relay access denied")
# A distribution group (CODE@domain) written to by an unauthenticated client:
# groups reach many agencies at once, so only the province's users may use them.
S550_GROUP_AUTH_REQUIRED: Final = Reply(
    550,
    "5.7.1",
    "Nhom nhan chi nhan thu cua nguoi dung da dang nhap / distribution group: authenticated senders only",
)
# A group whose members resolve to no mailbox (agencies without one, removed accounts).
S550_GROUP_EMPTY: Final = Reply(
    550, "5.1.1", "Nhom nhan khong co hop thu nao / distribution group has no reachable member"
)
# RFC 3463 X.4.6 "Routing loop detected": a forwarded message came back to the
# address that forwarded it (its Delivered-To), or passed too many hops
# (RFC 5321 section 6.3: count Received fields).
S554_FORWARD_LOOP: Final = Reply(
    554, "5.4.6", "Thu chuyen tiep bi lap vong / mail forwarding loop detected"
)
S554_TOO_MANY_HOPS: Final = Reply(
    554, "5.4.6", "Thu qua qua nhieu may chu / too many hops (Received fields), routing loop"
)
# RFC 3463 X.5.4 for an unknown MAIL/RCPT parameter (RFC 5321 section 4.1.1.11: 555).
S555_UNKNOWN_PARAMETER: Final = Reply(555, "5.5.4", "MAIL FROM/RCPT TO parameters not recognized")

# -- submission (RFC 6409, AUTH RFC 4954) and the outbound queue ---------------
# RFC 4954 section 6 names these codes: 235 2.7.0, 530 5.7.0, 535 5.7.8,
# 538 5.7.11, 454 4.7.0.
S235_AUTH_OK: Final = Reply(235, "2.7.0", "Authentication successful")
S250_QUEUED: Final = Reply(250, "2.0.0", "Message queued for delivery")
S454_AUTH_TEMPFAIL: Final = Reply(454, "4.7.0", "Temporary authentication failure, try again later")
S501_AUTH_SYNTAX: Final = Reply(501, "5.5.2", "Cannot decode the authentication response")
S501_AUTH_ABORTED: Final = Reply(501, "5.7.0", "Authentication aborted")
S503_ALREADY_AUTHENTICATED: Final = Reply(503, "5.5.1", "Already authenticated")
S504_AUTH_MECHANISM: Final = Reply(504, "5.5.4", "Unrecognized authentication type")
S530_AUTH_REQUIRED: Final = Reply(530, "5.7.0", "Authentication required")
S535_AUTH_FAILED: Final = Reply(535, "5.7.8", "Authentication credentials invalid")
S538_ENCRYPTION_REQUIRED: Final = Reply(
    538, "5.7.11", "Encryption required for requested authentication mechanism; use STARTTLS"
)
# X.7.1 "Delivery not authorized": an authenticated user may only send as
# addresses the sender policy grants (RFC 6409 section 6.1).
S553_SENDER_NOT_OWNED: Final = Reply(
    553, "5.7.1", "Sender address is not one the authenticated user may send as"
)
S553_FROM_NOT_OWNED: Final = Reply(
    553, "5.7.1", "From/Sender header address is not one the authenticated user may send as"
)
# X.6.0 "Other or undefined media error": RFC 5322 section 3.6 requires From.
S550_NO_FROM: Final = Reply(550, "5.6.0", "Message has no From header field")
# X.7.1 with 450: a temporary refusal by local policy (sending rate limit).
S450_RATE_LIMITED: Final = Reply(450, "4.7.1", "Sending rate limit exceeded, try again later")

# -- sender authentication (policy/checks/authentication.py) -------------------
# X.7.1 "Delivery not authorized": mail claiming one of our domains in From that
# arrives on the MX without an aligned SPF or DKIM pass (only our servers send
# as our domains), and a foreign domain's DMARC p=reject (RFC 7489 section 6.6.4
# suggests 550 5.7.1).
S550_LOCAL_SENDER_UNAUTHENTICATED: Final = Reply(
    550, "5.7.1", "Message claims a local sender domain but is not authenticated"
)
S550_DMARC_REJECT: Final = Reply(550, "5.7.1", "Message rejected by the sender domain's DMARC policy")
# X.7.5 "Cryptographic failure" (RFC 3463 section 3.8: the key needed to validate
# was not available): a DNS failure during SPF/DKIM/DMARC where the outcome
# decides acceptance; temporary, so the sender retries.
S451_AUTH_TEMPFAIL: Final = Reply(
    451, "4.7.5", "Temporary failure checking sender authentication, please try again later"
)

# -- policy pipeline (policy/pipeline.py, policy/checks/) ----------------------
# Texts are ASCII (RFC 5321 section 4.2: reply text is ASCII unless SMTPUTF8)
# and generic; the detail of a refusal (where a marking was found, which
# signature matched) is the verdict's ``reason``, logged only.
#
# X.7.1 "Delivery not authorized, message refused" (RFC 3463 section 3.8):
# Decision 70/2009/QD-UBND, Dieu 6 khoan 2 and 8, excludes classified documents
# ("van ban mat") from e-mail.
S550_CLASSIFIED: Final = Reply(
    550,
    "5.7.1",
    "Van ban mat khong duoc gui qua thu dien tu (QD 70/2009/QD-UBND, Dieu 6); "
    "classified documents may not be sent by e-mail",
)
# X.7.1 again: refused for its content; Dieu 9 khoan 7 and Dieu 11 khoan 3 ban
# spreading spam.
S550_SPAM: Final = Reply(550, "5.7.1", "Message refused as spam (thu rac)")
# X.7.1: a sender on the local block list.
S550_SENDER_BLOCKED: Final = Reply(550, "5.7.1", "Sender refused by local policy")
# X.7.0 "Other or undefined security status" for content judged dangerous
# (viruses, executables, macros; Dieu 9 khoan 7, Dieu 11 khoan 3).
S554_MALWARE: Final = Reply(
    554, "5.7.0", "Message refused: dangerous content or forbidden attachment (virus, ma doc)"
)
# X.6.0 "Other or undefined media error" (RFC 3463 section 3.7): an archive or
# nesting beyond the unpacking limits (zip bomb) is refused, never unpacked.
S554_CONTENT_LIMITS: Final = Reply(
    554, "5.6.0", "Message refused: attachments exceed the inspection limits (archive or nesting)"
)
# X.7.1 for a generic refusal after an action override (quarantine -> reject).
S550_POLICY: Final = Reply(550, "5.7.1", "Message refused by local policy")
# A check that crashed or timed out: fail safe with a temporary error (X.3.0),
# never a silent accept; the client retries and nothing is lost.
S451_POLICY_UNAVAILABLE: Final = Reply(
    451, "4.3.0", "Temporary local problem checking the message, please try again later"
)

"""Relay and sender rules: the documented place for them in the pipeline.

Relay control (RFC 5321 section 7.1), sender/login alignment on submission
(RFC 6409 section 6.1) and rate limits are implemented today in
``mailserver/smtp`` (``delivery.Inbound.check_sender`` / ``check_recipient``
and the submission code). They are not duplicated here. When they move into
the pipeline, this check's ``mail_from`` and ``rcpt`` stages are where they go,
as thin adapters answering ``policy.codes`` replies (``S554_RELAY_DENIED``,
``S553_SENDER_NOT_ALLOWED``...); until then the check accepts everything and
listing it in ``policy.checks`` changes nothing.
"""

from __future__ import annotations

from typing import Any, ClassVar

from policy.checks import Check
from policy.settings import SenderOptions


class SenderCheck(Check[SenderOptions]):
    name: ClassVar[str] = "sender"
    options_type: ClassVar[type[Any]] = SenderOptions

"""Policy checks: one module per check, each implementing only the stages it
needs (``connect``, ``mail_from``, ``rcpt``, ``data``; RFC 5321 section 3.3).

A stage returns a ``Verdict`` or None (nothing to say: accept). Checks are
built once per pipeline from ``PolicySettings`` and shared by all sessions,
so they keep no per-message state. ``data`` receives a ``MessageView``: the
raw message, its parsed header and the ``Analysis`` made in a worker.
"""

from __future__ import annotations

import email.message
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from policy.context import PolicyContext
from policy.dns import Resolver
from policy.extract.walk import Analysis
from policy.settings import Action, BasicOptions, CheckOptions, EncodingAction, PolicySettings
from policy.verdict import Verdict


@dataclass(frozen=True, slots=True)
class MessageView:
    raw: bytes
    header: email.message.Message
    """The header section only (``email.parser.BytesHeaderParser``, compat32)."""
    analysis: Analysis


@dataclass(frozen=True, slots=True)
class Resources:
    """What a check may need from outside, given once at start."""

    settings: PolicySettings
    data_dir: Path
    resolver: Resolver | None = None


OptionsT = TypeVar("OptionsT", bound=CheckOptions)


class Check(Generic[OptionsT]):
    """A check with its typed options (``policy.settings``: one ``*Options``
    dataclass per check, its ``[policy.<name>]`` table)."""

    name: ClassVar[str] = "check"
    needs_analysis: ClassVar[bool] = False
    """True when ``data`` reads ``MessageView.analysis`` (extraction runs once for all)."""

    options_type: ClassVar[type[Any]] = BasicOptions
    """The options dataclass built with its defaults when none are given."""

    def __init__(self, resources: Resources, options: OptionsT | None = None) -> None:
        self.resources = resources
        self.options: OptionsT = options if options is not None else self.options_type()
        self.action: Action | EncodingAction = self.options.action
        self.directions: frozenset[str] = frozenset(self.options.directions)

    async def connect(self, ctx: PolicyContext) -> Verdict | None:
        return None

    async def mail_from(self, ctx: PolicyContext) -> Verdict | None:
        return None

    async def rcpt(self, ctx: PolicyContext, rcpt: str) -> Verdict | None:
        return None

    async def data(self, ctx: PolicyContext, message: MessageView) -> Verdict | None:
        return None

    async def close(self) -> None:
        return None


def address_listed(address: str, entries: list[str]) -> bool:
    """``address`` matches an entry: the exact address or ``@domain``."""
    address = address.lower()
    domain = "@" + address.rpartition("@")[2]
    return any(entry.lower() in (address, domain) for entry in entries)

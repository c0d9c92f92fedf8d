"""What a lifecycle command changed, said to the operator (Vietnamese first,
English beside it) and kept machine-readable for ``--json``.

Decision 70/2009 Điều 5 khoản 3-4 and Điều 10 khoản 4: when staff move, leave
or hand over, access must end where it should; the operator can only check
that if every command says which rights it removed, which certificates it
revoked and which passwords it rotated, and what is left to do by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

WARNING: Final = "warning"
FOLLOW_UP: Final = "follow-up"


@dataclass(frozen=True, slots=True)
class Change:
    kind: str
    """What happened: ``mailbox.created``, ``right.granted``, ``right.removed``,
    ``head.set``, ``head.removed``, ``password.rotated``, ``certificate.revoked``,
    ``crl.published``, ``crl.pending``, ``login.disabled``, ``mail.archived``, ``person.moved``,
    ``access.ended`` (nothing remains on a mailbox);
    ``warning`` and ``follow-up`` are for the operator to act on."""
    subject: str
    """The address or agency code it is about."""
    vi: str
    en: str
    secret: str = ""
    """A password shown once (``password.rotated``); never written to the audit log."""

    def text(self) -> str:
        line = f"{self.vi} / {self.en}"
        return f"{line}: {self.secret}" if self.secret else line

    def as_dict(self) -> dict[str, str]:
        data = {"kind": self.kind, "subject": self.subject, "vi": self.vi, "en": self.en}
        if self.secret:
            data["password"] = self.secret
        return data


def render(changes: tuple[Change, ...] | list[Change]) -> tuple[list[str], list[str]]:
    """(stdout lines, stderr lines): changes as "- …", follow-ups as "Việc cần làm / To do:",
    warnings to stderr, loud."""
    out: list[str] = []
    err: list[str] = []
    for change in changes:
        if change.kind == WARNING:
            err.append(f"CẢNH BÁO / WARNING: {change.text()}")
        elif change.kind == FOLLOW_UP:
            out.append(f"Việc cần làm / To do: {change.text()}")
        else:
            out.append(f"- {change.text()}")
    return out, err


__all__ = ["FOLLOW_UP", "WARNING", "Change", "render"]

"""Settings of the Sieve filters (the ``[sieve]`` config section).

Kept free of imports from ``mailserver.config`` (which composes it). The
interpreter (``mailserver.sieve``) and the script management of ManageSieve,
the CLI and the portal (``mailserver.ops.sieve``) both read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["SieveSettings"]


@dataclass(frozen=True, slots=True)
class SieveSettings:
    enabled: bool = field(
        default=True,
        metadata={"help": "Run Sieve filters (RFC 5228) at final delivery to every local mailbox."},
    )
    before: str = field(
        default="",
        metadata={
            "help": "Operator script file run before every user's own script (empty: none).\n"
            "Its actions add to the user's; a stop in it ends the user's script too."
        },
    )
    after: str = field(
        default="",
        metadata={"help": "Operator script file run after every user's own script (empty: none)."},
    )
    global_dir: str = field(
        default="",
        metadata={
            "help": 'Directory of scripts that `include :global "name"` reads (RFC 6609) as <name>.sieve;\n'
            "empty: <data_dir>/sieve-global."
        },
    )
    max_redirects: int = field(
        default=4,
        metadata={
            "help": "Most redirect actions one message may cause for one recipient (more: script error)."
        },
    )
    max_script_size: int = field(
        default=65536, metadata={"help": "Largest script a user may store, in octets of UTF-8."}
    )
    max_scripts: int = field(default=20, metadata={"help": "Most scripts one mailbox may keep."})
    vacation_default_days: int = field(
        default=7,
        metadata={"help": "Days between two vacation replies to one sender when a script gives no :days."},
    )
    vacation_min_days: int = field(
        default=1, metadata={"help": "Shortest :days a vacation script may ask for (RFC 5230 section 4.1)."}
    )
    vacation_max_days: int = field(
        default=90, metadata={"help": "Longest :days (or :seconds) a vacation script may ask for."}
    )

"""Settings of the Sieve filters (the ``[sieve]`` config section).

Kept free of imports from ``mailserver.config`` (which composes it). The
interpreter (``mailserver.sieve``) and the script management of ManageSieve,
the CLI and the portal (``mailserver.ops.sieve``) both read it.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.settings import setting

__all__ = ["SieveSettings"]


@dataclass(frozen=True, slots=True)
class SieveSettings:
    enabled: bool = setting("Run Sieve filters (RFC 5228) at final delivery to every local mailbox.", True)
    before: str = setting(
        "Operator script file run before every user's own script (empty: none).\n"
        "Its actions add to the user's; a stop in it ends the user's script too.",
        "",
    )
    after: str = setting("Operator script file run after every user's own script (empty: none).", "")
    global_dir: str = setting(
        'Directory of scripts that `include :global "name"` reads (RFC 6609) as <name>.sieve;\n'
            "empty: <data_dir>/sieve-global.",
            "",
    )
    max_redirects: int = setting(
        "Most redirect actions one message may cause for one recipient (more: script error).",
        4,
    )
    max_script_size: int = setting("Largest script a user may store, in octets of UTF-8.", 65536)
    max_scripts: int = setting("Most scripts one mailbox may keep.", 20)
    vacation_default_days: int = setting(
        "Days between two vacation replies to one sender when a script gives no :days.",
        7,
    )
    vacation_min_days: int = setting(
        "Shortest :days a vacation script may ask for (RFC 5230 section 4.1).",
        1,
    )
    vacation_max_days: int = setting("Longest :days (or :seconds) a vacation script may ask for.", 90)

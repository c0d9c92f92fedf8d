"""Which scripts run for a mailbox, compiled once and cached until changed.

Theory of operation: for each delivery to a local mailbox the engine asks
the script store (``storage.sieve``) for the mailbox's active script and
runs, in order, the operator's ``sieve.before`` file, that script and
``sieve.after`` (``interpreter.run_scripts``). A compiled script is cached
under (owner, name, updated) for a user script and (path, mtime, size) for a
file, so a changed script is compiled again and an unchanged one never is.
Scripts a script includes (RFC 6609) are loaded before running: ``:personal``
from the store, ``:global`` from ``sieve.global_dir``.

Errors: a script that does not compile or fails while running raises
``SieveFailure`` (with which script and why); the caller keeps the message
(RFC 5228 section 2.10.6) and tells the owner.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from mailserver.sieve.compiler import Script, compile_script
from mailserver.sieve.interpreter import Environment, Outcome, SieveRuntimeError, run_scripts
from mailserver.sieve.message import MessageView
from mailserver.sieve.parser import SieveSyntaxError
from mailserver.sieve.settings import SieveSettings
from storage.sieve import SieveScripts
from storage.sievestate import SieveState

__all__ = ["SieveEngine", "SieveFailure"]

log = logging.getLogger(__name__)

_CACHE_SIZE: Final = 2048


class SieveFailure(Exception):  # noqa: N818 - a failed run, named as the caller sees it
    """A script could not be compiled or run; the message is kept."""

    def __init__(self, script: str, reason: str) -> None:
        super().__init__(f"{script}: {reason}")
        self.script = script
        self.reason = reason


@dataclass(frozen=True, slots=True)
class _FileKey:
    path: str
    mtime_ns: int
    size: int


class SieveEngine:
    def __init__(
        self,
        settings: SieveSettings,
        scripts: SieveScripts | None,
        state: SieveState,
        *,
        global_dir: Path,
    ) -> None:
        self.settings = settings
        self._scripts = scripts
        self.state = state
        self._global_dir = global_dir
        self._cache: OrderedDict[object, Script] = OrderedDict()

    def _compiled(self, key: object, text: str, name: str) -> Script:
        found = self._cache.get(key)
        if found is not None:
            self._cache.move_to_end(key)
            return found
        try:
            script = compile_script(text, name)
        except SieveSyntaxError as exc:
            raise SieveFailure(name, str(exc)) from None
        self._cache[key] = script
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return script

    def _file_script(self, path: Path, label: str) -> Script | None:
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SieveFailure(label, f"cannot read {path}: {exc.strerror}") from None
        key = _FileKey(str(path), st.st_mtime_ns, st.st_size)
        if key in self._cache:
            return self._compiled(key, "", label)
        try:
            text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SieveFailure(label, f"cannot read {path}: {exc}") from None
        return self._compiled(key, text, label)

    async def scripts_for(self, owner: str) -> list[Script]:
        """before, the active script, after: those that exist."""
        out: list[Script] = []
        if self.settings.before:
            before = await asyncio.to_thread(self._file_script, Path(self.settings.before), "sieve.before")
            if before is not None:
                out.append(before)
        if self._scripts is not None:
            active = await self._scripts.active_script(owner)
            if active is not None:
                key = ("user", active.owner, active.name, active.updated)
                out.append(self._compiled(key, active.text, active.name))
        if self.settings.after:
            after = await asyncio.to_thread(self._file_script, Path(self.settings.after), "sieve.after")
            if after is not None:
                out.append(after)
        return out

    async def _includes(self, owner: str, scripts: list[Script]) -> dict[tuple[str, str], Script]:
        found: dict[tuple[str, str], Script] = {}
        pending = [ref for s in scripts for ref in s.includes]
        while pending:
            where, name = pending.pop()
            if (where, name) in found or len(found) > 32:
                continue
            script: Script | None = None
            if where == "global":
                script = await asyncio.to_thread(
                    self._file_script, self._global_dir / f"{name}.sieve", f":global {name}"
                )
            elif self._scripts is not None:
                stored = await self._scripts.get_script(owner, name)
                if stored is not None:
                    script = self._compiled(
                        ("user", stored.owner, stored.name, stored.updated), stored.text, stored.name
                    )
            if script is not None:
                found[(where, name)] = script
                pending.extend(script.includes)
        return found

    async def evaluate(
        self,
        owner: str,
        message: MessageView,
        *,
        sender: str,
        recipient: str,
        folder_names: Callable[[], Awaitable[list[str]]] | None = None,
        now: datetime | None = None,
    ) -> Outcome | None:
        """The outcome for ``owner``, or None when no script applies (plain
        delivery). Raises SieveFailure."""
        scripts = await self.scripts_for(owner)
        if not scripts:
            return None
        now = now or datetime.now(UTC)
        label = " + ".join(s.name for s in scripts)
        try:
            includes = await self._includes(owner, scripts) if any(s.includes for s in scripts) else {}
            every = [*scripts, *includes.values()]
            seen = (
                await self.state.duplicates(owner, now)
                if any(s.uses_duplicate for s in every)
                else frozenset()
            )
            folders: list[str] = []
            if folder_names is not None and any(s.uses_mailboxexists for s in every):
                folders = await folder_names()
            s = self.settings
            env = Environment(
                message,
                sender,
                recipient,
                owner,
                now=now,
                includes=includes,
                seen_duplicates=seen,
                folders=frozenset(folders),
                max_redirects=s.max_redirects,
                default_vacation_seconds=s.vacation_default_days * 86400,
                min_vacation_seconds=s.vacation_min_days * 86400,
                max_vacation_seconds=s.vacation_max_days * 86400,
            )
            outcome = run_scripts(scripts, env)
        except SieveRuntimeError as exc:
            raise SieveFailure(label, str(exc)) from None
        if outcome.duplicates:
            await self.state.track(
                owner, [(k, now + timedelta(seconds=sec)) for k, sec in outcome.duplicates]
            )
        return outcome

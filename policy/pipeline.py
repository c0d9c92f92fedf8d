"""The policy pipeline: configured checks, run in order at each SMTP stage.

Theory of operation
-------------------
``Pipeline.from_settings`` builds the checks named in ``policy.checks``.
The relay and sender rules (``policy.checks.sender``) are not a content
check an operator may leave out: every pipeline runs them first, named in
``policy.checks`` or not, so they are the one path deciding who may relay and
send as whom on every SMTP port.
The SMTP handler calls ``check_connect``, ``check_mail_from``,
``check_rcpt`` and ``check_data`` (RFC 5321 section 3.3 stages); each returns
an ``Outcome`` (``policy.verdict``). For every stage:

1. checks run in configured order, skipping those whose ``directions`` do
   not include the transaction's;
2. each runs under ``policy.check_timeout``; an exception or a time-out is a
   TEMPFAIL (``451 4.3.0``), logged with the session id -- a broken check
   never lets a message through, and the client keeps it and retries;
3. the configured ``action`` (reject | quarantine | ignore) rewrites a
   check's refusal; TEMPFAIL is never rewritten;
4. a REJECT ends the run (the first REJECT wins); the rest are combined
   (``verdict.combine``).

At DATA the message is first analysed once (``policy.extract.walk``). Mail
made only of text bodies (no attachment, no attached message) up to
``policy.inline_size`` octets -- most mail -- is walked right here in the
event loop: the walk is linear in the size and costs less than handing the
message to another process and its result back. Anything else goes to a
``ProcessPoolExecutor``: text extraction from docx/pdf/zip is CPU-bound
pure Python that holds the GIL, so threads would stall every other session on
the event loop for the duration; processes run it truly in parallel, and a
pathological document (or a parser bug that hangs) can be abandoned by
killing its worker without touching the server process. The pool starts with
the first message that needs it and stops after ``policy.worker_idle``
seconds without work, giving its memory back. ``policy.workers = 0`` uses a
thread instead (small installations, tests). Content beyond the unpacking
limits (zip bombs, nesting) is refused with ``554 5.6.0``.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import email.message
import email.parser
import email.policy
import logging
import os
import time
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

from policy import codes
from policy.checks import Check, MessageView, Resources
from policy.checks.classified import ClassifiedCheck
from policy.checks.encoding import EncodingCheck
from policy.checks.malware import MalwareCheck
from policy.checks.sender import SenderCheck
from policy.checks.spam import SpamCheck
from policy.context import PolicyContext
from policy.dns import Resolver
from policy.extract.walk import Analysis, Limits, analyse, analyse_message, parse_message, text_only
from policy.lifeline import watch_owner
from policy.settings import Action as CheckAction
from policy.settings import EncodingAction, PolicySettings
from policy.verdict import Action, Outcome, Verdict, combine, quarantine, reject, tempfail

log = logging.getLogger(__name__)
T = TypeVar("T")

REGISTRY: Final[dict[str, type[Check[Any]]]] = {
    cls.name: cls for cls in (ClassifiedCheck, MalwareCheck, EncodingCheck, SpamCheck, SenderCheck)
}


def limits_of(settings: PolicySettings) -> Limits:
    return Limits(
        max_depth=settings.max_depth,
        max_unpacked=settings.max_unpacked,
        max_ratio=settings.max_ratio,
        max_members=settings.max_members,
        pdf_budget=max(1.0, settings.check_timeout / 4),
    )


def _override(verdict: Verdict, action: CheckAction | EncodingAction) -> Verdict:
    """Apply a check's configured action to a refusal (maddy FailAction)."""
    if verdict.action not in (Action.REJECT, Action.QUARANTINE):
        return verdict
    if action == "ignore":
        return Verdict(
            Action.ACCEPT,
            codes.S250_OK,
            verdict.check,
            verdict.reason,
            f"{verdict.summary}/ignored",
            verdict.headers,
        )
    if action == "quarantine" and verdict.action is Action.REJECT:
        return quarantine(verdict.check, verdict.reason, summary=f"{verdict.summary}/quarantine")
    if action == "reject" and verdict.action is Action.QUARANTINE:
        return reject(verdict.check, codes.S550_POLICY, verdict.reason, verdict.summary)
    return verdict


class Pipeline:
    """One per server; shared by all sessions. ``await close()`` at shutdown."""

    def __init__(
        self,
        settings: PolicySettings,
        checks: Sequence[Check[Any]],
        *,
        local_domains: Sequence[str] = (),
    ) -> None:
        self.settings = settings
        self.checks = list(checks)
        if not any(isinstance(check, SenderCheck) for check in self.checks):
            self.checks.insert(0, SenderCheck(Resources(settings, Path("."))))
        self.local_domains = tuple(d.lower().rstrip(".") for d in local_domains)
        self.limits = limits_of(settings)
        self.stats: collections.Counter[str] = collections.Counter()
        """Counters for reports: ``action.reject``, ``check.classified.reject``, ``legacy.tcvn3``..."""
        self._pool: concurrent.futures.Executor | None = None
        self._in_worker = 0
        """Analyses running in the pool now (it is not idle while any is)."""
        self._last_used = 0.0
        self._idle_timer: asyncio.TimerHandle | None = None
        self._stopping: asyncio.Future[None] | None = None
        """An idle pool being stopped (``_stop_workers``), until it is."""

    @classmethod
    def from_settings(
        cls,
        settings: PolicySettings,
        *,
        resolver: Resolver | None = None,
        data_dir: str | Path = ".",
        local_domains: Sequence[str] = (),
    ) -> Pipeline:
        resources = Resources(settings, Path(data_dir), resolver)
        checks = []
        for name in ["sender", *(n for n in settings.checks if n != "sender")]:
            check_cls = REGISTRY[name]
            checks.append(check_cls(resources, settings.options(name)))
        return cls(settings, checks, local_domains=local_domains)

    # -- worker pool -------------------------------------------------------------
    def _executor(self) -> concurrent.futures.Executor:
        if self._pool is None:
            if self.settings.workers > 0:
                # forkserver: workers are forked from a clean single-threaded
                # server process (never from the event loop's threads) with the
                # extraction modules preloaded.
                import multiprocessing  # only with the first attachment (memory)

                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload(["policy.extract.walk"])
                # Each worker ends with this process (policy.lifeline): a killed
                # server leaves no forkserver or worker behind holding its pipes.
                self._pool = concurrent.futures.ProcessPoolExecutor(
                    max_workers=self.settings.workers, mp_context=context,
                    initializer=watch_owner, initargs=(os.getpid(),),
                )
            else:
                self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="policy")
        return self._pool

    def _discard_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        # A worker stuck on a pathological document is killed, not waited for.
        for process in list(getattr(pool, "_processes", {}).values() or []):
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)

    def _watch_idle(self) -> None:
        """Stop the pool once it has had no work for ``policy.worker_idle`` s."""
        self._idle_timer = None
        idle = self.settings.worker_idle
        if self._pool is None or idle <= 0:
            return
        left = idle - (time.monotonic() - self._last_used)
        if self._in_worker or left > 0:
            self._idle_timer = asyncio.get_running_loop().call_later(max(left, 1.0), self._watch_idle)
            return
        pool, self._pool = self._pool, None
        log.info("policy: extraction workers idle for %.0f s, stopping them", idle)
        self._stopping = asyncio.get_running_loop().run_in_executor(None, _stop_workers, pool)

    async def _in_pool(self, message: bytes) -> Analysis:
        loop = asyncio.get_running_loop()
        self._in_worker += 1
        try:
            stopping, self._stopping = self._stopping, None
            if stopping is not None:
                # A new pool must not race the old one's helpers shutting down.
                await asyncio.shield(stopping)
            async with asyncio.timeout(self.settings.check_timeout):
                return await loop.run_in_executor(self._executor(), analyse, message, self.limits)
        except (TimeoutError, concurrent.futures.BrokenExecutor):
            self._discard_pool()
            raise
        finally:
            self._in_worker -= 1
            self._last_used = time.monotonic()
            if self._idle_timer is None and self._pool is not None and self.settings.worker_idle > 0:
                self._idle_timer = loop.call_later(self.settings.worker_idle, self._watch_idle)

    async def _scan(self, message: bytes) -> tuple[Analysis, email.message.Message | None]:
        """The analysis, and the parsed message when it was made here."""
        if len(message) <= self.settings.inline_size:
            parsed = parse_message(message)
            if text_only(parsed):
                return analyse_message(parsed, self.limits), parsed
        return await self._in_pool(message), None

    async def analyse(self, message: bytes) -> Analysis:
        """What ``policy.extract.walk.analyse`` finds in ``message``: here for
        small text-only mail, else in a worker under ``policy.check_timeout``
        (TimeoutError; a crashed worker raises BrokenProcessPool)."""
        return (await self._scan(message))[0]

    async def close(self) -> None:
        for check in self.checks:
            await check.close()
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        stopping, self._stopping = self._stopping, None
        if stopping is not None:
            await stopping

    # -- stages --------------------------------------------------------------------
    async def _run(
        self, ctx: PolicyContext, stage: str, call: Callable[[Check[Any]], Awaitable[Verdict | None]]
    ) -> Outcome:
        verdicts: list[Verdict] = []
        for check in self.checks:
            if ctx.direction.value not in check.directions:
                continue
            if getattr(type(check), stage) is getattr(Check, stage):
                continue  # the check does not implement this stage
            try:
                verdict = await _bounded(call(check), self.settings.check_timeout)
            except TimeoutError:
                log.error("policy %s: check %s timed out at %s", ctx.session.session_id, check.name, stage)
                verdict = tempfail(check.name, f"timed out after {self.settings.check_timeout}s at {stage}")
            except Exception as exc:  # noqa: BLE001 - fail safe: any fault defers the message
                log.exception("policy %s: check %s failed at %s", ctx.session.session_id, check.name, stage)
                verdict = tempfail(check.name, f"internal error at {stage}: {type(exc).__name__}")
            if verdict is None:
                continue
            verdict = _override(verdict, check.action)
            verdicts.append(verdict)
            if verdict.action is Action.REJECT:
                break
        return self._finish(ctx, stage, verdicts)

    def _finish(self, ctx: PolicyContext, stage: str, verdicts: list[Verdict]) -> Outcome:
        outcome = combine(verdicts)
        for verdict in verdicts:
            if verdict.action is not Action.ACCEPT:
                self.stats[f"check.{verdict.check}.{verdict.action.value}"] += 1
        if stage == "data":
            self.stats[f"action.{outcome.action.value}"] += 1
        if outcome.action is not Action.ACCEPT or outcome.reasons:
            log.info(
                "policy %s: %s %s -> %s (%s)%s",
                ctx.session.session_id,
                stage,
                ctx.envelope.mail_from or "<>",
                outcome.action.value,
                "; ".join(f"{v.check}={v.summary}" for v in verdicts),
                "".join(f"\n  {reason}" for reason in outcome.reasons),
            )
        return outcome

    async def check_connect(self, ctx: PolicyContext) -> Outcome:
        return await self._run(ctx, "connect", lambda c: c.connect(ctx))

    async def check_mail_from(self, ctx: PolicyContext) -> Outcome:
        return await self._run(ctx, "mail_from", lambda c: c.mail_from(ctx))

    async def check_rcpt(self, ctx: PolicyContext, rcpt: str) -> Outcome:
        return await self._run(ctx, "rcpt", lambda c: c.rcpt(ctx, rcpt))

    async def check_data(self, ctx: PolicyContext, message: bytes) -> Outcome:
        """Judge the whole message (all recipients alike). ``message`` is the
        DATA content as received, before trace fields are added."""
        if not ctx.local_domains and self.local_domains:
            ctx.local_domains = self.local_domains
        active = [c for c in self.checks if ctx.direction.value in c.directions]
        analysis = Analysis()
        parsed: email.message.Message | None = None
        if any(c.needs_analysis for c in active):
            if len(message) > self.settings.max_scan_size:
                verdict = reject(
                    "content",
                    codes.S554_CONTENT_LIMITS,
                    f"message of {len(message)} octets above policy.max_scan_size",
                    "too-large",
                )
                return self._finish(ctx, "data", [verdict])
            try:
                analysis, parsed = await self._scan(message)
            except TimeoutError:
                log.error("policy %s: content extraction timed out", ctx.session.session_id)
                return self._finish(ctx, "data", [tempfail("content", "extraction timed out")])
            except Exception as exc:  # noqa: BLE001 - fail safe, as for a check
                log.exception("policy %s: content extraction failed", ctx.session.session_id)
                return self._finish(
                    ctx, "data", [tempfail("content", f"extraction failed: {type(exc).__name__}")]
                )
            if analysis.refused is not None:
                verdict = reject(
                    "content",
                    codes.S554_CONTENT_LIMITS,
                    f"Tệp đính kèm vượt giới hạn kiểm tra / not inspected: {analysis.refused}",
                    "refused",
                )
                return self._finish(ctx, "data", [verdict])
            for encoding, count in analysis.legacy_counts().items():
                self.stats[f"legacy.{encoding}"] += 1
                self.stats[f"legacy.{encoding}.parts"] += count
        header = parsed if parsed is not None else _header_section(message)
        view = MessageView(message, header, analysis)
        return await self._run(ctx, "data", lambda c: c.data(ctx, view))

    async def learn(self, message: bytes, is_spam: bool, *, undo: bool = False) -> None:
        """Train the Bayesian classifier (IMAP: a user moved mail into / out of Junk)."""
        for check in self.checks:
            if isinstance(check, SpamCheck) and check.bayes is not None:
                await asyncio.to_thread(check.bayes.learn, message, is_spam, undo=undo)


async def _bounded(awaitable: Awaitable[T], timeout: float) -> T:
    """``await awaitable`` under ``asyncio.timeout(timeout)``, the timeout armed
    only if a coroutine suspends. Most checks at MAIL and RCPT, and several at
    DATA, finish without waiting for anything, and arming and disarming a
    timeout costs ~4 us (eight per message). The same: the deadline counts
    from the call, and asyncio can interrupt a coroutine only where it
    suspends, so up to its first suspension no timeout could act anyway."""
    if not isinstance(awaitable, types.CoroutineType):
        async with asyncio.timeout(timeout):
            return await awaitable
    deadline = asyncio.get_running_loop().time() + timeout
    try:
        suspended_on = awaitable.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    async with asyncio.timeout_at(deadline):
        return await _resumed(awaitable, suspended_on)


@types.coroutine
def _resumed(coro: Coroutine[Any, Any, T], suspended_on: Any) -> Generator[Any, Any, T]:
    """The rest of ``coro``, already run to its first suspension on
    ``suspended_on`` (what it yielded to the task): what ``await`` does from
    there on, values sent and exceptions thrown in passed through."""
    yielded = suspended_on
    while True:
        try:
            sent = yield yielded
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # noqa: BLE001 - thrown in by the task: passed on
            try:
                yielded = coro.throw(exc)
            except StopIteration as done:
                result: T = done.value
                return result
        else:
            try:
                yielded = coro.send(sent)
            except StopIteration as done:
                result = done.value
                return result


def _header_section(message: bytes) -> email.message.Message:
    """The header fields of ``message`` (compat32), without parsing its body."""
    end = message.find(b"\r\n\r\n")
    head = message if end < 0 else message[: end + 4]
    return email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(head)


def _stop_workers(pool: concurrent.futures.Executor) -> None:
    """Stop an idle pool and, for a process pool, the helper processes
    multiprocessing keeps beside it (the forkserver the workers are forked
    from, the resource tracker): together they hold about as much memory as
    the workers. Both start again with the next pool. Runs in a thread: the
    stops wait for the processes to exit."""
    pool.shutdown(wait=True)
    if not isinstance(pool, concurrent.futures.ProcessPoolExecutor):
        return
    from multiprocessing import forkserver, resource_tracker

    for helper in (forkserver._forkserver, resource_tracker._resource_tracker):
        stop = getattr(helper, "_stop", None)  # CPython's own (tests use it); absent: they stay
        if stop is not None:
            try:
                stop()
            except OSError:
                log.debug("policy: could not stop %s", type(helper).__name__, exc_info=True)

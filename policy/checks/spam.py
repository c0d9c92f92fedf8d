"""Spam score (Decision 70/2009/QĐ-UBND, Điều 9 khoản 7, Điều 11 khoản 3:
no spreading of spam, "thư rác").

The score is the sum of named rules (SpamAssassin's model), each with a
fixed score:

* the rules of ``policy.rules.engine`` (``RULES``): sender authentication
  results (RFC 7208, 6376, 7489) when DNS gave them, header sanity (RFC 5322
  section 3.6), impersonated senders, phrase topics of Vietnamese and English
  scams matched without diacritics and through homoglyphs and zero-width
  characters, deceptive links (look-alike, IDN, shortener, link text showing
  another domain), credential forms, image-only mail, GTUBE;
* the Bayesian classifier (``policy.bayes``): BAYES_99/90/00 once this
  installation has trained it, BAYES_SEED_* capped below ``tag_score`` while
  only the shipped seed model speaks;
* spamd / rspamd scores when configured (clients in ``policy.clients``).

``block_senders`` are refused outright, ``allow_senders`` never scored. At
``tag_score`` the message is tagged (``X-Spam-Flag``) and asked into the
Junk folder; at ``reject_score`` it is refused with ``550 5.7.1``. Every
scored message carries ``X-Spam-Score`` and ``X-Spam-Report`` (the rules that
fired with their scores); the log line gives each rule's evidence.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, ClassVar, Final

from policy import codes
from policy.bayes import Bayes, Seed
from policy.checks import Check, MessageView, Resources, address_listed
from policy.clients import ScannerError, rspamd_check, spamd_check
from policy.context import PolicyContext
from policy.rules.engine import Facts, Hit, evaluate, parse_address
from policy.rules.normalize import FoldMemo, fold
from policy.settings import SpamOptions
from policy.verdict import Verdict, accept, reject, tag

log = logging.getLogger(__name__)

INLINE_BAYES: Final = 16_384
"""Characters of text up to which the classifier runs on the event loop (if
its database is free): less work than the thread hop (~0.2 ms for 4 KB)."""
REPORT_MAX: Final = 900
"""Characters of the X-Spam-Report value, kept on one line."""
LOCAL_SCORES: Final = {"99": 5.0, "90": 3.0, "00": -2.0}
"""What the classifier adds once this installation has trained it."""
SEED_SCORES: Final = {"99": 2.5, "90": 1.0, "00": -1.0}
"""What it adds on the shipped seed alone: below ``tag_score``, so the seed
never tags nor refuses a message by itself."""


class SpamCheck(Check[SpamOptions]):
    name: ClassVar[str] = "spam"
    options_type: ClassVar[type[Any]] = SpamOptions
    needs_analysis: ClassVar[bool] = True

    def __init__(self, resources: Resources, options: SpamOptions | None = None) -> None:
        super().__init__(resources, options)
        options = self.options
        self._bayes: Bayes | None = None
        if options.bayes:
            path = options.bayes_path or str(resources.data_dir / "policy" / "bayes.sqlite")
            seed: Seed | None = None
            if options.bayes_seed:
                try:
                    seed = Seed.load()
                except (OSError, ValueError, KeyError) as exc:
                    log.warning("spam: Bayes seed model not used: %s", exc)
            self._bayes = Bayes(Path(path), seed)

    @property
    def bayes(self) -> Bayes | None:
        return self._bayes

    async def close(self) -> None:
        if self._bayes is not None:
            self._bayes.close()

    async def mail_from(self, ctx: PolicyContext) -> Verdict | None:
        blocked = list(self.options.block_senders)
        if ctx.envelope.mail_from and address_listed(ctx.envelope.mail_from, blocked):
            return reject(
                self.name,
                codes.S550_SENDER_BLOCKED,
                f"sender {ctx.envelope.mail_from} block-listed",
                summary="blocked",
            )
        return None

    def facts(self, ctx: PolicyContext, message: MessageView, folding: FoldMemo | None = None) -> Facts:
        header = message.header
        date = header.get("Date")
        problem: str | None = None
        if date is not None:
            try:
                when = parsedate_to_datetime(str(date))
                if when.tzinfo is None:
                    when = when.replace(tzinfo=UTC)
                if when > datetime.now(UTC) + timedelta(days=2):
                    problem = "future"
            except (TypeError, ValueError, IndexError):
                problem = "forged"
        subject = next(
            (u.text for u in message.analysis.units if u.role == "subject" and u.where == "subject"), ""
        )
        return Facts(
            analysis=message.analysis,
            subject=subject,
            from_header=str(header.get("From", "")),
            reply_to_header=str(header.get("Reply-To", "") or ""),
            envelope_sender=ctx.envelope.mail_from,
            recipients=list(ctx.envelope.rcpts),
            local_domains=ctx.local_domains,
            auth={m: ctx.auth(m) for m in ("spf", "dkim", "dmarc")},
            has_date=date is not None,
            date_problem=problem,
            has_message_id=header.get("Message-ID") is not None,
            inbound_unauthenticated=not ctx.session.authenticated and ctx.direction == "inbound",
            scan_size=self.options.scan_size,
            content_type=header.get_content_type(),
            folding=folding if folding is not None else fold,
        )

    def score(
        self, ctx: PolicyContext, message: MessageView, folding: FoldMemo | None = None
    ) -> tuple[float, list[Hit]]:
        """The rules' score and the rules that fired (without Bayes and scanners)."""
        hits = evaluate(self.facts(ctx, message, folding))
        return sum(h.score for h in hits), hits

    async def bayes_hit(self, message: MessageView, folding: FoldMemo | None = None) -> Hit | None:
        """The classifier's rule: BAYES_99/90/00 once this installation has
        learned enough, BAYES_SEED_* (capped: ``SEED_SCORES``) on the seed alone."""
        if self._bayes is None:
            return None
        analysis = message.analysis
        subject = next((u.text for u in analysis.units if u.role == "subject"), "")
        sender = parse_address(str(message.header.get("From", "")))[1]
        text = analysis.body_text()
        folder = folding if folding is not None else fold
        done, p = (self._bayes.classify_now(text, subject, sender, analysis.urls, folder)
                   if len(text) <= INLINE_BAYES else (False, None))
        if not done:
            p = await asyncio.to_thread(self._bayes.classify, text, subject, sender, analysis.urls, folder)
        if p is None:
            return None
        local = self._bayes.local_trained()
        scores = LOCAL_SCORES if local else SEED_SCORES
        band = "99" if p > 0.99 else "90" if p > 0.9 else "00" if p < 0.1 else ""
        if not band:
            return None
        return Hit(f"BAYES_{band}" if local else f"BAYES_SEED_{band}", scores[band], f"p={p:.3f}")

    async def evaluate(self, ctx: PolicyContext, message: MessageView) -> tuple[float, list[Hit]]:
        """The score and every rule that made it: the rules, the Bayesian
        classifier, spamd/rspamd when configured (``mailserver spam check``
        shows the same)."""
        # The rules and the classifier fold the same body text and subject: once.
        folding = FoldMemo()
        score, hits = self.score(ctx, message, folding)
        if self._bayes is not None and self._bayes.trained():
            bayes = await self.bayes_hit(message, folding)
            if bayes is not None:
                hits.append(bayes)
                score += bayes.score
        settings = self.resources.settings
        for address, client in ((settings.spamd, spamd_check), (settings.rspamd, rspamd_check)):
            if address:
                try:
                    result = await client(address, message.raw, settings.client_timeout)
                except ScannerError as exc:
                    log.warning("spam: %s", exc)  # optional helper: its absence is no failure
                    continue
                score += result.score
                hits.append(Hit("SPAMD" if client is spamd_check else "RSPAMD", result.score, address))
        return score, hits

    def thresholds(self) -> tuple[float, float]:
        """(tag_score, reject_score)."""
        return self.options.tag_score, self.options.reject_score

    async def data(self, ctx: PolicyContext, message: MessageView) -> Verdict:
        allowed = list(self.options.allow_senders)
        if ctx.envelope.mail_from and address_listed(ctx.envelope.mail_from, allowed):
            return accept(self.name, "allowed")
        score, hits = await self.evaluate(ctx, message)
        tag_score, reject_score = self.thresholds()
        # The log line says why (each rule with what made it fire); the stored
        # copy says which rules, like SpamAssassin's X-Spam-Report.
        reason = f"score {score:.1f}: " + "; ".join(h.reason() for h in hits)
        report = f"{score:.1f} (tag {tag_score:g}, reject {reject_score:g}) " + (
            " ".join(h.report() for h in hits) or "none"
        )
        if len(report) > REPORT_MAX:  # one line (RFC 5322 section 2.1.1: at most 998 characters)
            report = report[: REPORT_MAX - 4].rsplit(" ", 1)[0] + " ..."
        headers = (("X-Spam-Score", f"{score:.1f}"), ("X-Spam-Report", report))
        if score >= reject_score:
            return reject(self.name, codes.S550_SPAM, reason, summary=f"{score:.1f}/reject")
        if score >= tag_score:
            return tag(
                self.name,
                f"{score:.1f}/tag",
                junk=True,
                reason=reason,
                headers=headers + (("X-Spam-Flag", "YES"),),
            )
        return accept(self.name, f"{score:.1f}", headers=headers, reason="")

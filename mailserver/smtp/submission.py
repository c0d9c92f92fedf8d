"""Message submission (RFC 6409): ``submission.listen`` with STARTTLS
(RFC 3207) and ``submission.tls_listen`` with implicit TLS (RFC 8314).

Built like the MX (``service``): the protocol is ``sasl.SubmissionSMTP``
(``protocol.MxSMTP`` with AUTH; what a session must do to authenticate is
described there), the hooks ``handler.SmtpHandler`` with the submission part
``submit.SubmissionRules`` (an authenticated account, rate limits, Date and
Message-ID), and ``SubmissionService`` binds the two addresses.

After AUTH the transaction goes to ``delivery.Inbound`` with the client
marked authenticated: the policy pipeline's sender check holds MAIL FROM and
the From and Sender fields to the addresses the account may use (RFC 6409
section 6.1, ``hooks.SenderPolicy``), local recipients are stored at once,
others queued (``Outbound``), both durably before the 250, after the content
policy (``policy.pipeline``, direction ``submission``, or ``internal`` when
every recipient is local) accepted the message. The Received field says
``with ESMTPSA`` (RFC 3848) and names neither the account nor the mechanism.

The policy is the MX's, with direction submission (or internal when every
recipient is local): Decision 70/2009 Dieu 6 forbids sending classified
documents, out or to a colleague. SPF/DKIM/DMARC are not checked: every
client here authenticated.

Lifecycle: ``start()`` binds both addresses (the implicit-TLS one only with a
TLS context); ``stop()`` is the shared one (``service.SmtpListeners``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

from mailserver.auth import Authenticator, must_change_text
from mailserver.certlogin import CertLogin
from mailserver.smtp.hooks import SenderPolicy
from mailserver.smtp.limits import session_limits
from mailserver.smtp.sasl import SubmissionSMTP
from mailserver.smtp.service import SmtpDeps, SmtpListeners
from mailserver.smtp.submit import RateLimiter, SubmissionRules
from mailserver.web.settings import portal_url

_BACKLOG: Final = 256


class SubmissionService(SmtpListeners):
    """The two submission listeners (see module docstring)."""

    name = "submission"

    def __init__(
        self,
        deps: SmtpDeps,
        authenticator: Authenticator,
        *,
        sender_policy: SenderPolicy,
        cert_login: CertLogin | None = None,
    ) -> None:
        config = deps.config
        self.limiter = RateLimiter(
            config.outbound.max_messages_per_hour, config.outbound.max_recipients_per_hour
        )
        rules = SubmissionRules(sender_policy, self.limiter, config.server.hostname)
        super().__init__(replace(deps, dns=None, reports=None), rules, session_limits(config))
        self._authenticator = authenticator
        self.cert_login = cert_login
        self._must_change = must_change_text(portal_url(config.web, config.server.hostname) + "/password")

    def _make_protocol(self, implicit_tls: bool) -> SubmissionSMTP:
        protocol = SubmissionSMTP(
            self._handler,
            authenticator=self._authenticator,
            must_change=self._must_change,
            cert_login=self.cert_login,
            allow_plaintext_auth=self._config.submission.allow_plaintext_auth,
            implicit_tls=implicit_tls,
            **self.protocol_options(None if implicit_tls else self._ssl_context),
        )
        self.track(protocol)
        return protocol

    async def start(self) -> dict[str, tuple[str, int]]:
        settings = self._config.submission
        proxy = settings.proxy_protocol
        bound = {"submission": await self.listen(
            "submission", settings.listen, lambda: self._make_protocol(False), backlog=_BACKLOG, proxy=proxy,
        )}
        if self._ssl_context is not None:
            bound["submissions"] = await self.listen(
                "submissions", settings.tls_listen, lambda: self._make_protocol(True), backlog=_BACKLOG,
                proxy=proxy, ssl_context=self._ssl_context,
            )
        return bound

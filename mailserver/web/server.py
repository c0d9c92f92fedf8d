"""The portal's HTTP front end on aiohttp: routes, sessions, CSRF, rendering.

Theory of operation
-------------------
One aiohttp application in the mail server's process and event loop, so it
shares the ``MailStore``, the ``Authenticator`` (and with it the login
throttle of IMAP and SMTP: five wrong passwords on the web count against the
same address and account as five wrong IMAP logins), the outbound queue and
the directory.

Every request passes the ``_session`` middleware: it reads the signed session
cookie (or starts an anonymous session with a fresh CSRF token), refuses any
POST whose ``csrf`` field does not match the session's token (403), and
writes the cookie back (HttpOnly, SameSite=Strict, Secure under TLS). Handlers
that sign an operator in or out replace ``request[SESSION]``; the token is
rotated then, so a token learnt before sign-in is useless after it.

Passwords only ever travel in POST bodies (never URLs), are not logged (the
access log holds request lines only), and are handed straight to
``mailserver.directory.passwords.change_password`` or to the Authenticator.

Pages: ``/password`` (self-service change, Decision 70/2009 Điều 9 khoản 1),
``/deleted`` (staff restore their own deleted mail, ``mailserver/web/deleted.py``),
``/vacation`` (staff set their out-of-office reply, ``mailserver/web/vacation.py``),
``/directory`` + ``.json`` + ``.vcf`` (Điều 5 khoản 5: agencies publish their
addresses and those of their competent officials, ``web.publish_heads``),
``/admin/*`` (operators listed in ``web.operators``; optional TOTP, RFC 6238),
``/admin/tlsrpt`` (TLS reports received, RFC 8460), ``/.well-known/mta-sts.txt``
(our MTA-STS policy, RFC 8461, for the Host ``mta-sts.<local domain>``),
``/crl`` and ``/ca.pem`` when the PKI module is present; ``/setup`` and the mail
client autoconfiguration documents (``mailserver/web/setup.py``, its own module).
"""

from __future__ import annotations

import asyncio
import importlib.resources
import logging
import os
import secrets
import ssl
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import jinja2
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mailserver import proxyproto
from mailserver.auth import AuthStatus, Limiter
from mailserver.certs import open_ca
from mailserver.config import Config, parse_hostport
from mailserver.directory import export, names
from mailserver.directory.aliases import alias_map
from mailserver.directory.passwords import PasswordRejected, change_password
from mailserver.directory.service import DirectoryService
from mailserver.dispatch.service import DispatchError, DispatchLog
from mailserver.ops import admin
from mailserver.ops.report import (
    ReportError,
    build_check_report,
    build_usage_report,
    parse_date,
    parse_offset,
)
from mailserver.ops.report_html import usage_body_html
from mailserver.smtp.mtasts import policy_text
from mailserver.smtp.outbound_settings import tlsrpt_address
from mailserver.twofactor import second_factor_ok
from mailserver.web import charts, stats
from mailserver.web.deps import PortalDependencies
from mailserver.web.i18n import pick_lang, translate
from mailserver.web.security import Session, SessionCodec, TotpCodes, csrf_ok, new_session
from mailserver.web.setup import CSRF_EXEMPT, SetupContext, add_routes
from pki.ca import PkiError
from pki.pdfsig import PdfCheck
from storage.credentials import TotpState
from storage.directory import By
from storage.quarantine import NoSuchEntry, Quarantine

log = logging.getLogger(__name__)

SESSION_COOKIE: Final = "portal_session"
TOTP_REQUIRED_TEXT: Final = (
    "Quản trị viên phải bật xác thực hai bước trước: đăng nhập tại /account/login rồi mở /account/totp. / "
    "Operators must enable two-factor sign-in first: sign in at /account/login, then open /account/totp."
)
LANG_COOKIE: Final = "lang"
STATIC_FILES: Final = {"portal.css": "text/css", "live.js": "text/javascript"}
SESSION: Final = web.RequestKey("session", Session)
LANG: Final = web.RequestKey("lang", str)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _session_key(config: Config) -> bytes:
    """``web.session_secret``, else a random key kept under the data directory
    (so sessions survive a restart), created owner-readable only."""
    if config.web.session_secret:
        return config.web.session_secret.encode()
    path = config.data_dir / "web" / "session.key"
    try:
        return bytes.fromhex(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key.hex())
    return key


class Portal:
    """State the handlers share; one per running WebService."""

    def __init__(self, deps: PortalDependencies) -> None:
        self.deps = deps
        self.config = deps.config
        self.codec = SessionCodec(_session_key(deps.config))
        self.secure_cookies = deps.config.web.tls
        self.directory = DirectoryService(deps.store, deps.directory, deps.config)
        self.quarantine: Quarantine = deps.quarantine
        self.ca = open_ca(deps.config)
        self.operators = {a.strip().lower() for a in deps.config.web.operators}
        self.totp = {k.strip().lower(): v for k, v in deps.config.web.totp_secrets.items()}
        auth = deps.config.auth
        self.totp_guard = Limiter(
            deps.config.web.totp_max_failures, window=auth.failure_window, lockout=auth.lockout,
            max_lockout=auth.max_lockout,
        )
        """Wrong TOTP codes per operator, counted apart from wrong passwords."""
        self.totp_codes = TotpCodes()
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("mailserver.web", "templates"),
            autoescape=jinja2.select_autoescape(["html"]),
            undefined=jinja2.StrictUndefined,
        )

    # -- rendering --------------------------------------------------------------
    def render(self, request: web.Request, template: str, *, status: int = 200, **ctx: Any) -> web.Response:
        lang: str = request[LANG]
        session: Session = request[SESSION]
        other = "en" if lang == "vi" else "vi"

        def _(key: str, **values: object) -> str:
            return translate(key, lang, **values)

        html = self.env.get_template(template).render(
            _=_,
            lang=lang,
            csrf=session.csrf,
            operator=session.operator_at(time.time()),
            path=request.path,
            switch_url=str(request.rel_url.update_query(lang=other)),
            has_pki=self.ca.initialised,
            **ctx,
        )
        return web.Response(text=html, content_type="text/html", charset="utf-8", status=status)

    def client_ip(self, request: web.Request) -> str:
        # Behind a PROXY-protocol balancer (web.proxy_protocol) the header's client.
        return proxyproto.client_ip(request.transport) or request.remote or "unknown"

    def operator(self, request: web.Request) -> str:
        """The signed-in operator, or a redirect to the sign-in page."""
        session: Session = request[SESSION]
        who = session.operator_at(time.time())
        if not who or who not in self.operators:
            raise web.HTTPSeeOther("/admin/login")
        return who


PORTAL: Final = web.AppKey("portal", Portal)


def _portal(request: web.Request) -> Portal:
    return request.app[PORTAL]


@web.middleware
async def _session(request: web.Request, handler: Handler) -> web.StreamResponse:
    portal = _portal(request)
    raw = request.cookies.get(SESSION_COOKIE, "")
    loaded = portal.codec.load(raw) if raw else None
    session = loaded or new_session()
    request[SESSION] = session
    request[LANG] = pick_lang(request.query.get("lang"), request.cookies.get(LANG_COOKIE))
    if request.method == "POST" and request.path not in CSRF_EXEMPT:
        form = await request.post()
        token = form.get("csrf")
        if loaded is None or not isinstance(token, str) or not csrf_ok(session, token):
            log.warning("web: refused POST %s from %s without a valid CSRF token",
                        request.path, portal.client_ip(request))
            response: web.StreamResponse = portal.render(
                request, "message.html", status=403, title=translate("error", request[LANG]),
                message=translate("csrf", request[LANG]),
            )
            return _finish(request, response, portal)
    try:
        response = await handler(request)
    except web.HTTPRedirection as exc:
        # A fresh response: returning the exception object itself is deprecated.
        response = web.Response(status=exc.status, headers={"Location": exc.headers.get("Location", "/")})
    except web.HTTPException as exc:
        response = portal.render(request, "message.html", status=exc.status,
                                 title=translate("error", request[LANG]), message=exc.reason)
    except Exception:
        # Never a traceback to the client (STYLE: errors); the log has it.
        log.exception("web: error serving %s %s", request.method, request.path)
        response = portal.render(request, "message.html", status=500,
                                 title=translate("error", request[LANG]),
                                 message="Lỗi máy chủ / server error")
    return _finish(request, response, portal)


def _finish(request: web.Request, response: web.StreamResponse, portal: Portal) -> web.StreamResponse:
    session: Session = request[SESSION]
    response.set_cookie(
        SESSION_COOKIE, portal.codec.dump(session), httponly=True, samesite="Strict",
        secure=portal.secure_cookies, path="/",
    )
    if "lang" in request.query and request.query["lang"] == request[LANG]:
        response.set_cookie(LANG_COOKIE, request[LANG], samesite="Strict", secure=portal.secure_cookies,
                            max_age=365 * 86400, path="/")
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    public = request.path.startswith("/directory") or request.path in ("/crl", "/ca.pem")
    headers.setdefault(
        "Content-Security-Policy",
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'"
        + ("" if public else "; frame-ancestors 'none'"),
    )
    if not public:
        headers.setdefault("Cache-Control", "no-store")
    return response


# -- public pages ----------------------------------------------------------------
async def index(request: web.Request) -> web.StreamResponse:
    return _portal(request).render(request, "index.html")


async def static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in STATIC_FILES:
        raise web.HTTPNotFound()
    data = (importlib.resources.files("mailserver.web") / "static" / name).read_bytes()
    return web.Response(body=data, content_type=STATIC_FILES[name], charset="utf-8",
                        headers={"Cache-Control": "max-age=3600"})


def _rules(portal: Portal) -> dict[str, int]:
    accounts = portal.config.accounts
    return {"min_length": accounts.min_password_length, "history": accounts.password_history}


async def password_form(request: web.Request) -> web.StreamResponse:
    portal = _portal(request)
    return portal.render(request, "password.html", address=request.query.get("address", ""), errors=[],
                         done=False, rules=_rules(portal))


async def password_change(request: web.Request) -> web.StreamResponse:
    portal = _portal(request)
    lang = request[LANG]
    form = await request.post()
    address = str(form.get("address", "")).strip().lower()
    current, new, confirm = (str(form.get(k, "")) for k in ("current", "new", "confirm"))
    ip = portal.client_ip(request)
    authenticator = portal.deps.authenticator
    errors: list[str] = []
    status = 400
    if not address or not current or not new or not confirm:
        errors.append(translate("pw_missing", lang))
    elif new != confirm:
        errors.append(translate("pw_mismatch", lang))
    elif authenticator.throttled(address, ip):
        errors.append(translate("throttled", lang))
        status = 429
    elif await portal.deps.store.get_account(address) is None:
        # Same answer, delay and throttle count as a wrong password, so the form
        # cannot be used to find out which addresses exist.
        await authenticator.authenticate(address, current, ip)
        errors.append("Mật khẩu cũ không đúng / the old password is wrong")
    else:
        try:
            await change_password(
                portal.deps.store, portal.directory.directory, portal.config.accounts, address, current, new,
                authenticator=authenticator, remote_ip=ip, by=By(address, "web"),
            )
        except PasswordRejected as exc:
            errors.extend(exc.reasons)
    if errors:
        return portal.render(request, "password.html", status=status, address=address, errors=errors,
                             done=False, rules=_rules(portal))
    log.info("web: password changed for %s from %s", address, ip)
    return portal.render(request, "password.html", address=address, errors=[], done=True,
                         rules=_rules(portal))


async def _entries(portal: Portal) -> list[export.Entry]:
    web_settings = portal.config.web
    return await portal.directory.entries(include_persons=web_settings.publish_persons,
                                          include_heads=web_settings.publish_heads)


async def _search(portal: Portal, entries: list[export.Entry], query: str) -> list[export.Entry]:
    """The entries matching ``query``, best first (mailserver.directory.names.rank,
    as ``mailserver directory search``): an agency by its name, short forms
    ("Sở TT&TT", "UBND tp. Biên Hòa") and aliases; a person by name, position or
    address, or by their agency's name just below it."""
    if not names.words(query):
        return entries
    aliases = await alias_map(portal.directory.directory)
    keys: dict[str, set[str]] = {}
    for e in entries:
        if e.kind == "agency":
            found = set().union(*(names.forms(n) for n in (e.name, *aliases.get(e.agency_code, []))))
            keys[e.agency_code] = found | {e.agency_code}
    scored: list[tuple[int, int, export.Entry]] = []
    for i, e in enumerate(entries):
        own = keys.get(e.agency_code, set())
        if e.kind == "agency":
            others = [e.agency_code, e.address, *aliases.get(e.agency_code, [])]
            score = names.rank(query, e.name, others, own)
        else:
            score = names.rank(query, e.name, [e.position, e.address, e.agency_name])
            if score < 2 and names.canon(query) in own:
                score = 2  # one of the agency's people
        if score >= 0:
            scored.append((score, i, e))
    floor = 1 if any(s >= 1 for s, _, _ in scored) else 0
    return [e for _, _, e in sorted((x for x in scored if x[0] >= floor), key=lambda x: (-x[0], x[1]))]


async def directory_page(request: web.Request) -> web.StreamResponse:
    portal = _portal(request)
    query = request.query.get("q", "")[:200]
    entries = await _entries(portal)
    agency_names = {e.agency_code: e.name for e in entries if e.kind == "agency"}
    shown = await _search(portal, entries, query)
    return portal.render(request, "directory.html", q=query, entries=shown, names=agency_names,
                         persons=any(e.kind == "person" for e in entries))


async def directory_json(request: web.Request) -> web.StreamResponse:
    entries = await _entries(_portal(request))
    return web.Response(text=export.to_json(entries), content_type="application/json", charset="utf-8",
                        headers={"Access-Control-Allow-Origin": "*"})


async def directory_vcf(request: web.Request) -> web.StreamResponse:
    entries = await _entries(_portal(request))
    return web.Response(
        text=export.to_vcard(entries), content_type="text/vcard", charset="utf-8",
        headers={"Content-Disposition": 'attachment; filename="danhba-dongnai.vcf"',
                 "Access-Control-Allow-Origin": "*"},
    )


# -- operators ---------------------------------------------------------------------
async def admin_login_form(request: web.Request) -> web.StreamResponse:
    return _portal(request).render(request, "admin_login.html", address="", error="")


async def admin_login(request: web.Request) -> web.StreamResponse:
    portal = _portal(request)
    lang = request[LANG]
    form = await request.post()
    address = str(form.get("address", "")).strip().lower()
    password = str(form.get("password", ""))
    code = str(form.get("totp", ""))
    ip = portal.client_ip(request)
    authenticator = portal.deps.authenticator
    error = ""
    status = 401
    # RFC 6238 second factor: wrong codes are counted per operator on their own
    # (a right password never resets them), before anything is verified, and a
    # locked operator is refused before the password is looked at, so the
    # answer never tells whether the password was right.
    secret = portal.totp.get(address) if address in portal.operators else None
    enrolled: TotpState | None = None
    if secret is None and address in portal.operators:
        # A secret the operator enrolled on /account/totp (issue 23), checked
        # against the database so each code is accepted once on every node.
        account = await portal.deps.store.get_account(address)
        state = await portal.deps.credentials.totp(account.id) if account is not None else None
        if state is not None and state.enabled:
            enrolled, secret = state, state.secret
    if secret is not None:
        if portal.totp_guard.blocked(address):
            await asyncio.sleep(authenticator.failure_delay)
            log.info("web: operator sign-in refused for %s from %s (TOTP locked)", address, ip)
            return portal.render(request, "admin_login.html", status=429, address=address,
                                 error=translate("throttled", lang))
        portal.totp_guard.admit(address)
    code_right: bool | None = None
    try:
        outcome = await authenticator.authenticate(address, password, ip)
        if outcome.status is AuthStatus.THROTTLED:
            error, status = translate("throttled", lang), 429
        elif outcome.status in (AuthStatus.OK, AuthStatus.MUST_CHANGE) and address in portal.operators:
            if enrolled is not None:
                code_right = await second_factor_ok(
                    portal.deps.credentials, enrolled.account_id, enrolled.secret, code
                )
            elif secret is not None:
                code_right = portal.totp_codes.accept(address, secret, code)
            if code_right is False:
                # The same wait as for a wrong password: no timing tells them apart.
                await asyncio.sleep(authenticator.failure_delay)
                error = translate("login_failed", lang)
            elif outcome.status is AuthStatus.MUST_CHANGE:
                error, status = translate("login_must_change", lang), 403
            elif secret is None and portal.config.web.require_totp_operators:
                error, status = TOTP_REQUIRED_TEXT, 403
        else:
            if outcome.status is not AuthStatus.FAILED:
                # Right password of a non-operator (or a disabled one): still a
                # failed sign-in here, counted so /admin cannot be probed freely.
                authenticator.count_failure(address, ip)
            error = translate("login_failed", lang)
    finally:
        if secret is not None:
            portal.totp_guard.settle(address, code_right)
    if error:
        log.info("web: operator sign-in refused for %s from %s", address, ip)
        return portal.render(request, "admin_login.html", status=status, address=address, error=error)
    expires = time.time() + 60 * portal.config.web.session_minutes
    request[SESSION] = Session(csrf=new_session().csrf, operator=address, expires=expires)
    await portal.directory.directory.audit("web.operator-login", address, by=By(address),
                                           detail={"ip": ip})
    raise web.HTTPSeeOther("/admin")


async def admin_logout(request: web.Request) -> web.StreamResponse:
    request[SESSION] = new_session()
    raise web.HTTPSeeOther("/admin/login")


async def _counters(portal: Portal) -> stats.Counters:
    messages, waiting = await stats.queue_counts(portal.deps.queue)
    return stats.Counters(
        connections=portal.deps.connection_counts(),
        queue_messages=messages,
        queue_waiting=waiting,
        quarantined=await asyncio.to_thread(stats.quarantine_count, portal.quarantine),
        accounts=len(await portal.deps.store.list_accounts()),
    )


async def admin_dashboard(request: web.Request) -> web.StreamResponse:
    portal = _portal(request)
    portal.operator(request)
    counters = await _counters(portal)
    zone = portal.config.report.utc_offset
    labels, values = await stats.deliveries_per_hour(portal.deps.activity, tz=parse_offset(zone))
    chart = charts.bar_chart(labels, values, title=translate("deliveries_chart", request[LANG], zone=zone))
    return portal.render(request, "admin_dashboard.html", c=counters.as_dict(), chart=chart,
                         hours=list(zip(labels, values, strict=True)), zone=zone)


async def admin_stats(request: web.Request) -> web.StreamResponse:
    portal = _portal(request)
    session: Session = request[SESSION]
    if session.operator_at(time.time()) not in portal.operators:
        return web.json_response({"error": "unauthorized"}, status=401)
    return web.json_response((await _counters(portal)).as_dict())


def _msg(request: web.Request) -> str:
    key = request.query.get("msg", "")
    return translate(key, request[LANG]) if key in ("done", "not_found") else ""


async def admin_queue(request: web.Request) -> web.StreamResponse:
    portal = _portal(request)
    portal.operator(request)
    messages = await portal.deps.queue.list()
    return portal.render(request, "admin_queue.html", messages=messages, msg=_msg(request))


async def admin_queue_action(request: web.Request) -> web.StreamResponse:
    portal = _portal(request)
    who = portal.operator(request)
    action = request.match_info["action"]
    try:
        message_id = int(request.match_info["id"])
    except ValueError:
        raise web.HTTPNotFound() from None
    queue, auditor, by = portal.deps.queue, portal.deps.directory, By(who)
    if action == "retry":
        ok = await admin.retry_queued(queue, auditor, message_id, by=by) is not None
    elif action == "bounce":
        ok = await admin.bounce_queued(queue, auditor, message_id, by=by)
    elif action == "delete":
        ok = await admin.delete_queued(queue, auditor, message_id, by=by)
    else:
        raise web.HTTPNotFound()
    raise web.HTTPSeeOther(f"/admin/queue?msg={'done' if ok else 'not_found'}")


async def admin_quarantine(request: web.Request) -> web.StreamResponse:
    portal = _portal(request)
    portal.operator(request)
    entries = await asyncio.to_thread(portal.quarantine.list)
    return portal.render(request, "admin_quarantine.html", entries=entries, msg=_msg(request))


async def admin_quarantine_action(request: web.Request) -> web.StreamResponse:
    portal = _portal(request)
    who = portal.operator(request)
    entry_id, action = request.match_info["id"], request.match_info["action"]
    store, auditor, by = portal.deps.store, portal.deps.directory, By(who)
    try:
        if action == "release":
            released = await admin.release_held(store, portal.quarantine, auditor, entry_id, by=by)
            ok = released.delivered > 0
        elif action == "delete":
            await admin.delete_held(portal.quarantine, auditor, entry_id, by=by)
            ok = True
        else:
            raise web.HTTPNotFound()
    except NoSuchEntry:
        ok = False
    raise web.HTTPSeeOther(f"/admin/quarantine?msg={'done' if ok else 'not_found'}")


async def admin_reports(request: web.Request) -> web.StreamResponse:
    """The operations reports (Decision 70/2009 Điều 7 khoản 2 b: usage reports;
    Điều 6 khoản 6: agency mailboxes checked twice a day), over ``?start=``/``?end=``
    (ISO dates; default the last 30 days) and ``?day=`` for the mailbox check."""
    portal = _portal(request)
    portal.operator(request)
    config = portal.config
    tz = parse_offset(config.report.utc_offset)
    today = datetime.now(tz).date()
    try:
        end = parse_date(request.query["end"]) if request.query.get("end") else today
        start = parse_date(request.query["start"]) if request.query.get("start") else end - timedelta(days=29)
        day = parse_date(request.query["day"]) if request.query.get("day") else today
        directory = portal.directory.directory
        activity = portal.deps.activity
        usage = await build_usage_report(config, portal.deps.store, directory, activity, start, end)
        checks = await build_check_report(config, directory, activity, day)
    except ReportError as exc:
        raise web.HTTPBadRequest(reason=str(exc)) from None
    return portal.render(request, "admin_reports.html", report_html=usage_body_html(usage), checks=checks,
                         start=start.isoformat(), end=end.isoformat(), day=day.isoformat())


async def admin_tlsrpt(request: web.Request) -> web.StreamResponse:
    """TLS reports others sent to ``tlsrpt.rua`` (RFC 8460), and our own outbound
    results not yet reported, counted per domain, policy type and result."""
    portal = _portal(request)
    portal.operator(request)
    store = portal.deps.tlsrpt
    received = await store.received(limit=200)
    counts: dict[tuple[str, str, str], int] = {}
    for r in await store.unreported(datetime.now(UTC)):
        key = (r.policy_domain, r.policy_type, r.result)
        counts[key] = counts.get(key, 0) + 1
    rua = tlsrpt_address(portal.config.tlsrpt, list(portal.config.server.domains))
    return portal.render(request, "admin_tlsrpt.html", received=received, ours=sorted(counts.items()),
                         rua=rua)


async def mta_sts_policy(request: web.Request) -> web.StreamResponse:
    """Our MTA-STS policy (RFC 8461 section 3.3) for the local domain named by the
    Host ``mta-sts.<domain>``: ``text/plain``, never a redirect."""
    config = _portal(request).config
    host = (request.host or "").lower()
    if host.count(":") == 1:
        host = host.partition(":")[0]  # a port; an IPv6 literal has more colons and no policy
    domain = host.rstrip(".").removeprefix("mta-sts.")
    if not host.startswith("mta-sts.") or not config.is_local_domain(domain):
        raise web.HTTPNotFound()
    settings = config.mta_sts
    text = policy_text(settings.mode, list(settings.mx) or [config.server.hostname], settings.max_age)
    return web.Response(text=text, content_type="text/plain", charset="utf-8")


async def admin_dispatches(request: web.Request) -> web.StreamResponse:
    """Documents the agencies dispatched (``mailserver dispatch``), newest first:
    recipients, the mail's S/MIME signature and the signature inside each PDF
    as the recipients' copies show it (X-PDF-Signature)."""
    portal = _portal(request)
    portal.operator(request)
    try:
        records = await asyncio.to_thread(DispatchLog(portal.config.data_dir).all)
    except DispatchError as exc:
        raise web.HTTPInternalServerError(reason=str(exc)) from None
    rows = [(r, [PdfCheck(**c) for c in r.pdf_checks]) for r in reversed(records[-200:])]
    return portal.render(request, "admin_dispatches.html", rows=rows)


async def admin_dmarc(request: web.Request) -> web.StreamResponse:
    """Who sends as our domains, from which IPs, passing DMARC or not: the
    aggregate reports received at ``dmarc.rua`` (mailserver/ops/dmarc.py)."""
    portal = _portal(request)
    portal.operator(request)
    senders = await portal.deps.dmarc.senders()
    return portal.render(request, "admin_dmarc.html", senders=senders)


async def admin_audit(request: web.Request) -> web.StreamResponse:
    portal = _portal(request)
    portal.operator(request)
    entries = await portal.directory.directory.audit_log(limit=200)
    zone = portal.config.report.utc_offset
    tz = parse_offset(zone)
    # Province time with its offset written, not UTC left unsaid.
    rows = [(e, e.at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") + f" {zone}") for e in reversed(entries)]
    return portal.render(request, "admin_audit.html", entries=rows, zone=zone)


# -- PKI downloads (Decision 70/2009 Điều 7 khoản 1: the Sở deploys PKI) ----------
async def ca_pem(request: web.Request) -> web.StreamResponse:
    """The issuing CA and the root, PEM (RFC 7468 section 5), to install as trusted."""
    ca = _portal(request).ca
    if not ca.initialised:
        raise web.HTTPNotFound(reason="Chưa có CA / no CA")
    data = await asyncio.to_thread(
        lambda: (ca.directory / "ca.pem").read_bytes() + (ca.directory / "root.pem").read_bytes()
    )
    return web.Response(body=data, content_type="application/x-pem-file",
                        headers={"Content-Disposition": 'attachment; filename="dongnai-ca.pem"'})


async def crl(request: web.Request) -> web.StreamResponse:
    """The CRL: DER as ``application/pkix-crl`` (RFC 2585 section 4.2), or PEM with
    ``?format=pem``. Re-signed first when it no longer lists every revocation of
    the index or is due for renewal (``CertificateAuthority.refresh_crl``), so a
    revocation made a moment ago by another process is served at once."""
    ca = _portal(request).ca
    path = ca.directory / "crl.pem"
    if ca.initialised and ca.can_sign:
        try:
            await asyncio.to_thread(ca.refresh_crl)
        except PkiError as exc:
            log.error("web: cannot re-sign the CRL: %s", exc)
    try:
        pem = await asyncio.to_thread(path.read_bytes)
        parsed = x509.load_pem_x509_crl(pem)
    except (FileNotFoundError, ValueError):
        raise web.HTTPNotFound(reason="Chưa công bố CRL / no CRL published") from None
    if request.query.get("format") == "pem":
        return web.Response(body=pem, content_type="application/x-pem-file")
    der = parsed.public_bytes(serialization.Encoding.DER)
    return web.Response(body=der, content_type="application/pkix-crl")


def build_application(deps: PortalDependencies) -> web.Application:
    """The aiohttp application of the portal over started stores (``App.portal_dependencies``)."""
    application = web.Application(middlewares=[_session], client_max_size=64 * 1024)
    application[PORTAL] = Portal(deps)
    r = application.router
    r.add_get("/", index)
    r.add_get("/static/{name}", static)
    r.add_get("/password", password_form)
    r.add_post("/password", password_change)
    r.add_get("/directory", directory_page)
    r.add_get("/directory.json", directory_json)
    r.add_get("/directory.vcf", directory_vcf)
    r.add_get("/admin/login", admin_login_form)
    r.add_post("/admin/login", admin_login)
    r.add_post("/admin/logout", admin_logout)
    r.add_get("/admin", admin_dashboard)
    r.add_get("/admin/stats.json", admin_stats)
    r.add_get("/admin/queue", admin_queue)
    r.add_post("/admin/queue/{id}/{action}", admin_queue_action)
    r.add_get("/admin/quarantine", admin_quarantine)
    r.add_post("/admin/quarantine/{id}/{action}", admin_quarantine_action)
    r.add_get("/admin/reports", admin_reports)
    r.add_get("/admin/audit", admin_audit)
    r.add_get("/admin/dmarc", admin_dmarc)
    r.add_get("/admin/dispatches", admin_dispatches)
    r.add_get("/admin/tlsrpt", admin_tlsrpt)
    r.add_get("/.well-known/mta-sts.txt", mta_sts_policy)
    r.add_get("/ca.pem", ca_pem)
    r.add_get("/crl", crl)
    from mailserver.web import account  # self-service: app passwords, login history

    account.register(r)
    portal = application[PORTAL]
    add_routes(application, SetupContext(portal.config, portal.ca, portal.render))
    from mailserver.web import deleted  # imports this module

    deleted.add_routes(r)
    from mailserver.web import vacation  # imports this module

    vacation.add_routes(r)
    return application


class WebService:
    """The portal as an ``App`` service: ``start`` binds ``web.listen``."""

    def __init__(self, deps: PortalDependencies, ssl_context: ssl.SSLContext | None) -> None:
        self._deps = deps
        self._ssl = ssl_context if deps.config.web.tls else None
        self._runner: web.AppRunner | None = None
        self._proxied: proxyproto.ProxiedServer | None = None

    async def start(self) -> dict[str, tuple[str, int]]:
        host, port = parse_hostport(self._deps.config.web.listen)
        application = build_application(self._deps)
        self._runner = web.AppRunner(application, access_log=logging.getLogger("mailserver.web.access"))
        await self._runner.setup()
        settings = self._deps.config
        if settings.web.proxy_protocol:
            assert self._runner.server is not None  # noqa: S101 - set by setup()
            self._proxied = await proxyproto.serve(
                self._runner.server, host or "0.0.0.0", port, ssl_context=self._ssl, name="web",  # noqa: S104
                trusted_proxies=proxyproto.parse_networks(settings.server.trusted_proxies),
            )
            bound = self._proxied.sockets[0].getsockname()
        else:
            site = web.TCPSite(self._runner, host, port, ssl_context=self._ssl)
            await site.start()
            bound = self._runner.addresses[0]
        return {"web": (str(bound[0]), int(bound[1]))}

    async def stop(self) -> None:
        if self._proxied is not None:
            self._proxied.close()
            await self._proxied.wait_closed()
            self._proxied = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


__all__ = ["PORTAL", "Portal", "WebService", "build_application"]

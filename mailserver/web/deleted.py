"""The portal's "Thư đã xóa / Deleted mail" page: staff list and restore their
own deleted mail (mailserver/ops/vault.py, storage/sql/vault.py).

Signing in works as the password page does: the address and password go to
the shared ``Authenticator`` (the same throttle as IMAP and SMTP: failures here
count against the address and the client), an unknown address gets the same
answer and delay as a wrong password, and an initial or expired password is
sent to /password first. A right password opens a session of
``web.session_minutes`` held in the signed session cookie (``extra["user"]``,
never the password), with a fresh CSRF token; every POST carries that token
(the ``_session`` middleware refuses others). Every read and every restore is
scoped to the signed-in account: an entry id of another mailbox is "not
found", exactly like one that does not exist.
"""

from __future__ import annotations

import logging
import time
from typing import Final

from aiohttp import web

from mailserver.auth import AuthStatus
from mailserver.ops import vault
from mailserver.ops.report import parse_offset
from mailserver.web.i18n import translate
from mailserver.web.security import Session, new_session
from mailserver.web.server import LANG, SESSION, Portal, _portal
from storage.api import Account, NoSuchDeleted
from storage.directory import By

log = logging.getLogger(__name__)

USER: Final = "user"
UNTIL: Final = "user_until"
_MESSAGES: Final = ("restored", "not_found", "none")


def _signed_in(request: web.Request) -> str:
    session: Session = request[SESSION]
    who = session.extra.get(USER, "")
    try:
        until = float(session.extra.get(UNTIL, "0"))
    except ValueError:
        return ""
    return who if who and time.time() < until else ""


def _without_user(session: Session) -> Session:
    extra = {k: v for k, v in session.extra.items() if k not in (USER, UNTIL)}
    return Session(session.csrf, session.operator, session.expires, extra)


async def _account(portal: Portal, request: web.Request) -> Account | None:
    """The signed-in account, still able to sign in; None (and the sign-in
    forgotten) otherwise."""
    who = _signed_in(request)
    account = await portal.deps.store.get_account(who) if who else None
    if account is None or account.disabled:
        request[SESSION] = _without_user(request[SESSION])
        return None
    return account


def _login_form(portal: Portal, request: web.Request, *, address: str = "", error: str = "",
                status: int = 200) -> web.Response:
    return portal.render(request, "deleted.html", status=status, account=None, address=address,
                         error=error, entries=[], msg="", days=portal.config.retention.deleted_days,
                         held=False)


async def deleted_page(request: web.Request) -> web.StreamResponse:
    portal = _portal(request)
    account = await _account(portal, request)
    if account is None:
        return _login_form(portal, request)
    entries = await portal.deps.store.deleted_messages(account.id)
    zone = portal.config.report.utc_offset
    tz = parse_offset(zone)
    rows = [
        (e, e.internal_date.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
         e.deleted_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"))
        for e in entries
    ]
    key = request.query.get("msg", "")
    msg = translate(f"del_{key}", request[LANG], n=request.query.get("n", "0")) if key in _MESSAGES else ""
    held = bool(await portal.deps.store.holds_on(account.id))
    return portal.render(request, "deleted.html", account=account, address=account.address, error="",
                         entries=rows, msg=msg, days=portal.config.retention.deleted_days, held=held)


async def deleted_login(request: web.Request) -> web.StreamResponse:
    portal = _portal(request)
    lang = request[LANG]
    form = await request.post()
    address = str(form.get("address", "")).strip().lower()
    password = str(form.get("password", ""))
    ip = portal.client_ip(request)
    authenticator = portal.deps.authenticator
    if not address or not password:
        return _login_form(portal, request, address=address, error=translate("pw_missing", lang), status=400)
    if authenticator.throttled(address, ip):
        return _login_form(portal, request, address=address, error=translate("throttled", lang), status=429)
    outcome = await authenticator.authenticate(address, password, ip)
    if outcome.status is AuthStatus.THROTTLED:
        return _login_form(portal, request, address=address, error=translate("throttled", lang), status=429)
    if outcome.status is AuthStatus.MUST_CHANGE:
        return _login_form(portal, request, address=address, error=translate("login_must_change", lang),
                           status=403)
    if outcome.status is not AuthStatus.OK or outcome.account is None:
        # Unknown address, wrong password, disabled: one answer for all.
        log.info("web: deleted-mail sign-in refused for %s from %s", address, ip)
        return _login_form(portal, request, address=address, error=translate("del_login_failed", lang),
                           status=401)
    old: Session = request[SESSION]
    until = time.time() + 60 * portal.config.web.session_minutes
    # A fresh CSRF token at sign-in: one learnt before it is useless after.
    request[SESSION] = Session(
        csrf=new_session().csrf, operator=old.operator, expires=old.expires,
        extra={**old.extra, USER: outcome.account.address, UNTIL: str(until)},
    )
    raise web.HTTPSeeOther("/deleted")


async def deleted_restore(request: web.Request) -> web.StreamResponse:
    portal = _portal(request)
    account = await _account(portal, request)
    if account is None:
        raise web.HTTPSeeOther("/deleted")
    form = await request.post()
    try:
        ids = [int(str(v)) for v in form.getall("id", [])]
    except ValueError:
        raise web.HTTPBadRequest(reason=translate("del_bad_id", request[LANG])) from None
    if not ids:
        raise web.HTTPSeeOther("/deleted?msg=none")
    try:
        restored = await vault.restore(
            portal.deps.store, portal.directory.directory, ids, by=By(account.address, "web"), account=account
        )
    except NoSuchDeleted:
        log.info("web: %s asked to restore deleted mail %s not theirs or gone", account.address, ids)
        raise web.HTTPSeeOther("/deleted?msg=not_found") from None
    log.info("web: %s restored %d deleted message(s)", account.address, len(restored))
    raise web.HTTPSeeOther(f"/deleted?msg=restored&n={len(restored)}")


async def deleted_logout(request: web.Request) -> web.StreamResponse:
    request[SESSION] = _without_user(request[SESSION])
    raise web.HTTPSeeOther("/deleted")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/deleted", deleted_page)
    router.add_post("/deleted/login", deleted_login)
    router.add_post("/deleted/restore", deleted_restore)
    router.add_post("/deleted/logout", deleted_logout)

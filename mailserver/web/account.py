"""The portal's self-service account pages: sign-in of any user, app passwords, login history.

Routes: ``/account/login`` (sign in with the main password: never an app
password, which opens mail protocols only), ``/account/logout``,
``/app-passwords`` (list, create, revoke the user's own app passwords, and the
latest logins of the account). The user's sign-in lives in the signed session
cookie (``Session.extra``: address and expiry) beside the operator's; the CSRF
token is rotated at sign-in, and every POST passes the portal's CSRF check.
"""

from __future__ import annotations

import time
from typing import Final

from aiohttp import web

from mailserver.apppasswords import AppPasswordError, create_app_password, local_time, parse_scopes
from mailserver.auth import AuthStatus
from mailserver.web.i18n import translate
from mailserver.web.security import Session, new_session
from mailserver.web.server import LANG, SESSION, _portal
from storage.api import Account
from storage.credentials import SCOPES, DuplicateName, credentials_for
from storage.directory import By

HISTORY_SHOWN: Final = 30
USER: Final = "user"
USER_EXPIRES: Final = "user_exp"


def signed_in(request: web.Request) -> str:
    """The signed-in user's address, or ""."""
    session: Session = request[SESSION]
    user = session.extra.get(USER, "")
    try:
        expires = float(session.extra.get(USER_EXPIRES, "0"))
    except ValueError:
        return ""
    return user if user and time.time() < expires else ""


async def _user(request: web.Request) -> Account:
    address = signed_in(request)
    account = await _portal(request).app.store.get_account(address) if address else None
    if account is None or account.disabled:
        raise web.HTTPSeeOther("/account/login")
    return account


def _rotated(old: Session, extra: dict[str, str]) -> Session:
    """The session with a new user part and a fresh CSRF token (a token learnt
    before sign-in is useless after it); the operator's sign-in is kept."""
    return Session(csrf=new_session().csrf, operator=old.operator, expires=old.expires, extra=extra)


async def login_form(request: web.Request) -> web.StreamResponse:
    return _portal(request).render(request, "account_login.html", address="", error="")


async def login(request: web.Request) -> web.StreamResponse:
    portal = _portal(request)
    lang = request[LANG]
    form = await request.post()
    address = str(form.get("address", "")).strip().lower()
    password = str(form.get("password", ""))
    outcome = await portal.app.authenticator.authenticate(address, password, portal.client_ip(request))
    if outcome.status is not AuthStatus.OK:
        if outcome.status is AuthStatus.THROTTLED:
            error, status = translate("throttled", lang), 429
        elif outcome.status is AuthStatus.MUST_CHANGE:
            error, status = translate("login_must_change", lang) + " → /password", 403
        else:
            error, status = translate("login_failed", lang), 401
        return portal.render(request, "account_login.html", status=status, address=address, error=error)
    expires = time.time() + 60 * portal.config.web.session_minutes
    old: Session = request[SESSION]
    extra = {**old.extra, USER: address, USER_EXPIRES: str(expires)}
    request[SESSION] = _rotated(old, extra)
    raise web.HTTPSeeOther("/app-passwords")


async def logout(request: web.Request) -> web.StreamResponse:
    old: Session = request[SESSION]
    extra = {k: v for k, v in old.extra.items() if k not in (USER, USER_EXPIRES)}
    request[SESSION] = _rotated(old, extra)
    raise web.HTTPSeeOther("/account/login")


async def _page(request: web.Request, account: Account, *, status: int = 200, secret: str = "",
                created: str = "", error: str = "", msg: str = "") -> web.StreamResponse:
    portal = _portal(request)
    credentials = credentials_for(portal.app.store)
    if portal.app.authenticator.history is not None:
        await portal.app.authenticator.history.flush()  # this very sign-in shows
    apps = await credentials.list_app_passwords(account.id)
    logins = await credentials.logins(account.id, HISTORY_SHOWN)
    return portal.render(
        request, "app_passwords.html", status=status, account=account, apps=apps, logins=logins,
        scopes=SCOPES, secret=secret, created=created, error=error, msg=msg, when=local_time,
        required=portal.config.accounts.require_app_passwords,
    )


async def app_passwords(request: web.Request) -> web.StreamResponse:
    return await _page(request, await _user(request))


async def app_password_add(request: web.Request) -> web.StreamResponse:
    account = await _user(request)
    portal = _portal(request)
    form = await request.post()
    name = str(form.get("name", ""))
    try:
        scopes = parse_scopes(",".join(str(v) for v in form.getall("scope", [])))
        domain = portal.config.directory.domain or portal.config.server.domains[0]
        app, secret = await create_app_password(
            portal.app.store, credentials_for(portal.app.store), account, name, scopes,
            sender=f"postmaster@{domain}", hostname=portal.config.server.hostname,
        )
    except AppPasswordError as exc:
        return await _page(request, account, status=400, error=str(exc))
    except DuplicateName:
        return await _page(request, account, status=409,
                           error=f"Đã có mật khẩu ứng dụng tên này / an app password so named exists: {name}")
    await portal.directory.directory.audit(
        "account.app-password.add", account.address, by=By(account.address, "web"),
        detail={"name": app.name, "scopes": list(app.scopes), "ip": portal.client_ip(request)},
    )
    return await _page(request, account, secret=secret, created=app.name)


async def app_password_revoke(request: web.Request) -> web.StreamResponse:
    account = await _user(request)
    portal = _portal(request)
    form = await request.post()
    name = str(form.get("name", ""))
    if not await credentials_for(portal.app.store).revoke_app_password(account.id, name):
        return await _page(request, account, status=404,
                           error=f"Không có mật khẩu ứng dụng / no app password: {name}")
    await portal.directory.directory.audit(
        "account.app-password.revoke", account.address, by=By(account.address, "web"),
        detail={"name": name, "ip": portal.client_ip(request)},
    )
    return await _page(request, account, msg=f"Đã thu hồi / revoked: {name}")


def register(router: web.UrlDispatcher) -> None:
    router.add_get("/account/login", login_form)
    router.add_post("/account/login", login)
    router.add_post("/account/logout", logout)
    router.add_get("/app-passwords", app_passwords)
    router.add_post("/app-passwords", app_password_add)
    router.add_post("/app-passwords/revoke", app_password_revoke)

"""The portal's self-service account pages: sign-in of any user, app passwords, login history.

Routes: ``/account/login`` (sign in with the main password: never an app
password, which opens mail protocols only), ``/account/logout``,
``/app-passwords`` (list, create, revoke the user's own app passwords, and the
latest logins of the account). The user's sign-in lives in the signed session
cookie (``Session.extra``: address and expiry) beside the operator's; the CSRF
token is rotated at sign-in, and every POST passes the portal's CSRF check.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Final

from aiohttp import web

from mailserver.apppasswords import AppPasswordError, create_app_password, local_time, parse_scopes
from mailserver.auth import AuthOutcome, AuthStatus
from mailserver.twofactor import (
    disabled_notice,
    new_secret,
    otpauth_uri,
    qr_data_uri,
    recovery_codes,
    recovery_hash,
    second_factor_ok,
)
from mailserver.web.i18n import translate
from mailserver.web.security import Session, new_session, totp_step
from mailserver.web.server import LANG, SESSION, _portal
from storage.api import Account
from storage.credentials import SCOPES, DuplicateName
from storage.directory import By

HISTORY_SHOWN: Final = 30
NEXT_PAGES: Final = frozenset({"/app-passwords", "/vacation"})
"""Where a sign-in may return to (``next``): only our own pages, never a URL."""
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
    account = await _portal(request).deps.store.get_account(address) if address else None
    if account is None or account.disabled:
        raise web.HTTPSeeOther("/account/login")
    return account


def _rotated(old: Session, extra: dict[str, str]) -> Session:
    """The session with a new user part and a fresh CSRF token (a token learnt
    before sign-in is useless after it); the operator's sign-in is kept."""
    return Session(csrf=new_session().csrf, operator=old.operator, expires=old.expires, extra=extra)


def _next(value: object) -> str:
    return value if isinstance(value, str) and value in NEXT_PAGES else ""


async def login_form(request: web.Request) -> web.StreamResponse:
    return _portal(request).render(
        request, "account_login.html", address="", error="", next=_next(request.query.get("next"))
    )


async def login(request: web.Request) -> web.StreamResponse:
    portal = _portal(request)
    lang = request[LANG]
    form = await request.post()
    address = str(form.get("address", "")).strip().lower()
    password = str(form.get("password", ""))
    code = str(form.get("totp", ""))
    credentials = portal.deps.credentials
    known = await portal.deps.store.get_account(address) if address else None
    state = await credentials.totp(known.id) if known is not None else None
    guarded = state is not None and state.enabled
    if guarded:
        # Wrong codes are counted per account apart from wrong passwords, and a
        # locked account is refused before the password is looked at.
        if portal.totp_guard.blocked(address):
            await asyncio.sleep(portal.deps.authenticator.failure_delay)
            return portal.render(request, "account_login.html", status=429, address=address,
                                 error=translate("throttled", lang))
        portal.totp_guard.admit(address)
    code_right: bool | None = None
    try:
        outcome = await portal.deps.authenticator.authenticate(address, password, portal.client_ip(request))
        if guarded and state is not None and outcome.status is AuthStatus.OK:
            code_right = await second_factor_ok(credentials, state.account_id, state.secret, code)
            if not code_right:
                await asyncio.sleep(portal.deps.authenticator.failure_delay)
                outcome = AuthOutcome(AuthStatus.FAILED)
    finally:
        if guarded:
            portal.totp_guard.settle(address, code_right)
    if outcome.status is not AuthStatus.OK:
        if outcome.status is AuthStatus.THROTTLED:
            error, status = translate("throttled", lang), 429
        elif outcome.status is AuthStatus.MUST_CHANGE:
            error, status = translate("login_must_change", lang) + " → /password", 403
        else:
            error, status = translate("login_failed", lang), 401
        return portal.render(request, "account_login.html", status=status, address=address, error=error,
                             next=_next(form.get("next")))
    expires = time.time() + 60 * portal.config.web.session_minutes
    old: Session = request[SESSION]
    extra = {**old.extra, USER: address, USER_EXPIRES: str(expires)}
    request[SESSION] = _rotated(old, extra)
    raise web.HTTPSeeOther(_next(form.get("next")) or "/app-passwords")


async def logout(request: web.Request) -> web.StreamResponse:
    old: Session = request[SESSION]
    extra = {k: v for k, v in old.extra.items() if k not in (USER, USER_EXPIRES)}
    request[SESSION] = _rotated(old, extra)
    raise web.HTTPSeeOther("/account/login")


async def _page(request: web.Request, account: Account, *, status: int = 200, secret: str = "",
                created: str = "", error: str = "", msg: str = "") -> web.StreamResponse:
    portal = _portal(request)
    credentials = portal.deps.credentials
    if portal.deps.authenticator.history is not None:
        await portal.deps.authenticator.history.flush()  # this very sign-in shows
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
            portal.deps.store, portal.deps.credentials, account, name, scopes,
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
    if not await portal.deps.credentials.revoke_app_password(account.id, name):
        return await _page(request, account, status=404,
                           error=f"Không có mật khẩu ứng dụng / no app password: {name}")
    await portal.directory.directory.audit(
        "account.app-password.revoke", account.address, by=By(account.address, "web"),
        detail={"name": name, "ip": portal.client_ip(request)},
    )
    return await _page(request, account, msg=f"Đã thu hồi / revoked: {name}")


async def _totp_page(request: web.Request, account: Account, *, status: int = 200, error: str = "",
                    codes: list[str] | None = None, msg: str = "") -> web.StreamResponse:
    portal = _portal(request)
    credentials = portal.deps.credentials
    state = await credentials.totp(account.id)
    if state is None:
        await credentials.start_totp(account.id, new_secret(), datetime.now(UTC))
        state = await credentials.totp(account.id)
    assert state is not None  # noqa: S101 - just stored
    uri = otpauth_uri(account.address, state.secret)
    return portal.render(
        request, "account_totp.html", status=status, account=account, state=state, error=error,
        codes=codes or [], msg=msg, secret=state.secret if not state.enabled else "",
        qr=qr_data_uri(uri) if not state.enabled else "",
    )


async def totp_page(request: web.Request) -> web.StreamResponse:
    return await _totp_page(request, await _user(request))


async def totp_enable(request: web.Request) -> web.StreamResponse:
    account = await _user(request)
    portal = _portal(request)
    form = await request.post()
    credentials = portal.deps.credentials
    state = await credentials.totp(account.id)
    if state is None or state.enabled:
        raise web.HTTPSeeOther("/account/totp")
    step = totp_step(state.secret, str(form.get("totp", "")))
    if step is None:
        return await _totp_page(request, account, status=400,
                                error="Mã không đúng, hãy thử mã mới / wrong code, try the next one")
    codes = recovery_codes()
    await credentials.enable_totp(account.id, step, [recovery_hash(c) for c in codes])
    await portal.directory.directory.audit(
        "account.totp.enable", account.address, by=By(account.address, "web"),
        detail={"ip": portal.client_ip(request)},
    )
    return await _totp_page(request, account, codes=codes)


async def totp_disable(request: web.Request) -> web.StreamResponse:
    account = await _user(request)
    portal = _portal(request)
    form = await request.post()
    credentials = portal.deps.credentials
    state = await credentials.totp(account.id)
    if state is None or not state.enabled:
        raise web.HTTPSeeOther("/account/totp")
    if portal.totp_guard.blocked(account.address):
        return await _totp_page(request, account, status=429, error=translate("throttled", request[LANG]))
    portal.totp_guard.admit(account.address)
    right = await second_factor_ok(credentials, account.id, state.secret, str(form.get("totp", "")))
    portal.totp_guard.settle(account.address, right)
    if not right:
        await asyncio.sleep(portal.deps.authenticator.failure_delay)
        return await _totp_page(request, account, status=400,
                                error="Mã không đúng / wrong code")
    await credentials.disable_totp(account.id)
    ip = portal.client_ip(request)
    domain = portal.config.directory.domain or portal.config.server.domains[0]
    await portal.deps.store.deliver(
        [account.id],
        disabled_notice(account.address, ip=ip, sender=f"postmaster@{domain}",
                        hostname=portal.config.server.hostname),
        quota=False,
    )
    await portal.directory.directory.audit(
        "account.totp.disable", account.address, by=By(account.address, "web"), detail={"ip": ip}
    )
    return await _totp_page(request, account, msg="Đã tắt xác thực hai bước / two-factor sign-in turned off")


def register(router: web.UrlDispatcher) -> None:
    router.add_get("/account/totp", totp_page)
    router.add_post("/account/totp/enable", totp_enable)
    router.add_post("/account/totp/disable", totp_disable)
    router.add_get("/account/login", login_form)
    router.add_post("/account/login", login)
    router.add_post("/account/logout", logout)
    router.add_get("/app-passwords", app_passwords)
    router.add_post("/app-passwords", app_password_add)
    router.add_post("/app-passwords/revoke", app_password_revoke)

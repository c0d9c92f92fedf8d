"""The portal's "Vắng mặt / Out of office" page (/vacation): staff on mission
set an automatic reply with its dates, subject and message.

The reply is a managed Sieve script (``mailserver/ops/vacation.py``) that
wraps the user's own active script instead of replacing it. Sign-in is the
account sign-in of ``/account/login`` (main password, TOTP when enabled, the
shared throttle), which comes back here (``next=/vacation``); every POST
passes the portal's CSRF check, and a user only ever reaches the scripts of
the account signed in.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from aiohttp import web

from mailserver.ops import vacation
from mailserver.ops.report import parse_offset
from mailserver.ops.sieve import SieveLimits
from mailserver.web.account import signed_in
from mailserver.web.server import _portal
from storage.api import Account
from storage.sieve import SieveScriptError, TooManyScripts

log = logging.getLogger(__name__)

LOGIN = "/account/login?next=/vacation"


async def _user(request: web.Request) -> Account:
    address = signed_in(request)
    account = await _portal(request).deps.store.get_account(address) if address else None
    if account is None or account.disabled:
        raise web.HTTPSeeOther(LOGIN)
    return account


def _defaults(zone: str) -> dict[str, str]:
    today = datetime.now(parse_offset(zone)).date()
    return {
        "start": today.isoformat(),
        "end": (today + timedelta(days=7)).isoformat(),
        "subject": "Vắng mặt / Out of office",
        "message": (
            "Tôi đang đi công tác, thư của Anh/Chị sẽ được trả lời khi tôi trở về.\n"
            "I am away on mission; I will answer your message when I am back."
        ),
        "days": "7",
    }


async def _page(
    request: web.Request,
    account: Account,
    *,
    status: int = 200,
    error: str = "",
    msg: str = "",
    form: dict[str, str] | None = None,
) -> web.Response:
    portal = _portal(request)
    zone = portal.config.report.utc_offset
    state = await vacation.current(portal.deps.sieve, account.address)
    values = _defaults(zone)
    if state.settings is not None:
        s = state.settings
        values = {
            "start": s.start.isoformat(),
            "end": s.end.isoformat(),
            "subject": s.subject,
            "message": s.message,
            "days": str(s.days),
        }
    if form is not None:
        values = form
    return portal.render(
        request,
        "vacation.html",
        status=status,
        account=account,
        active=state.active,
        values=values,
        error=error,
        msg=msg,
        zone=zone,
    )


async def vacation_page(request: web.Request) -> web.StreamResponse:
    account = await _user(request)
    msg = {
        "on": "Đã bật trả lời tự động / The automatic reply is on",
        "off": "Đã tắt trả lời tự động / The automatic reply is off",
    }.get(request.query.get("msg", ""), "")
    return await _page(request, account, msg=msg)


async def vacation_save(request: web.Request) -> web.StreamResponse:
    account = await _user(request)
    portal = _portal(request)
    scripts = portal.deps.sieve
    form = await request.post()
    if str(form.get("action", "")) == "off":
        await vacation.turn_off(scripts, account.address)
        log.info("web: %s turned the automatic reply off", account.address)
        raise web.HTTPSeeOther("/vacation?msg=off")
    fields = {k: str(form.get(k, "")) for k in ("start", "end", "subject", "message", "days")}
    try:
        settings = vacation.validate(
            fields["start"], fields["end"], fields["subject"], fields["message"], fields["days"]
        )
        await vacation.turn_on(
            scripts,
            account.address,
            settings,
            SieveLimits.from_config(portal.config),
            portal.config.report.utc_offset,
        )
    except vacation.VacationError as exc:
        return await _page(request, account, status=400, error=str(exc), form=fields)
    except TooManyScripts:
        return await _page(
            request,
            account,
            status=409,
            form=fields,
            error="Hộp thư đã đủ số bộ lọc tối đa, hãy xóa bớt / The mailbox has the most scripts allowed",
        )
    except SieveScriptError as exc:
        return await _page(request, account, status=400, error=str(exc), form=fields)
    log.info(
        "web: %s turned the automatic reply on (%s to %s)", account.address, settings.start, settings.end
    )
    raise web.HTTPSeeOther("/vacation?msg=on")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/vacation", vacation_page)
    router.add_post("/vacation", vacation_save)

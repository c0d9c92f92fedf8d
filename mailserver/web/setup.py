"""The portal's mail client setup: ``/setup`` ("Cài đặt thư"), its QR codes, and the
autoconfiguration documents clients fetch by themselves (``mailserver/clientsetup.py``).

Routes (``add_routes``), all public, none needing a session:

* ``GET /.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=A`` and
  ``GET /mail/config-v1.1.xml?emailaddress=A``: Thunderbird (the second is what it
  asks ``autoconfig.<domain>`` for).
* ``POST /autodiscover/autodiscover.xml`` (and the ``/Autodiscover/Autodiscover.xml``
  spelling Outlook uses): Outlook's POX Autodiscover. Exempt from the portal's
  CSRF check (``CSRF_EXEMPT``): a client program posts XML there, not a form of ours.
* ``GET /setup/apple.mobileconfig[?emailaddress=A]``: the Apple profile, signed
  with the issuing CA once ``mailserver pki init`` ran and the passphrase is known.
* ``GET /setup[?address=A]``: step-by-step pages; ``GET /setup/qr/{iphone,phone}.{svg,png}``:
  QR codes (segno) of the profile's and of this page's public URLs.

Bad input (no address, not ours, malformed XML, DTDs/entities) gets a 400 with a
bilingual text, never a traceback.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlencode

import segno
from aiohttp import web

from mailserver import clientsetup
from mailserver.clientsetup import SetupError
from mailserver.config import Config
from mailserver.web.settings import portal_url
from pki.ca import CertificateAuthority, PkiError

log = logging.getLogger(__name__)

AUTODISCOVER_PATHS: Final = ("/autodiscover/autodiscover.xml", "/Autodiscover/Autodiscover.xml")
CSRF_EXEMPT: Final = frozenset(AUTODISCOVER_PATHS)
"""POST paths client programs use; the session middleware skips its CSRF check there."""
QR_TARGETS: Final = ("iphone", "phone")


@dataclass(frozen=True, slots=True)
class SetupContext:
    config: Config
    ca: CertificateAuthority
    render: Callable[..., web.Response]
    """The portal's page renderer: ``render(request, template, status=..., **ctx)``."""


SETUP: Final = web.AppKey("setup", SetupContext)


def _context(request: web.Request) -> SetupContext:
    return request.app[SETUP]


def _bad(message: str) -> web.Response:
    return web.Response(status=400, text=message + "\n", content_type="text/plain", charset="utf-8")


# -- autoconfiguration documents -------------------------------------------------------
async def thunderbird(request: web.Request) -> web.StreamResponse:
    ctx = _context(request)
    try:
        address = clientsetup.check_address(ctx.config, request.query.get("emailaddress"))
    except SetupError as exc:
        return _bad(str(exc))
    return web.Response(body=clientsetup.thunderbird_config(ctx.config, address),
                        content_type="application/xml", charset="utf-8")


async def autodiscover(request: web.Request) -> web.StreamResponse:
    ctx = _context(request)
    try:
        body = await request.read()
        address = clientsetup.check_address(ctx.config, clientsetup.autodiscover_address(body))
    except SetupError as exc:
        log.info("web: autodiscover request refused from %s: %s", request.remote, exc)
        return web.Response(status=400, body=clientsetup.autodiscover_error(str(exc)),
                            content_type="application/xml", charset="utf-8")
    return web.Response(body=clientsetup.autodiscover_response(ctx.config, address),
                        content_type="application/xml", charset="utf-8")


def _signed(ctx: SetupContext, data: bytes) -> bytes | None:
    """The profile signed by the issuing CA, or None when there is no CA or no key to use."""
    ca = ctx.ca
    if not ca.initialised or not ca.can_sign:
        return None
    try:
        return clientsetup.sign_profile(data, ca.issuing(), ca.load_key("ca.key"), [ca.root()])
    except (PkiError, OSError, ValueError) as exc:
        log.error("web: serving the Apple profile unsigned: %s", exc)
        return None


async def mobileconfig(request: web.Request) -> web.StreamResponse:
    ctx = _context(request)
    given = request.query.get("emailaddress")
    try:
        address = clientsetup.check_address(ctx.config, given) if given else None
    except SetupError as exc:
        return _bad(str(exc))
    data = clientsetup.apple_profile(ctx.config, address)
    signed = await asyncio.to_thread(_signed, ctx, data)
    return web.Response(
        body=signed if signed is not None else data, content_type=clientsetup.MOBILECONFIG_TYPE,
        headers={"Content-Disposition": 'attachment; filename="dongnai-mail.mobileconfig"'},
    )


# -- /setup -----------------------------------------------------------------------------
def target_url(config: Config, target: str, address: str | None) -> str:
    """What a QR code opens: the Apple profile (``iphone``) or this setup page (``phone``)."""
    base = portal_url(config.web, config.server.hostname)
    if target == "iphone":
        query = f"?{urlencode({'emailaddress': address})}" if address else ""
        return f"{base}/setup/apple.mobileconfig{query}"
    return f"{base}/setup" + (f"?{urlencode({'address': address})}" if address else "")


def _address_or_none(config: Config, raw: str | None) -> str | None:
    """An optional ``address`` parameter: ours and well-formed, else ignored (None)."""
    if not raw:
        return None
    try:
        return clientsetup.check_address(config, raw)
    except SetupError:
        return None


async def setup_page(request: web.Request) -> web.StreamResponse:
    ctx = _context(request)
    raw = request.query.get("address", "")[:320]
    address = _address_or_none(ctx.config, raw)
    query = f"?{urlencode({'address': address})}" if address else ""
    profile_query = f"?{urlencode({'emailaddress': address})}" if address else ""
    return ctx.render(
        request, "setup.html", status=400 if raw and address is None else 200,
        address=address or "", bad_address=bool(raw) and address is None,
        ends=clientsetup.public_endpoints(ctx.config), domain=ctx.config.server.domains[0],
        qr_query=query, profile_query=profile_query, signed=ctx.ca.initialised and ctx.ca.can_sign,
        iphone_url=target_url(ctx.config, "iphone", address),
        phone_url=target_url(ctx.config, "phone", address),
    )


async def qr(request: web.Request) -> web.StreamResponse:
    ctx = _context(request)
    target, kind = request.match_info["target"], request.match_info["kind"]
    if target not in QR_TARGETS or kind not in ("svg", "png"):
        raise web.HTTPNotFound()
    address = _address_or_none(ctx.config, request.query.get("address"))
    code = segno.make(target_url(ctx.config, target, address), error="m")
    out = io.BytesIO()
    if kind == "svg":
        code.save(out, kind="svg", scale=4, xmldecl=False, title="QR")
        return web.Response(body=out.getvalue(), content_type="image/svg+xml")
    code.save(out, kind="png", scale=6)
    return web.Response(body=out.getvalue(), content_type="image/png")


def add_routes(application: web.Application, context: SetupContext) -> None:
    application[SETUP] = context
    r = application.router
    r.add_get("/.well-known/autoconfig/mail/config-v1.1.xml", thunderbird)
    r.add_get("/mail/config-v1.1.xml", thunderbird)
    for path in AUTODISCOVER_PATHS:
        r.add_post(path, autodiscover)
    r.add_get("/setup", setup_page)
    r.add_get("/setup/apple.mobileconfig", mobileconfig)
    r.add_get("/setup/qr/{target}.{kind}", qr)


__all__ = ["CSRF_EXEMPT", "SETUP", "SetupContext", "add_routes", "target_url"]

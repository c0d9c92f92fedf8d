"""The ManageSieve state machine (RFC 5804), without I/O.

Theory of operation
-------------------
States (section 2)::

    nonauth --AUTHENTICATE ok--> auth --UNAUTHENTICATE--> nonauth
       |  \\--STARTTLS ok--> (driver: TLS handshake, tls_started()) --> nonauth
       \\----------------- LOGOUT, TooBig ------------------------------> logout

``handle(event)`` takes one parser event and returns the responses in order.
During a SASL exchange (section 2.1) the next line must be one string: the
client's base64 response, or ``"*"`` to cancel. The driver owns the bytes:
it writes what ``handle`` returns, performs the TLS handshake when
``start_tls`` is set, and closes when ``closed`` is set.

Authentication goes through the shared ``Authenticator`` (throttle, Argon2
queue, app passwords with scope ``managesieve``, login history), as IMAP's.
Before TLS it is refused ``NO (ENCRYPT-NEEDED)`` except from loopback or with
``managesieve.allow_plaintext_auth`` (the same rule as IMAP's LOGINDISABLED).

Whose scripts: the authenticated user's own, unless SASL PLAIN names an
authorization identity (RFC 4616 section 2) that is an agency mailbox the
user administers: its head, or a delegate holding the RFC 4314 ``a`` right
(Decision 70/2009 Điều 10 khoản 1: the head administers the agency mailbox
and may delegate). The scripts of that mailbox are then the ones managed.

Errors (section 1.3): a malformed line, an unknown command or one not
allowed in the state: ``NO`` with the reason; refusals carry their response
code (NONEXISTENT, ACTIVE, ALREADYEXISTS, QUOTA/MAXSCRIPTS, QUOTA/MAXSIZE,
ENCRYPT-NEEDED, TRYLATER); a literal over the limit: ``BYE`` and close.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import logging
from dataclasses import dataclass
from typing import Final, Literal

from mailserver.auth import Authenticator, AuthStatus
from mailserver.managesieve import commands as c
from mailserver.managesieve.parser import BadLine, Line, TooBig
from mailserver.managesieve.responses import Bye, Data, No, Ok, Response, Sasl, ScriptData
from mailserver.managesieve.settings import ManageSieveSettings
from mailserver.ops.sieve import (
    EXTENSIONS,
    InvalidName,
    InvalidScript,
    ScriptTooBig,
    SieveLimits,
    check_name,
    check_script,
    check_size,
    put_checked,
)
from storage.directory import DirectoryStore
from storage.sieve import (
    NoSuchScript,
    NoSuchScriptOwner,
    ScriptActive,
    ScriptExists,
    SieveScriptError,
    SieveScripts,
    TooManyScripts,
)

__all__ = ["ManageSieveDeps", "Session"]

log = logging.getLogger(__name__)

IMPLEMENTATION: Final = "mailserver (Dong Nai) ManageSieve"
State = Literal["nonauth", "auth", "logout"]


@dataclass(frozen=True, slots=True)
class ManageSieveDeps:
    """What a ManageSieve session uses (the front end's narrow view of the App)."""

    scripts: SieveScripts
    authenticator: Authenticator
    directory: DirectoryStore | None
    settings: ManageSieveSettings
    limits: SieveLimits


@dataclass(slots=True)
class _Sasl:
    mechanism: str
    user: str | None = None


class Session:
    def __init__(
        self,
        deps: ManageSieveDeps,
        *,
        remote_ip: str,
        secure: bool,
        starttls_available: bool,
        connection_id: str = "-",
    ) -> None:
        self.deps = deps
        self.remote_ip = remote_ip
        self.secure = secure
        self.starttls_available = starttls_available and not secure
        self.connection_id = connection_id
        self.state: State = "nonauth"
        self.user: str | None = None
        """The authenticated account's address."""
        self.owner: str | None = None
        """Whose scripts the commands manage: the user's, or an administered agency mailbox's."""
        self.start_tls = False
        """Set by a successful STARTTLS: the driver must now perform the handshake."""
        self._sasl: _Sasl | None = None

    # -- what the driver asks --------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self.state == "logout"

    @property
    def max_literal(self) -> int:
        settings = self.deps.settings
        return settings.max_literal if self.state == "auth" else settings.max_preauth_literal

    def greeting(self) -> list[Response]:
        """Section 1.7: the server starts with its capabilities and OK."""
        return [*self._capabilities(), Ok("ManageSieve ready / Sẵn sàng")]

    def tls_started(self) -> list[Response]:
        """Section 2.2: after the handshake the capabilities are sent again."""
        self.start_tls = False
        self.secure = True
        self.starttls_available = False
        return self.greeting()[:-1] + [Ok("TLS negotiation successful")]

    # -- one event ------------------------------------------------------------------------
    async def handle(self, event: Line | BadLine | TooBig) -> list[Response]:
        if self.closed:
            return []
        if isinstance(event, TooBig):
            self.state = "logout"
            return [Bye(f"Dữ liệu quá lớn / {event.text}")]
        if self._sasl is not None:
            return await self._sasl_response(event)
        if isinstance(event, BadLine):
            return [No(f"Lệnh sai cú pháp / Syntax error: {event.text}")]
        try:
            cmd = c.parse_command(event)
        except c.CommandError as exc:
            return [No(f"Lệnh sai / {exc}")]
        if self.state not in cmd.STATES:
            if self.state == "nonauth":
                return [No("Cần đăng nhập trước / Authenticate first")]
            return [No("Đã đăng nhập / Already authenticated")]
        try:
            return await self._run(cmd)
        except NoSuchScriptOwner:
            return [No("Hộp thư không còn / The mailbox no longer exists")]
        except SieveScriptError as exc:
            return [_refusal(exc)]

    async def _run(self, cmd: c.Command) -> list[Response]:
        match cmd:
            case c.Capability():
                return [*self._capabilities(), Ok("Capability completed")]
            case c.Logout():
                self.state = "logout"
                return [Ok("Logout completed / Tạm biệt")]
            case c.Noop(tag=tag):
                return [Ok("Done", f"TAG {_quote(tag)}" if tag is not None else "")]
            case c.StartTls():
                if not self.starttls_available:
                    return [No("TLS đã bật hoặc không có / TLS is active or not available")]
                self.start_tls = True
                return [Ok("Begin TLS negotiation now")]
            case c.Authenticate():
                return await self._authenticate(cmd)
            case c.Unauthenticate():
                self.state, self.user, self.owner = "nonauth", None, None
                return [Ok("Unauthenticate completed")]
            case c.HaveSpace(name=name, size=size):
                return await self._havespace(name, size)
            case c.PutScript(name=name, text=text):
                warnings = await put_checked(self.deps.scripts, self._owner(), name, text, self.deps.limits)
                if warnings:
                    return [Ok("; ".join(warnings), "WARNINGS")]
                return [Ok("Putscript completed")]
            case c.ListScripts():
                scripts = await self.deps.scripts.list_scripts(self._owner())
                return [
                    *(Data((s.name,), "ACTIVE" if s.active else "") for s in scripts),
                    Ok("Listscripts completed"),
                ]
            case c.SetActive(name=name):
                await self.deps.scripts.set_active(self._owner(), name or None)
                return [Ok("Setactive completed")]
            case c.GetScript(name=name):
                script = await self.deps.scripts.get_script(self._owner(), name)
                if script is None:
                    raise NoSuchScript(name)
                return [ScriptData(script.text), Ok("Getscript completed")]
            case c.DeleteScript(name=name):
                await self.deps.scripts.delete_script(self._owner(), name)
                return [Ok("Deletescript completed")]
            case c.RenameScript(old=old, new=new):
                check_name(new)
                await self.deps.scripts.rename_script(self._owner(), old, new)
                return [Ok("Renamescript completed")]
            case c.CheckScript(text=text):
                check_size(text, self.deps.limits)
                warnings = check_script(text)
                if warnings:
                    return [Ok("; ".join(warnings), "WARNINGS")]
                return [Ok("Checkscript completed")]
        raise AssertionError(f"unhandled command {cmd!r}")  # pragma: no cover

    def _owner(self) -> str:
        assert self.owner is not None  # noqa: S101 - the state table allows script commands only after login
        return self.owner

    def _capabilities(self) -> list[Response]:
        lines: list[Response] = [
            Data(("IMPLEMENTATION", IMPLEMENTATION)),
            Data(("SASL", "PLAIN LOGIN" if self._auth_allowed() and self.state == "nonauth" else "")),
            Data(("SIEVE", EXTENSIONS)),
            Data(("MAXREDIRECTS", str(self.deps.limits.max_redirects))),
        ]
        if self.starttls_available:
            lines.append(Data(("STARTTLS",)))
        if self.user is not None:
            lines.append(Data(("OWNER", self._owner())))
        lines += [Data(("UNAUTHENTICATE",)), Data(("VERSION", "1.0"))]
        return lines

    # -- HAVESPACE (section 2.5) -----------------------------------------------------------
    async def _havespace(self, name: str, size: int) -> list[Response]:
        check_name(name)
        limits = self.deps.limits
        if size > limits.max_script_size:
            return [No(f"Kịch bản quá lớn / Script exceeds {limits.max_script_size} octets", "QUOTA/MAXSIZE")]
        if await self.deps.scripts.get_script(self._owner(), name) is None:
            if len(await self.deps.scripts.list_scripts(self._owner())) >= limits.max_scripts:
                raise TooManyScripts(name)
        return [Ok("Putscript would succeed")]

    # -- AUTHENTICATE (section 2.1) ----------------------------------------------------------
    def _auth_allowed(self) -> bool:
        if self.secure or self.deps.settings.allow_plaintext_auth:
            return True
        try:
            return ipaddress.ip_address(self.remote_ip).is_loopback
        except ValueError:
            return False

    async def _authenticate(self, cmd: c.Authenticate) -> list[Response]:
        if cmd.mechanism not in ("PLAIN", "LOGIN"):
            return [No("Cơ chế không hỗ trợ / Unsupported SASL mechanism (PLAIN, LOGIN)")]
        if not self._auth_allowed():
            return [No("Cần STARTTLS trước / Use STARTTLS first", "ENCRYPT-NEEDED")]
        self._sasl = _Sasl(cmd.mechanism)
        if cmd.initial is None:
            return [Sasl("" if cmd.mechanism == "PLAIN" else "VXNlcm5hbWU6")]  # "Username:"
        return await self._sasl_step(cmd.initial)

    async def _sasl_response(self, event: Line | BadLine) -> list[Response]:
        if isinstance(event, BadLine) or len(event.tokens) != 1 or not isinstance(event.tokens[0], str):
            self._sasl = None
            return [No("Phản hồi SASL sai / Bad SASL response: expected one string")]
        if event.tokens[0] == "*":
            self._sasl = None
            return [No("Đã hủy đăng nhập / Authentication cancelled")]
        return await self._sasl_step(event.tokens[0])

    async def _sasl_step(self, encoded: str) -> list[Response]:
        sasl = self._sasl
        assert sasl is not None  # noqa: S101 - only during an exchange
        try:
            text = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            self._sasl = None
            return [No("Dữ liệu SASL sai / Invalid base64 or not UTF-8")]
        if sasl.mechanism == "PLAIN":
            self._sasl = None
            parts = text.split("\0")  # RFC 4616: [authzid] NUL authcid NUL passwd
            if len(parts) != 3 or not parts[1]:
                return [No("Sai tên hoặc mật khẩu / Authentication failed")]
            return await self._login(parts[1], parts[2], parts[0])
        if sasl.user is None:
            sasl.user = text
            return [Sasl("UGFzc3dvcmQ6")]  # "Password:"
        self._sasl = None
        return await self._login(sasl.user, text, "")

    async def _login(self, user: str, password: str, authzid: str) -> list[Response]:
        outcome = await self.deps.authenticator.authenticate(
            user, password, self.remote_ip, protocol="managesieve"
        )
        account = outcome.account
        match outcome.status:
            case AuthStatus.OK if account is not None:
                owner: str | None = account.address
                if authzid and authzid.strip().lower() != owner:
                    owner = await self._administered(account.id, authzid.strip().lower())
                    if owner is None:
                        log.info(
                            "managesieve %s: %s may not manage %r",
                            self.connection_id,
                            account.address,
                            authzid[:64],
                        )
                        return [
                            No(
                                "Không có quyền quản trị hộp thư này / Not authorized to manage "
                                f"the scripts of {authzid[:64]}"
                            )
                        ]
                self.state, self.user, self.owner = "auth", account.address, owner
                log.info(
                    "managesieve %s: login %s (scripts of %s) from %s",
                    self.connection_id,
                    account.address,
                    owner,
                    self.remote_ip,
                )
                return [Ok("Đăng nhập thành công / Logged in")]
            case AuthStatus.THROTTLED:
                return [No("Đăng nhập sai quá nhiều lần, thử lại sau / Too many failed logins", "TRYLATER")]
            case AuthStatus.DISABLED:
                return [No("Tài khoản bị khóa / Account disabled")]
            case AuthStatus.MUST_CHANGE:
                return [No("Cần đổi mật khẩu trên cổng /password trước / Password must be changed first")]
            case AuthStatus.APP_PASSWORD_REQUIRED:
                return [No("Cần dùng mật khẩu ứng dụng (/app-passwords) / Use an app password")]
        log.info("managesieve %s: failed login %r from %s", self.connection_id, user[:64], self.remote_ip)
        return [No("Sai tên hoặc mật khẩu / Authentication failed")]

    async def _administered(self, account_id: int, mailbox: str) -> str | None:
        """``mailbox`` if the account administers it (head, or delegate with ``a``)."""
        if self.deps.directory is None:
            return None
        for grant in await self.deps.directory.mailbox_access(account_id):
            if grant.mailbox_address.lower() == mailbox and "a" in grant.rights:
                return grant.mailbox_address.lower()
        return None


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _refusal(exc: SieveScriptError) -> Response:
    """A refused script operation as ``NO`` with its response code (section 1.3)."""
    match exc:
        case NoSuchScript():
            return No(f"Không có kịch bản / No such script: {exc}", "NONEXISTENT")
        case ScriptActive():
            return No("Kịch bản đang dùng, không xóa được / The active script cannot be deleted", "ACTIVE")
        case ScriptExists():
            return No(f"Đã có kịch bản / Script exists: {exc}", "ALREADYEXISTS")
        case TooManyScripts():
            return No("Đã đủ số kịch bản tối đa / Too many scripts", "QUOTA/MAXSCRIPTS")
        case ScriptTooBig():
            return No(str(exc), "QUOTA/MAXSIZE")
        case InvalidScript():
            return No(f"Kịch bản sai / Invalid script: {exc}")
        case InvalidName():
            return No(str(exc))
    return No(f"Bị từ chối / Refused: {exc}")

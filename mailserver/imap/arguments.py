"""The grammars of the IMAP commands' arguments (RFC 9051 section 6 and 9, with
the extensions the server offers: RFC 4466/7162 select-params, RFC 5258/5819
LIST-EXTENDED/LIST-STATUS, RFC 3502 MULTIAPPEND, RFC 4731/5182 search return
options, RFC 3516 BINARY, RFC 5256/5267/5957 SORT, THREAD and ESORT, RFC 2971 ID,
RFC 9208 QUOTA, RFC 4314 ACL).

``COMMANDS`` maps a command name to the function that reads its arguments into
a ``commands`` dataclass; ``UID_COMMANDS`` the same after ``UID``; ``SIMPLE``
holds the commands without arguments. Each function starts right after the
command name and raises ``GrammarError`` on anything that does not fit.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Final

from mailserver.imap import commands as c
from mailserver.imap.grammar import ATOM_CHARS
from mailserver.imap.reader import MAX_NUMBER, MAX_NUMBER64, GrammarError, Reader

# -- command grammars -----------------------------------------------------------------

SIMPLE: Final[dict[str, c.Command]] = {
    "CAPABILITY": c.Capability(),
    "NOOP": c.Noop(),
    "LOGOUT": c.Logout(),
    "STARTTLS": c.StartTls(),
    "NAMESPACE": c.Namespace(),
    "CHECK": c.Check(),
    "CLOSE": c.Close(True),
    "UNSELECT": c.Close(False),
    "EXPUNGE": c.Expunge(),
    "IDLE": c.Idle(),
}


def _login(r: Reader) -> c.Command:
    # login = "LOGIN" SP userid SP password
    r.sp()
    user = r.astr()
    r.sp()
    return c.Login(user, r.astr())


def _authenticate(r: Reader) -> c.Command:
    # authenticate = "AUTHENTICATE" SP auth-type [SP (base64 / "=")] (RFC 4959)
    r.sp()
    mechanism = r.atom().upper()
    initial = None
    if r.accept(b" "):
        initial = b"" if r.accept(b"=") else decode_base64(r.run(ATOM_CHARS))
    return c.Authenticate(mechanism, initial)


def decode_base64(data: bytes) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise GrammarError("Invalid base64") from None


def _enable(r: Reader) -> c.Command:
    # enable = "ENABLE" 1*(SP capability)
    caps = []
    while r.accept(b" "):
        caps.append(r.atom().upper())
    if not caps:
        raise GrammarError("ENABLE needs a capability")
    return c.Enable(tuple(caps))


def _select(readonly: bool) -> Callable[[Reader], c.Command]:
    def parse(r: Reader) -> c.Command:
        # select = "SELECT" SP mailbox [select-params] (RFC 4466, RFC 7162)
        r.sp()
        mailbox = r.mailbox()
        condstore, qresync = False, None
        if r.accept(b" ("):
            r.spaces()
            first = True
            while r.list_next(first):
                first = False
                param = r.atom().upper()
                if param == "CONDSTORE":
                    condstore = True
                elif param == "QRESYNC":
                    qresync = _qresync(r)
                else:
                    raise GrammarError(f"Unknown SELECT parameter {param}")
        return c.Select(mailbox, readonly, condstore, qresync)

    return parse


def _qresync(r: Reader) -> c.QResync:
    r.expect(b" (")
    uidvalidity = r.nz_number()
    r.sp()
    modseq = r.nz_number(MAX_NUMBER64)
    known = seq_match = None
    if r.accept(b" "):
        if r.peek() != b"(":
            known = r.seqset()
            r.accept(b" ")
        if r.accept(b"("):
            a = r.seqset()
            r.sp()
            b = r.seqset()
            r.expect(b")")
            seq_match = (a, b)
    r.expect(b")")
    return c.QResync(uidvalidity, modseq, known, seq_match)


def _create(r: Reader) -> c.Command:
    # create = "CREATE" SP mailbox [create-params] (RFC 6154 USE)
    r.sp()
    mailbox = r.mailbox()
    uses: list[str] = []
    if r.accept(b" (USE ("):
        r.spaces()
        while r.list_next(not uses):
            uses.append(r.flag())
        r.spaces()
        r.expect(b")")
    return c.Create(mailbox, tuple(uses))


def _one_mailbox(cls: type[c.Delete]) -> Callable[[Reader], c.Command]:
    def parse(r: Reader) -> c.Command:
        r.sp()
        return cls(r.mailbox())

    return parse


def _rename(r: Reader) -> c.Command:
    r.sp()
    old = r.mailbox()
    r.sp()
    return c.Rename(old, r.mailbox())


def _subscribe(flag: bool) -> Callable[[Reader], c.Command]:
    def parse(r: Reader) -> c.Command:
        r.sp()
        return c.Subscribe(r.mailbox(), flag)

    return parse


_STATUS_ITEMS: Final = frozenset(
    {"MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "RECENT", "SIZE", "HIGHESTMODSEQ", "DELETED"}
)


def _status_items(r: Reader) -> tuple[str, ...]:
    items = r.paren_list()
    if not items or any(i not in _STATUS_ITEMS for i in items):
        raise GrammarError("Bad STATUS item")
    return tuple(items)


def _list(lsub: bool) -> Callable[[Reader], c.Command]:
    def parse(r: Reader) -> c.Command:
        # list = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat [SP list-return-opts]
        r.sp()
        select: tuple[str, ...] = ()
        if not lsub and r.peek() == b"(":
            select = tuple(r.paren_list())
            r.sp()
        reference = r.text(r.astring()) if r.peek() != b"(" else ""
        r.sp()
        patterns: list[str] = []
        parenthesised = False
        if not lsub and r.peek() == b"(":
            parenthesised = True
            r.open_list()
            while r.list_next(not patterns):
                patterns.append(r.list_mailbox())
            if not patterns:
                raise GrammarError("Empty pattern list")
        else:
            patterns.append(r.list_mailbox())
        returns: list[str] = []
        status: tuple[str, ...] = ()
        if not lsub and r.accept(b" RETURN ("):
            r.spaces()
            while r.list_next(not returns):
                opt = r.atom().upper()
                if opt == "STATUS":
                    r.sp()
                    status = _status_items(r)
                returns.append(opt)
        return c.List(reference, tuple(patterns), select, tuple(returns), status, lsub, parenthesised)

    return parse


def _status(r: Reader) -> c.Command:
    r.sp()
    mailbox = r.mailbox()
    r.sp()
    return c.Status(mailbox, _status_items(r))


def _append(r: Reader) -> c.Command:
    # append = "APPEND" SP mailbox 1*append-message (RFC 3502)
    # append-message = [SP flag-list] [SP date-time] SP literal
    r.sp()
    mailbox = r.mailbox()
    messages = []
    while r.accept(b" "):
        flags: tuple[str, ...] = ()
        when = None
        if r.peek() == b"(":
            flags = r.flag_list()
            r.sp()
        if r.peek() == b'"':
            when = r.date_time()
            r.sp()
        if r.peek() not in (b"{", b"~"):
            raise GrammarError("APPEND needs a literal")
        messages.append(c.AppendMessage(flags, when, r.literal()))
    if not messages:
        raise GrammarError("APPEND needs a message")
    return c.Append(mailbox, tuple(messages))


def _expunge(r: Reader, uid: bool) -> c.Command:
    # uid-expunge = "UID" SP "EXPUNGE" SP sequence-set (RFC 4315)
    r.sp()
    return c.Expunge(True, r.seqset())


_NO_ARG_KEYS: Final = frozenset(
    "ALL ANSWERED DELETED DRAFT FLAGGED NEW OLD RECENT SEEN "
    "UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNSEEN".split()
)
_DATE_KEYS: Final = frozenset("BEFORE ON SINCE SENTBEFORE SENTON SENTSINCE".split())
_ARG_KEYS: Final = _DATE_KEYS | frozenset(
    "LARGER SMALLER BCC CC FROM SUBJECT TO HEADER BODY TEXT KEYWORD UNKEYWORD UID NOT OR MODSEQ".split()
)


def _search_key(r: Reader, depth: int = 0) -> c.SearchKey:
    # search-key (RFC 9051 section 6.4.4 / 9)
    if depth > 50:
        raise GrammarError("Search keys nested too deeply")
    first = r.peek()
    if first == b"(":
        # "(" search-key *(SP search-key) ")"; spaces inside the parentheses are
        # accepted as Dovecot does: ( OR SEEN FLAGGED )
        r.open_list()
        keys = [_search_key(r, depth + 1)]
        while r.list_next(False):
            keys.append(_search_key(r, depth + 1))
        return c.And(tuple(keys))
    if first in (b"*", b"$") or first in (b"0", b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"8", b"9"):
        return c.SeqKey(r.seqset())
    name = r.atom().upper()
    if name in _NO_ARG_KEYS:
        return c.Simple(name)
    if name not in _ARG_KEYS:
        raise GrammarError(f"Unknown search key {name[:32]}")
    r.sp()
    if name in _DATE_KEYS:
        return c.DateKey(name, r.date())
    if name in ("LARGER", "SMALLER"):
        return c.SizeKey(name, r.number64())  # "LARGER" SP number64 (RFC 9051)
    if name in ("BCC", "CC", "FROM", "SUBJECT", "TO"):
        return c.HeaderKey(name.lower(), r.astr())
    if name == "HEADER":
        field = r.astr().lower()
        r.sp()
        return c.HeaderKey(field, r.astr())
    if name in ("BODY", "TEXT"):
        return c.TextKey(name, r.astr())
    if name in ("KEYWORD", "UNKEYWORD"):
        return c.Keyword(r.flag(), name == "KEYWORD")
    if name == "UID":
        return c.SeqKey(r.seqset(), uid=True)
    if name == "NOT":
        return c.Not(_search_key(r, depth + 1))
    if name == "OR":
        left = _search_key(r, depth + 1)
        r.sp()
        return c.Or(left, _search_key(r, depth + 1))
    if name == "MODSEQ":
        # MODSEQ [SP entry-name SP entry-type-req] SP mod-sequence-valzer (RFC 7162)
        if r.peek() == b'"':
            r.quoted()
            r.sp()
            r.atom()
            r.sp()
        return c.ModSeqKey(r.number64())
    raise GrammarError(f"Unknown search key {name[:32]}")


def _search(r: Reader, uid: bool = False) -> c.Command:
    # search = "SEARCH" [search-return-opts] [SP "CHARSET" SP charset] 1*(SP search-key)
    returns: tuple[str, ...] | None = None
    charset = None
    if r.accept(b" RETURN ("):
        r.spaces()
        opts: list[str] = []
        while r.list_next(not opts):
            opt = r.atom().upper()
            if opt not in c.SEARCH_RETURN:
                raise GrammarError(f"Unknown search return option {opt[:32]}")
            opts.append(opt)
        returns = tuple(opts)
    if r.accept(b" CHARSET "):
        charset = r.astr().upper()
    keys = []
    while r.accept(b" "):
        keys.append(_search_key(r))
    if not keys:
        raise GrammarError("SEARCH needs a search key")
    return c.Search(uid, c.And(tuple(keys)), charset, returns)


def _search_criteria(r: Reader) -> tuple[str, c.And]:
    # search-criteria = charset 1*(SP search-key) (RFC 5256 section 5)
    r.sp()
    charset = r.astr().upper()
    keys = []
    while r.accept(b" "):
        keys.append(_search_key(r))
    if not keys:
        raise GrammarError("Search criteria need a search key")
    return charset, c.And(tuple(keys))


def _sort(r: Reader, uid: bool = False) -> c.Command:
    # sort = ["UID" SP] "SORT" [sort-return-opts] SP sort-criteria SP search-criteria
    #   (RFC 5256 section 5; sort-return-opts = SP "RETURN" SP "(" [sort-return-opt
    #   *(SP sort-return-opt)] ")", RFC 5267 section 5)
    # sort-criteria = "(" sort-criterion *(SP sort-criterion) ")"
    # sort-criterion = ["REVERSE" SP] sort-key
    # sort-key = "ARRIVAL" / "CC" / "DATE" / "FROM" / "SIZE" / "SUBJECT" / "TO"
    #   / "DISPLAYFROM" / "DISPLAYTO" (RFC 5957 section 3)
    returns: tuple[str, ...] | None = None
    if r.accept(b" RETURN ("):
        r.spaces()
        opts: list[str] = []
        while r.list_next(not opts):
            opt = r.atom().upper()
            if opt not in c.SORT_RETURN:
                raise GrammarError(f"Unknown sort return option {opt[:32]}")
            opts.append(opt)
        returns = tuple(opts)
    r.sp()
    r.open_list()
    criteria: list[c.SortCriterion] = []
    while r.list_next(not criteria):
        name = r.atom().upper()
        reverse = name == "REVERSE"
        if reverse:
            r.sp()
            name = r.atom().upper()
        if name not in c.SORT_KEYS:
            raise GrammarError(f"Unknown sort key {name[:32]}")
        criteria.append(c.SortCriterion(name, reverse))
    if not criteria:
        raise GrammarError("SORT needs a sort key")
    charset, key = _search_criteria(r)
    return c.Sort(uid, tuple(criteria), charset, key, returns)


def _thread(r: Reader, uid: bool = False) -> c.Command:
    # thread = ["UID" SP] "THREAD" SP thread-alg SP search-criteria (RFC 5256 section 5)
    # thread-alg = "ORDEREDSUBJECT" / "REFERENCES" / thread-alg-ext
    r.sp()
    algorithm = r.atom().upper()
    if algorithm not in c.THREAD_ALGORITHMS:
        raise GrammarError(f"Unknown threading algorithm {algorithm[:32]}")
    charset, key = _search_criteria(r)
    return c.Thread(uid, algorithm, charset, key)


_FETCH_MACROS: Final = {
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}
_FETCHSIMPLE: Final = frozenset(
    "FLAGS INTERNALDATE RFC822 RFC822.HEADER RFC822.TEXT RFC822.SIZE "
    "ENVELOPE BODY BODYSTRUCTURE UID MODSEQ".split()
)
_SECTION_TEXT: Final = ("HEADER.FIELDS.NOT", "HEADER.FIELDS", "HEADER", "TEXT", "MIME")


def _section(r: Reader, binary: bool) -> c.Section:
    # section = "[" [section-spec] "]" ; section-binary = "[" [section-part] "]"
    r.expect(b"[")
    part: list[int] = []
    specifier = None
    fields: tuple[str, ...] = ()
    if not r.accept(b"]"):
        spec = r.fetch_name()
        pieces = spec.split(".")
        while pieces and pieces[0].isdigit():
            digits = pieces.pop(0)
            n = int(digits) if len(digits.lstrip("0")) <= 10 else 0
            if not 0 < n <= MAX_NUMBER:  # section-part = nz-number *("." nz-number)
                raise GrammarError("Section part numbers are 1 to 4294967295")
            part.append(n)
        if pieces:
            specifier = ".".join(pieces)
            if binary or specifier not in _SECTION_TEXT or (specifier == "MIME" and not part):
                raise GrammarError(f"Bad section {spec[:32]}")
        if specifier in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
            r.sp()
            r.open_list()
            names: list[str] = []
            while r.list_next(not names):
                names.append(r.astr())
            if not names:
                raise GrammarError("Empty header list")
            fields = tuple(names)
        r.expect(b"]")
    return c.Section(tuple(part), specifier, fields)


def _fetch_att(r: Reader) -> list[c.FetchAtt]:
    name = r.fetch_name()
    if name in _FETCH_MACROS:
        return [c.FetchAtt(n) for n in _FETCH_MACROS[name]]
    if name in ("BODY", "BODY.PEEK", "BINARY", "BINARY.PEEK", "BINARY.SIZE") and r.peek() == b"[":
        section = _section(r, binary=name.startswith("BINARY"))
        partial = None
        if name != "BINARY.SIZE" and r.accept(b"<"):
            # partial = "<" number64 "." nz-number64 ">" (RFC 9051)
            origin = r.number64()
            r.expect(b".")
            partial = (origin, r.nz_number(MAX_NUMBER64))
            r.expect(b">")
        return [c.FetchAtt(name, section, partial)]
    if name in _FETCHSIMPLE:
        return [c.FetchAtt(name)]
    raise GrammarError(f"Unknown fetch attribute {name[:32]}")


def _fetch(r: Reader, uid: bool = False) -> c.Command:
    # fetch = "FETCH" SP sequence-set SP ("ALL" / "FULL" / "FAST" / fetch-att /
    #         "(" fetch-att *(SP fetch-att) ")") [fetch-modifiers]
    r.sp()
    seqset = r.seqset()
    r.sp()
    atts: list[c.FetchAtt] = []
    if r.peek() == b"(":
        r.open_list()
        while r.list_next(not atts):
            atts.extend(_fetch_att(r))
        if not atts:
            raise GrammarError("Empty fetch attribute list")
    else:
        atts.extend(_fetch_att(r))
    changed_since = None
    vanished = False
    if r.accept(b" ("):
        r.spaces()
        first = True
        while r.list_next(first):
            first = False
            mod = r.atom().upper()
            if mod == "CHANGEDSINCE":
                r.sp()
                changed_since = r.number64()  # mod-sequence-value (RFC 7162 section 7)
            elif mod == "VANISHED" and uid:
                vanished = True
            else:
                raise GrammarError(f"Unknown FETCH modifier {mod[:32]}")
    if vanished and changed_since is None:
        raise GrammarError("VANISHED needs CHANGEDSINCE")
    return c.Fetch(uid, seqset, tuple(atts), changed_since, vanished)


def _store(r: Reader, uid: bool = False) -> c.Command:
    # store = "STORE" SP sequence-set [store-modifiers] SP store-att-flags
    r.sp()
    seqset = r.seqset()
    r.sp()
    unchanged = None
    if r.peek() == b"(":
        # store-modifiers = "(" store-modifier *(SP store-modifier) ")" (RFC 4466);
        # the one we know: "UNCHANGEDSINCE" SP mod-sequence-valzer (RFC 7162 section 7)
        r.open_list()
        first = True
        while r.list_next(first):
            first = False
            modifier = r.atom().upper()
            if modifier != "UNCHANGEDSINCE":
                raise GrammarError(f"Unknown STORE modifier {modifier[:32]}")
            r.sp()
            unchanged = r.number64()
        if first:
            raise GrammarError("Empty STORE modifier list")
        r.sp()
    mode = c.StoreMode.REPLACE
    if r.accept(b"+"):
        mode = c.StoreMode.ADD
    elif r.accept(b"-"):
        mode = c.StoreMode.REMOVE
    r.expect(b"FLAGS")
    silent = r.accept(b".SILENT")
    r.sp()
    if r.peek() == b"(":
        flags = r.flag_list()
    else:
        items = [r.flag()]
        while r.accept(b" "):
            items.append(r.flag())
        flags = tuple(items)
    return c.Store(uid, seqset, mode, flags, silent, unchanged)


def _copy(move: bool) -> Callable[[Reader, bool], c.Command]:
    def parse(r: Reader, uid: bool = False) -> c.Command:
        r.sp()
        seqset = r.seqset()
        r.sp()
        return c.Copy(uid, seqset, r.mailbox(), move)

    return parse


def _id(r: Reader) -> c.Command:
    # id = "ID" SP id-params-list ; id-params-list = "(" *(string SP nstring) ")" / nil
    r.sp()
    if r.accept(b"NIL"):
        return c.Id(None)
    r.open_list()
    params: list[tuple[str, str | None]] = []
    while r.list_next(not params):
        key = r.text(r.string())
        r.sp()
        value = r.nstring()
        params.append((key, None if value is None else r.text(value)))
        if len(params) > 30:
            raise GrammarError("Too many ID fields")
    return c.Id(tuple(params))


def _getquota(by_mailbox: bool) -> Callable[[Reader], c.Command]:
    def parse(r: Reader) -> c.Command:
        r.sp()
        return c.GetQuota(r.mailbox() if by_mailbox else r.astr(), by_mailbox)

    return parse


def _setacl(r: Reader) -> c.Command:
    # setacl = "SETACL" SP mailbox SP identifier SP mod-rights (RFC 4314 section 3.1)
    # identifier = astring; mod-rights = astring ; +rights / -rights / rights
    r.sp()
    mailbox = r.mailbox()
    r.sp()
    identifier = r.astr()
    r.sp()
    return c.SetAcl(mailbox, identifier, r.astr())


def _mailbox_identifier(cls: type[c.DeleteAcl] | type[c.ListRights]) -> Callable[[Reader], c.Command]:
    # deleteacl = "DELETEACL" SP mailbox SP identifier (RFC 4314 section 3.2)
    # listrights = "LISTRIGHTS" SP mailbox SP identifier (RFC 4314 section 3.4)
    def parse(r: Reader) -> c.Command:
        r.sp()
        mailbox = r.mailbox()
        r.sp()
        return cls(mailbox, r.astr())

    return parse


def _acl_mailbox(cls: type[c.GetAcl] | type[c.MyRights]) -> Callable[[Reader], c.Command]:
    # getacl = "GETACL" SP mailbox; myrights = "MYRIGHTS" SP mailbox (RFC 4314 3.3, 3.5)
    def parse(r: Reader) -> c.Command:
        r.sp()
        return cls(r.mailbox())

    return parse


COMMANDS: Final[dict[str, Callable[[Reader], c.Command]]] = {
    "LOGIN": _login,
    "AUTHENTICATE": _authenticate,
    "ENABLE": _enable,
    "SELECT": _select(False),
    "EXAMINE": _select(True),
    "CREATE": _create,
    "DELETE": _one_mailbox(c.Delete),
    "RENAME": _rename,
    "SUBSCRIBE": _subscribe(True),
    "UNSUBSCRIBE": _subscribe(False),
    "LIST": _list(False),
    "LSUB": _list(True),
    "STATUS": _status,
    "APPEND": _append,
    "SEARCH": lambda r: _search(r, False),
    "SORT": lambda r: _sort(r, False),
    "THREAD": lambda r: _thread(r, False),
    "FETCH": lambda r: _fetch(r, False),
    "STORE": lambda r: _store(r, False),
    "COPY": lambda r: _copy(False)(r, False),
    "MOVE": lambda r: _copy(True)(r, False),
    "ID": _id,
    "GETQUOTA": _getquota(False),
    "GETQUOTAROOT": _getquota(True),
    "SETACL": _setacl,
    "DELETEACL": _mailbox_identifier(c.DeleteAcl),
    "GETACL": _acl_mailbox(c.GetAcl),
    "LISTRIGHTS": _mailbox_identifier(c.ListRights),
    "MYRIGHTS": _acl_mailbox(c.MyRights),
}

UID_COMMANDS: Final[dict[str, Callable[[Reader, bool], c.Command]]] = {
    "FETCH": _fetch,
    "STORE": _store,
    "SEARCH": _search,
    "SORT": _sort,
    "THREAD": _thread,
    "COPY": _copy(False),
    "MOVE": _copy(True),
    "EXPUNGE": _expunge,
}

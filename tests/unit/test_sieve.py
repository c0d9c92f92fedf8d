# ruff: noqa: E501 - the table rows are whole Sieve scripts
"""The Sieve parser, compiler and interpreter without a server: table-driven
cases, most taken from the examples of the RFCs they cite."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mailserver.sieve.compiler import compile_script
from mailserver.sieve.interpreter import INBOX, Environment, FileInto, Outcome, SieveRuntimeError, run_scripts
from mailserver.sieve.message import MessageView
from mailserver.sieve.parser import SieveSyntaxError, parse
from mailserver.sieve.vacation import build_reply, reply_from, should_reply

# Subject "Báo cáo tháng" in decomposed form (NFD, combining accents) and base64.
NFD_SUBJECT = (
    "=?utf-8?b?"
    + __import__("base64")
    .b64encode(__import__("unicodedata").normalize("NFD", "Báo cáo tháng 12").encode())
    .decode()
    + "?="
)

MESSAGE = (
    "Return-Path: <doitac+tin@partner.test>\r\n"
    "Received: from a by b; Mon, 7 Dec 2026 08:00:00 +0700\r\n"
    "Received: from c by d; Mon, 7 Dec 2026 07:59:00 +0700\r\n"
    "From: Đối tác <doitac+tin@partner.test>\r\n"
    "To: Nguyễn Văn An <annv@dongnai.gov.vn>, binhtt@dongnai.gov.vn\r\n"
    "Cc: vanthu@dongnai.gov.vn\r\n"
    f"Subject: {NFD_SUBJECT}\r\n"
    "Date: Mon, 7 Dec 2026 08:00:00 +0700\r\n"
    "Message-ID: <abc@partner.test>\r\n"
    "X-Priority: 2\r\n"
    "MIME-Version: 1.0\r\n"
    'Content-Type: multipart/alternative; boundary="b"\r\n'
    "\r\n"
    "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nKính gửi anh An, xin gửi báo cáo.\r\n"
    "--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Kính gửi <b>anh An</b></p>\r\n"
    "--b--\r\n"
).encode()

NOW = datetime(2026, 12, 7, 1, 30, tzinfo=UTC)  # 08:30 in Vietnam (+0700)


def run(
    script: str,
    data: bytes = MESSAGE,
    *,
    sender: str = "doitac+tin@partner.test",
    recipient: str = "annv@dongnai.gov.vn",
    **env: object,
) -> Outcome:
    compiled = compile_script(script)
    environment = Environment(MessageView(data), sender, recipient, recipient, now=NOW, **env)  # type: ignore[arg-type]
    return run_scripts([compiled], environment)


def folders(outcome: Outcome) -> list[str]:
    return [f.folder for f in outcome.keep]


# -- parser ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("keep", "1:5"),  # missing ;
        ("if true {\n  keep;\n", "3:1"),  # missing }
        ('keep;\n"x";', "2:1"),
        ('fileinto "unterminated;', "1:10"),
        ("keep; /* open comment", "1:7"),
        ("redirect text:\nno end\n", "1:10"),
        ("if (true { keep; }", "1:10"),
        ("keep @;", "1:6"),
        ('require ["fileinto" "x"];', "1:21"),
    ],
)
def test_syntax_errors_carry_line_and_column(text: str, where: str) -> None:
    with pytest.raises(SieveSyntaxError) as err:
        compile_script(text)
    assert f"{err.value.line}:{err.value.column}" == where, err.value


def test_strings_multiline_comments_numbers() -> None:
    (cmd,) = parse("vacation :days 2 # comment\n /* block\n comment */ text:\nline one\n..dot\n.\n;")
    assert cmd.arguments[1].value == 2  # type: ignore[union-attr]
    assert cmd.arguments[2].values == ("line one\r\n.dot\r\n",)  # type: ignore[union-attr]
    (size,) = parse("if size :over 1M { discard; }")
    assert size.tests[0].arguments[1].value == 1 << 20  # type: ignore[union-attr]
    (esc,) = parse(r'keep "a\"b\\c\d";')
    assert esc.arguments[0].values == ('a"b\\cd',)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('fileinto "x";', 'missing require "fileinto"'),
        ('require "nope";', 'unsupported extension "nope"'),
        ('keep; require "fileinto";', "require must come before"),
        ('if header :is "a" {}', "takes 2 argument(s)"),
        ('if header :foo "a" "b" {}', "unknown tag :foo"),
        ('if header :is :contains "a" "b" {}', "exclude each other"),
        ('if header :count "gt" "a" "1" {}', 'missing require "relational"'),
        ('require "relational"; if header :value "xx" "a" "1" {}', 'unknown relation "xx"'),
        ('if address :user "from" "a" {}', 'missing require "subaddress"'),
        ('if header :comparator "i;nope" "a" "b" {}', 'unknown comparator "i;nope"'),
        ('require "fileinto"; fileinto :copy "a";', 'missing require "copy"'),
        ("elsif true { keep; }", "elsif without if"),
        ("if true keep;", "takes one test and a block"),
        ("keep", "expected ';' or '{' after keep"),
        ('require "date"; if date "date" "century" "x" {}', 'unknown date part "century"'),
        ('if header :index 1 "a" "b" {}', 'missing require "index"'),
        ('require "include"; include "../x";', "invalid script name"),
        ('keep :flags "a";', 'missing require "imap4flags"'),
        ('header "a" "b";', "a test, not a command"),
        ("if keep { }", "a command, not a test"),
    ],
)
def test_compile_errors(text: str, message: str) -> None:
    with pytest.raises(SieveSyntaxError) as err:
        compile_script(text)
    assert message in str(err.value)


# -- RFC 5228 core and the extensions -----------------------------------------------------
@pytest.mark.parametrize(
    ("script", "expected"),
    [
        # RFC 5228: implicit keep, explicit keep, discard, stop, if/elsif/else
        ("", [INBOX]),
        ("discard;", []),
        ('require "fileinto"; fileinto "A"; keep;', ["A", INBOX]),
        ('require "fileinto"; fileinto "A"; fileinto "A";', ["A"]),  # section 2.10.3: once
        (
            'require "fileinto"; if false { fileinto "x"; } elsif true { fileinto "y"; } else { fileinto "z"; }',
            ["y"],
        ),
        ('require "fileinto"; stop; fileinto "x";', [INBOX]),
        # header with decoding and NFC on both sides (subject sent as NFD base64)
        ('require "fileinto"; if header :contains "subject" "Báo cáo" { fileinto "Báo cáo"; }', ["Báo cáo"]),
        ('require "fileinto"; if header :is "Subject" "BÁO CÁO THÁNG 12" { fileinto "x"; }', [INBOX]),
        ('require "fileinto"; if header :is "Subject" "báo cáo tháng 12" { fileinto "x"; }', ["x"]),
        (
            'require ["fileinto", "comparator-i;unicode-casemap"]; '
            'if header :comparator "i;unicode-casemap" :is "Subject" "BÁO CÁO THÁNG 12" { fileinto "x"; }',
            ["x"],
        ),
        ('require "fileinto"; if header :matches "subject" "*tháng ??" { fileinto "m"; }', ["m"]),
        (
            'require "fileinto"; if header :comparator "i;octet" :contains "x-priority" "2" { fileinto "o"; }',
            ["o"],
        ),
        # address parts, RFC 5233 subaddress
        ('require "fileinto"; if address :domain :is "from" "PARTNER.test" { fileinto "d"; }', ["d"]),
        ('require "fileinto"; if address :localpart "from" "doitac+tin" { fileinto "l"; }', ["l"]),
        ('require ["fileinto", "subaddress"]; if address :user "from" "doitac" { fileinto "u"; }', ["u"]),
        ('require ["fileinto", "subaddress"]; if address :detail "from" "tin" { fileinto "t"; }', ["t"]),
        ('require ["fileinto", "subaddress"]; if address :detail "to" "" { fileinto "t"; }', [INBOX]),
        (
            'require "fileinto"; if address :all :is ["to", "cc"] "vanthu@dongnai.gov.vn" { fileinto "c"; }',
            ["c"],
        ),
        # envelope
        (
            'require ["fileinto", "envelope"]; if envelope :domain "from" "partner.test" { fileinto "e"; }',
            ["e"],
        ),
        (
            'require ["fileinto", "envelope"]; if envelope :is "to" "annv@dongnai.gov.vn" { fileinto "e"; }',
            ["e"],
        ),
        # exists, size, allof/anyof/not, true/false
        ('require "fileinto"; if exists ["From", "Date"] { fileinto "x"; }', ["x"]),
        ('require "fileinto"; if exists ["From", "X-Nope"] { fileinto "x"; }', [INBOX]),
        ('require "fileinto"; if size :over 100 { fileinto "big"; }', ["big"]),
        ('require "fileinto"; if size :under 100 { fileinto "small"; }', [INBOX]),
        ('require "fileinto"; if allof (true, not false, anyof (false, true)) { fileinto "x"; }', ["x"]),
        # relational (RFC 5231)
        (
            'require ["fileinto", "relational", "comparator-i;ascii-numeric"]; '
            'if header :count "ge" :comparator "i;ascii-numeric" "received" "2" { fileinto "hops"; }',
            ["hops"],
        ),
        (
            'require ["fileinto", "relational", "comparator-i;ascii-numeric"]; '
            'if address :count "eq" :comparator "i;ascii-numeric" "to" "2" { fileinto "two"; }',
            ["two"],
        ),
        (
            'require ["fileinto", "relational", "comparator-i;ascii-numeric"]; '
            'if header :value "lt" :comparator "i;ascii-numeric" "x-priority" "3" { fileinto "urgent"; }',
            ["urgent"],
        ),
        # body (RFC 5173)
        ('require ["fileinto", "body"]; if body :text :contains "anh An" { fileinto "b"; }', ["b"]),
        ('require ["fileinto", "body"]; if body :raw :contains "<b>" { fileinto "raw"; }', ["raw"]),
        ('require ["fileinto", "body"]; if body :text :contains "<b>" { fileinto "no"; }', [INBOX]),
        (
            'require ["fileinto", "body"]; if body :content "text/html" :contains "<b>" { fileinto "h"; }',
            ["h"],
        ),
        # date, currentdate, index (RFC 5260)
        ('require ["fileinto", "date"]; if date :zone "+0700" "date" "hour" "08" { fileinto "8h"; }', ["8h"]),
        (
            'require ["fileinto", "date"]; if date :originalzone "date" "zone" "+0700" { fileinto "z"; }',
            ["z"],
        ),
        (
            'require ["fileinto", "date"]; if currentdate :zone "+0700" "date" "2026-12-07" { fileinto "d"; }',
            ["d"],
        ),
        (
            'require ["fileinto", "date", "relational"]; '
            'if currentdate :zone "+0700" :value "ge" "time" "08:00:00" { fileinto "late"; }',
            ["late"],
        ),
        (
            'require ["fileinto", "index"]; if header :index 2 :contains "received" "from c" { fileinto "i"; }',
            ["i"],
        ),
        (
            'require ["fileinto", "index"]; if header :index 1 :last :contains "received" "from c" { fileinto "l"; }',
            ["l"],
        ),
        # variables (RFC 5229)
        (
            'require ["fileinto", "variables"]; if header :matches "Subject" "* tháng *" '
            '{ fileinto "Lưu/${2}"; }',
            ["Lưu/12"],
        ),
        (
            'require ["fileinto", "variables"]; set :upperfirst :lower "x" "HỒ SƠ"; fileinto "${x}";',
            ["Hồ sơ"],
        ),
        (
            'require ["fileinto", "variables"]; set "a" "x"; set :length "n" "${a}${a}"; fileinto "${n}";',
            ["2"],
        ),
        (
            'require ["fileinto", "variables"]; set "a" "*?"; set :quotewildcard "b" "${a}"; '
            'if string :is "${b}" "\\\\*\\\\?" { fileinto "q"; }',
            ["q"],
        ),
        ('require ["fileinto", "variables"]; if string :is "${nope}" "" { fileinto "empty"; }', ["empty"]),
        ('require ["fileinto", "variables"]; fileinto "${unterminated";', ["${unterminated"]),
        ('require "fileinto"; fileinto "${no_variables_required}";', ["${no_variables_required}"]),
        # encoded-character
        (
            'require ["fileinto", "encoded-character"]; fileinto "${hex:42 C3 A1}o${unicode:20 63}";',
            ["Báo c"],
        ),
        # mailbox
        ('require ["fileinto", "mailbox"]; if mailboxexists "Lưu trữ" { fileinto "Lưu trữ"; }', ["Lưu trữ"]),
        ('require ["fileinto", "mailbox"]; if mailboxexists "Không có" { fileinto "x"; }', [INBOX]),
    ],
)
def test_filing(script: str, expected: list[str]) -> None:
    assert folders(run(script, folders=frozenset({"Lưu trữ"}))) == expected


def test_imap4flags() -> None:
    # RFC 5232 section 7 style: the internal variable, :flags, variables holding flags, hasflag.
    outcome = run(
        'require ["imap4flags", "fileinto", "variables"];'
        'setflag "\\\\Seen"; addflag ["$Work", "\\\\flagged"]; removeflag "\\\\Seen";'
        'if hasflag :contains "work" { fileinto "W"; }'
        'addflag "myvar" "a b"; addflag "myvar" "b c";'
        'if hasflag :is "myvar" "c" { fileinto :flags "${myvar}" "V"; }'
    )
    assert outcome.keep == [FileInto("W", ("$Work", "\\flagged")), FileInto("V", ("a", "b", "c"))]
    kept = run('require "imap4flags"; addflag "\\\\Flagged";')
    assert kept.keep == [FileInto(INBOX, ("\\Flagged",))]  # the implicit keep carries the flags


def test_copy_redirect_reject_and_limits() -> None:
    out = run('require ["copy", "fileinto"]; redirect :copy "a@example.org"; fileinto :copy "F";')
    assert out.redirects == ["a@example.org"] and folders(out) == ["F", INBOX]
    out = run('redirect "a@example.org"; redirect "a@example.org";')
    assert out.redirects == ["a@example.org"] and out.keep == []
    with pytest.raises(SieveRuntimeError, match="max_redirects"):
        run('redirect "a@x.org"; redirect "b@x.org"; redirect "c@x.org";', max_redirects=2)
    with pytest.raises(SieveRuntimeError, match="invalid address"):
        run('redirect "not an address";')
    out = run('require "reject"; reject "Không nhận / not accepted";')
    assert out.reject == "Không nhận / not accepted" and out.keep == []
    out = run('require "ereject"; ereject "no";')
    assert out.ereject
    with pytest.raises(SieveRuntimeError, match="cannot be combined"):
        run('require ["reject", "fileinto"]; fileinto "x"; reject "no";')
    with pytest.raises(SieveRuntimeError, match="after reject"):
        run('require "reject"; reject "no"; keep;')


def test_include_return_and_global() -> None:
    helper = compile_script(
        'require ["include", "variables", "fileinto"]; global "dest";'
        'if header :contains "subject" "Báo cáo" { set "dest" "Reports"; return; }'
        'set "dest" "Other";'
    )
    main = compile_script(
        'require ["include", "variables", "fileinto"]; global "dest";'
        'include :personal "helper"; include :personal :once "helper";'
        'include :optional "missing"; fileinto "${dest}";'
    )
    env = Environment(
        MessageView(MESSAGE),
        "x@y.z",
        "annv@dongnai.gov.vn",
        "annv@dongnai.gov.vn",
        includes={("personal", "helper"): helper},
    )
    assert folders(run_scripts([main], env)) == ["Reports"]
    assert main.includes == {("personal", "helper"), ("personal", "missing")}
    with pytest.raises(SieveRuntimeError, match="no personal script"):
        run('require "include"; include "absent";')


def test_duplicate_tracking() -> None:
    script = 'require ["duplicate", "fileinto"]; if duplicate { fileinto "Trùng"; }'
    first = run(script)
    assert folders(first) == [INBOX] and len(first.duplicates) == 1
    key = first.duplicates[0][0]
    assert folders(run(script, seen_duplicates=frozenset({key}))) == ["Trùng"]
    handled = run(
        'require ["duplicate", "fileinto"]; if duplicate :handle "x" :seconds 60 { fileinto "T"; }',
        seen_duplicates=frozenset({key}),
    )
    assert folders(handled) == [INBOX] and handled.duplicates[0][1] == 60  # another handle, another key
    by_header = run('require "duplicate"; if duplicate :header "x-priority" { discard; }')
    assert by_header.duplicates and by_header.duplicates[0][0] != key


def test_vacation_parameters_and_rfc3834_rules() -> None:
    out = run(
        'require "vacation"; vacation :days 3 :subject "Vắng mặt" :addresses ["an@dongnai.gov.vn"] '
        '"Tôi đi công tác đến 15/12.";'
    )
    vac = out.vacation
    assert vac is not None and vac.seconds == 3 * 86400 and vac.subject == "Vắng mặt"
    assert folders(out) == [INBOX]  # vacation does not cancel the implicit keep
    secs = run('require ["vacation", "vacation-seconds"]; vacation :seconds 0 "x";').vacation
    assert secs is not None and secs.seconds == 0
    clamped = run('require "vacation"; vacation :days 1000 "x";').vacation
    assert clamped is not None and clamped.seconds == 90 * 86400

    view = MessageView(MESSAGE)
    owner = "annv@dongnai.gov.vn"
    assert should_reply(view, "doitac@partner.test", owner, owner, vac) is None
    assert should_reply(view, "", owner, owner, vac) == "null sender"
    assert should_reply(view, owner, owner, owner, vac) == "own address"
    assert should_reply(view, "owner-list@partner.test", owner, owner, vac) is not None
    assert should_reply(view, "MAILER-DAEMON@partner.test", owner, owner, vac) is not None
    for extra in (
        b"Auto-Submitted: auto-replied\r\n",
        b"List-Id: <l.partner.test>\r\n",
        b"Precedence: bulk\r\n",
    ):
        assert (
            should_reply(MessageView(extra + MESSAGE), "doitac@partner.test", owner, owner, vac) is not None
        )
    assert (
        should_reply(MessageView(b"Auto-Submitted: no\r\n" + MESSAGE), "d@p.test", owner, owner, vac) is None
    )
    other = "khac@dongnai.gov.vn"
    assert should_reply(view, "doitac@partner.test", other, other, vac) == "user not named in To/Cc"
    aliased = run('require "vacation"; vacation :addresses "vanthu@dongnai.gov.vn" "x";').vacation
    assert aliased is not None and should_reply(view, "doitac@partner.test", other, other, aliased) is None

    reply = build_reply(view, vac, sender="doitac@partner.test", owner=owner, hostname="mail.test", now=NOW)
    import email
    import email.policy

    parsed = email.message_from_bytes(reply, policy=email.policy.default)
    assert parsed["Auto-Submitted"].startswith("auto-replied")
    assert parsed["In-Reply-To"] == "<abc@partner.test>"
    assert parsed["To"] == "doitac@partner.test" and parsed["Subject"] == "Vắng mặt"
    body = parsed.get_body().get_content()  # type: ignore[union-attr]
    assert body.startswith("Tôi đi công tác") and "Đây là thư trả lời tự động" in body
    assert b"\n" not in reply.replace(b"\r\n", b"")
    default = build_reply(
        view,
        run('require "vacation"; vacation "x";').vacation,  # type: ignore[arg-type]
        sender="d@p.test",
        owner=owner,
        hostname="mail.test",
        now=NOW,
    )
    subject = email.message_from_bytes(default, policy=email.policy.default)["Subject"]
    assert subject.startswith("Trả lời tự động / Auto: Báo cáo tháng 12")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, "annv@dongnai.gov.vn"),
        ("Nguyễn Văn An <AnNV@dongnai.gov.vn>", "Nguyễn Văn An <AnNV@dongnai.gov.vn>"),
        ("Giám đốc <giamdoc@dongnai.gov.vn>", "annv@dongnai.gov.vn"),  # not the mailbox's own address
        ("a@x.org, annv@dongnai.gov.vn", "annv@dongnai.gov.vn"),
    ],
)
def test_vacation_from_must_be_the_mailbox(given: str | None, expected: str) -> None:
    assert reply_from(given, "annv@dongnai.gov.vn") == expected


def test_fifty_rules_compile_once_and_run() -> None:
    rules = "\n".join(
        f'if header :contains "subject" "mục {i}" {{ fileinto "Mục {i}"; stop; }}' for i in range(50)
    )
    script = compile_script('require "fileinto";\n' + rules + '\nif true { fileinto "Khác"; }')
    env = Environment(MessageView(MESSAGE), "a@b.c", "annv@dongnai.gov.vn", "annv@dongnai.gov.vn")
    assert folders(run_scripts([script], env)) == ["Khác"]

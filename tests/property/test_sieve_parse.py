"""Any script text compiles or gives a SieveSyntaxError with a position inside
the text: never another exception (a user's upload is untrusted input)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailserver.sieve.compiler import compile_script
from mailserver.sieve.parser import SieveSyntaxError

_PIECES = st.sampled_from([
    "require", '"fileinto"', "[", "]", ",", "(", ")", "{", "}", ";", "if", "elsif", "else", "header",
    ":contains", ":is", ":matches", ":count", '"ge"', '"subject"', '"Báo cáo"', "text:\n", "\n.\n", "#c\n",
    "/*", "*/", "fileinto", "keep", "stop", "1K", "size", ":over", "allof", "not", "true", "vacation",
    ":days", "7", '"${x}"', "set", '"variables"', "include", "\\", '"', " ", "\n",
])


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=40).map(" ".join) | st.text(max_size=200))
def test_compile_never_crashes(text: str) -> None:
    try:
        compile_script(text)
    except SieveSyntaxError as exc:
        lines = text.split("\n")
        assert 1 <= exc.line <= len(lines) + 1
        assert exc.column >= 1


def test_deep_nesting_is_an_error_not_a_recursion_crash() -> None:
    for text in ("if " + "not " * 5000 + "true { keep; }", "if true { " * 5000, "if " + "anyof(" * 5000):
        try:
            compile_script(text)
        except SieveSyntaxError as exc:
            assert "deeply" in exc.message
        else:
            raise AssertionError("accepted")

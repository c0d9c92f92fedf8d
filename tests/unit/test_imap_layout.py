"""The IMAP package stays in small pieces (issue 19): no function in
``mailserver/imap/`` longer than 60 lines, no module of 900 lines or more, and no
cache shared across stores at module level (the caches belong to ``ImapService``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

IMAP = Path(__file__).resolve().parents[2] / "mailserver" / "imap"
MODULES = sorted(IMAP.glob("*.py"))
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 900


def test_the_package_is_where_expected() -> None:
    expected = {"session.py", "parser.py", "connection.py", "fetch.py", "selected.py"}
    assert expected <= {p.name for p in MODULES}


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_module_and_function_sizes(path: Path) -> None:
    source = path.read_text("utf-8")
    lines = len(source.splitlines())
    assert lines < MAX_MODULE_LINES, f"{path.name} has {lines} lines (limit {MAX_MODULE_LINES - 1})"
    long = [
        f"{node.name} (line {node.lineno}): {node.end_lineno - node.lineno + 1} lines"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"{path.name}: functions over {MAX_FUNCTION_LINES} lines: {long}"


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_no_cache_keyed_by_object_identity(path: Path) -> None:
    """A process-wide dict keyed by ``id(store)`` outlives the store it describes;
    what sessions share is owned by the service that owns the store."""
    assert "id(self.store)" not in path.read_text("utf-8")

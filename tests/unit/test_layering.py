"""Which package may import which (issue 19; STYLE.md "Wiring: who builds what").

* ``storage``, ``policy`` and ``pki`` never import ``mailserver``.
* Nothing outside ``storage/`` and the wiring (``mailserver/app.py``,
  ``mailserver/cli/``) imports ``storage.sql``: everything else receives the
  stores (``storage.Storage``) and talks to their Protocols.

Imports are read from the source (``ast``), function-local ones included.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("mailserver", "storage", "policy", "pki")
SOURCES = sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports (``from a.b import c`` gives ``a.b`` and ``a.b.c``)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
    return out


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _is_under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _may_import_storage_sql(rel: str) -> bool:
    return rel.startswith(("storage/", "mailserver/cli/")) or rel == "mailserver/app.py"


def test_the_sources_are_found() -> None:
    rels = {_rel(p) for p in SOURCES}
    assert {"mailserver/app.py", "storage/sql/database.py", "mailserver/web/server.py"} <= rels


@pytest.mark.parametrize("path", SOURCES, ids=_rel)
def test_layers(path: Path) -> None:
    rel = _rel(path)
    imports = _imports(path)
    if not rel.startswith("mailserver/"):
        assert not [m for m in imports if _is_under(m, "mailserver")], f"{rel} imports mailserver"
    if not _may_import_storage_sql(rel):
        leaks = sorted(m for m in imports if _is_under(m, "storage.sql"))
        assert not leaks, f"{rel} imports {leaks}: receive the store (storage.Storage) instead"


def test_the_check_sees_a_function_local_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f() -> None:\n    from storage.sql import models\n", "utf-8")
    assert "storage.sql.models" in _imports(module)


def _observed_methods() -> set[str]:
    """Public methods of the objects cross-cutting code observes (metrics, audit);
    not ``start``/``close``, names too common to tell whose attribute is set."""
    import inspect

    from mailserver.auth import Authenticator
    from mailserver.smtp.queue import Outbound
    from storage.api import MailStore
    from storage.queue import OutboundQueue

    return {
        name
        for cls in (MailStore, Authenticator, OutboundQueue, Outbound)
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_") and name not in ("start", "close")
    }


def _assigned_methods(path: Path, methods: set[str]) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets = [node.target]
        elif (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr"
            and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)
            and node.args[1].value in methods
        ):
            found.append(f"line {node.lineno}: setattr(..., {node.args[1].value!r}, ...)")
        for target in targets:
            if isinstance(target, ast.Attribute) and target.attr in methods:
                found.append(f"line {node.lineno}: {ast.unparse(target)} = ...")
    return found


def test_the_observed_methods_are_known() -> None:
    assert {"deliver", "authenticate", "enqueue"} <= _observed_methods()


@pytest.mark.parametrize("path", SOURCES, ids=_rel)
def test_nothing_assigns_over_a_method_of_the_store_the_authenticator_or_the_queue(path: Path) -> None:
    """Metrics and other observers register through explicit hooks
    (``observe_deliveries``, ``Authenticator.observe``, ``Outbound.observe``)."""
    assert not _assigned_methods(path, _observed_methods()), _rel(path)


def test_the_check_sees_a_method_replaced(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f(store):\n    store.deliver = print\n    setattr(store, 'enqueue', print)\n")
    assert len(_assigned_methods(module, {"deliver", "enqueue"})) == 2

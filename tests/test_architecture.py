"""Only ``matforge.store`` talks to the database (issue #19 §1).

Scans the source of every module outside ``matforge.store`` for what would mean it holds SQL
or reaches into tables: an import of SQLAlchemy or of ``matforge.store.schema``, or any use of a table object that a store module defines
(``from matforge.store.accounts import users``, ``accounts.users.c.id``).

``NOT_YET`` lists the modules that still do, while issue #19 moves them behind the store's
repositories; a module leaves the list when it is moved, and the test fails if a listed module
no longer needs its entry (so the list only shrinks) or an unlisted one starts.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import matforge
import matforge.store

SRC = Path(matforge.__file__).resolve().parent
FORBIDDEN_MODULES = ("sqlalchemy", "matforge.store.schema")

# modules (relative to src/matforge) that still hold SQL or tables; shrink only
NOT_YET = {
}


def _store_tables() -> dict[str, set[str]]:
    """{store module name: names of the SQLAlchemy tables it defines}."""
    import sqlalchemy as sa

    tables: dict[str, set[str]] = {}
    for info in pkgutil.walk_packages(matforge.store.__path__, "matforge.store."):
        if ".migrations" in info.name:
            continue
        mod = importlib.import_module(info.name)
        names = {k for k, v in vars(mod).items() if isinstance(v, sa.Table)}
        if names:
            tables[info.name] = names
    return tables


def _violations(path: Path, tables: dict[str, set[str]]) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[str] = []
    aliases: dict[str, str] = {}  # local name -> store module holding tables
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith(FORBIDDEN_MODULES):
                    found.append(f"line {node.lineno}: import {a.name}")
                if a.name in tables and a.asname:
                    aliases[a.asname] = a.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith(FORBIDDEN_MODULES):
                found.append(f"line {node.lineno}: from {node.module} import ...")
                continue
            for a in node.names:
                full = f"{node.module}.{a.name}"
                if full.startswith(FORBIDDEN_MODULES):
                    found.append(f"line {node.lineno}: from {node.module} import {a.name}")
                elif full in tables:
                    aliases[a.asname or a.name] = full
                elif a.name in tables.get(node.module, ()):
                    found.append(f"line {node.lineno}: table {full}")
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr in tables[aliases[node.value.id]]):
            found.append(f"line {node.lineno}: table {aliases[node.value.id]}.{node.attr}")
    return found


def test_only_the_store_talks_to_the_database():
    tables = _store_tables()
    assert tables, "the store defines no tables? the scan is broken"
    offenders = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith("store/"):
            continue
        found = _violations(path, tables)
        if found:
            offenders[rel] = found
    new = {k: v for k, v in offenders.items() if k not in NOT_YET}
    assert not new, f"modules outside matforge.store that reach the database: {new}"
    moved = sorted(NOT_YET - offenders.keys())
    assert not moved, f"no longer reach the database, remove from NOT_YET: {moved}"


def test_the_scan_sees_sql_and_tables(tmp_path):
    tables = _store_tables()
    mod, names = next(iter(tables.items()))
    table = sorted(names)[0]
    bad = tmp_path / "bad.py"
    bad.write_text(
        f"import sqlalchemy as sa\nfrom {mod} import {table}\n"
        f"import {mod} as t\nx = t.{table}.c\n"
    )
    found = _violations(bad, tables)
    assert len(found) == 3, found
    good = tmp_path / "good.py"
    good.write_text("from matforge.store import Store\nStore\n")
    assert _violations(good, tables) == []
